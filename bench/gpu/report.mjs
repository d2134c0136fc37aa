// The GPU session's table: tunekit's timings (tunekit.json) beside PyTorch's (torch.json) with the
// ratio, the op cases and the fine-tuning run, as markdown; also written to DIR/report.md.
//   node bench/gpu/report.mjs DIR
import * as fs from "node:fs";
import * as path from "node:path";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node bench/gpu/report.mjs DIR (with tunekit.json and torch.json from bench/gpu/session.sh)");
  process.exit(2);
}
const read = (f) => (fs.existsSync(path.join(dir, f)) ? JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")) : { parts: {} });
const tk = read("tunekit.json"), pt = read("torch.json");
const f = (x, d = 1) => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(d) : "–");
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}×` : "–");
const err = (p) => (p?.error ? ` (error: ${p.error.split("\n")[0].slice(0, 120)})` : "");
const lines = [`GPU: ${pt.device ?? tk.info?.device ?? "?"}; PyTorch ${pt.torch ?? "?"}; ${tk.date ?? ""}`, ""];

const ops = tk.parts.ops;
lines.push(`Op cases CPU vs CUDA: ${ops?.cases ?? "–"} run, ${ops?.failed?.length ?? "–"} outside tolerance${err(ops)}`);
for (const c of ops?.failed ?? []) lines.push(`- ${c.op} / ${c.name}: |Δ| ${c.maxAbsDiff} > ${c.tolerance} · max(1, ${c.refMaxAbs})`);
const ft = tk.parts.finetune;
lines.push(`Fine-tuning run (embedded model, SST-2 head, 2 epochs): max |loss CPU − loss CUDA| ${ft?.maxLossDiff ?? "–"} over ${ft?.cpu?.length ?? 0} logged steps${err(ft)}`, "");

lines.push("| GEMM | precision | tunekit TFLOP/s | cuBLAS TFLOP/s | ratio |", "|---|---|---|---|---|");
for (const r of tk.parts.gemm?.rows ?? []) {
  const t = pt.parts.gemm?.rows?.find((x) => x.shape === r.shape && x.precision === r.precision);
  lines.push(`| ${r.shape} | ${r.precision} | ${f(r.tflops)} | ${f(t?.tflops)} | ${ratio(r.tflops, t?.tflops)} |`);
}
lines.push("", "| attention fwd+bwd | tunekit ms (fp32) | SDPA ms fp32 | SDPA ms bf16 | ratio to fp32 | ratio to bf16 |", "|---|---|---|---|---|---|");
for (const r of tk.parts.attention?.rows ?? []) {
  const t = (p) => pt.parts.attention?.rows?.find((x) => x.shape === r.shape && x.precision === p);
  lines.push(`| ${r.shape} | ${f(r.fwdBwdMs, 2)} | ${f(t("fp32")?.fwdBwdMs, 2)} | ${f(t("bf16")?.fwdBwdMs, 2)} | ${ratio(t("fp32")?.fwdBwdMs, r.fwdBwdMs)} | ${ratio(t("bf16")?.fwdBwdMs, r.fwdBwdMs)} |`);
}
for (const [model, unit, key] of [["bert-base step", "samples/s", "samplesPerSecond"], ["gpt2 step", "tokens/s", "tokensPerSecond"]]) {
  lines.push("", `| ${model} (${unit}) | tunekit | PyTorch eager | torch.compile | tunekit ÷ eager | tunekit ÷ compile |`, "|---|---|---|---|---|---|");
  for (const prec of ["fp32", "bf16"]) {
    const a = tk.parts[`${model} ${prec}`], e = pt.parts[`${model} ${prec} eager`], c = pt.parts[`${model} ${prec} torch.compile`];
    lines.push(`| ${prec} | ${f(a?.[key], 0)}${err(a)} | ${f(e?.[key], 0)}${err(e)} | ${f(c?.[key], 0)}${err(c)} | ${ratio(a?.[key], e?.[key])} | ${ratio(a?.[key], c?.[key])} |`);
  }
}
const text = lines.join("\n") + "\n";
fs.writeFileSync(path.join(dir, "report.md"), text);
process.stdout.write(text);
