// `npm run bench:infer`: BERT-base inference (sequence classification), tunekit next to onnxruntime-node on
// the same weights, in one command. The model is bench/torch_train.py's plain-PyTorch BERT with random
// weights, exported once by PyTorch (/usr/bin/python3) to ONNX (for onnxruntime) and to a Hugging Face
// folder, config.json + model.safetensors (for tunekit's fromPretrained); the logits of both are compared.
//   node bench/infer.mjs            batch 1 and 16 × 128 tokens, fp32 (+ bf16 for tunekit where the CPU has it)
//                                   → bench/results/infer.json
//   node bench/infer.mjs --quick    tiny shapes, one timed run: checks that every case runs (CI; numbers mean nothing)
//   node bench/infer.mjs --no-bf16  fp32 only
//   node bench/infer.mjs --iters 5 --time 0   fewer timed runs (a busy machine)
//   node bench/infer.mjs --baseline ../main --rounds 2   also times another checkout's tunekit (built: its dist/
//                                   and addon) in the same sitting, each side in turn, `rounds` times; every
//                                   figure is the best of its rounds (a shared machine only ever slows a run)
// Every case runs in its own child process per side, one after the other: both sides keep worker threads
// that spin after a run (onnxruntime's intra-op pool by default, tunekit's pool), which would steal the
// cores from the other side in one process; tunekit's bf16 switch is process-wide; each peak RSS is its own.
// onnxruntime-node runs fp32 always (its CPU provider has no bf16 matmul): the bf16 rows compare tunekit
// in bf16 with onnxruntime in fp32.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { machine, timeIt, runTorch, table, saveResults, fmt, openblasCoretype, fullBatchToken } from "./common.mjs";

const here = fileURLToPath(import.meta.url);
const argv = process.argv.slice(2);
const quick = argv.includes("--quick");
const numArg = (name, dflt) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : dflt);
// Median of at least `iters` runs and `time` seconds, after `warmup` runs (the first run of either side
// allocates its buffers and, for onnxruntime, its memory arena).
const opts = quick ? { time: 0, iters: 1, warmup: 1 } : { time: numArg("--time", 5), iters: numArg("--iters", 10), warmup: 3 };
const baseline = argv.includes("--baseline") ? path.resolve(argv[argv.indexOf("--baseline") + 1]) : null;
const rounds = numArg("--rounds", baseline ? 2 : 1);

const BASE = { layers: 12, hidden: 768, heads: 12, inter: 3072, vocab: 30522 };
const QUICK = { layers: 2, hidden: 64, heads: 2, inter: 128, vocab: 1000 };
const MODEL = quick ? QUICK : BASE;
const SEQ = quick ? 16 : 128;
const BATCHES = quick ? [1, 2] : [1, 16];
/** fp32 logits agree to this (absolute, on logits of order 1): the same sums in another order over 12 layers. */
const FP32_TOL = 1e-4;
/** bf16 rows: matmul inputs rounded to 8 mantissa bits; this bound only catches a broken kernel. */
const BF16_TOL = 0.1;

const ortSettings = (threads) => ({ executionProviders: ["cpu"], graphOptimizationLevel: "all", intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: "sequential" });

/** Child, onnxruntime side: the ONNX model in c.dir at c.batch × c.seq; seconds per run, peak RSS, logits. */
async function runOrt(c) {
  const ort = await import("onnxruntime-node");
  const session = await ort.InferenceSession.create(path.join(c.dir, "model.onnx"), ortSettings(c.threads));
  const n = c.batch * c.seq, dims = [c.batch, c.seq];
  const feeds = {
    input_ids: new ort.Tensor("int64", BigInt64Array.from({ length: n }, (_, i) => BigInt(fullBatchToken(i, c.model.vocab))), dims),
    token_type_ids: new ort.Tensor("int64", new BigInt64Array(n), dims),
    attention_mask: new ort.Tensor("int64", new BigInt64Array(n).fill(1n), dims),
  };
  const logits = Array.from((await session.run(feeds)).logits.data);
  const seconds = await timeIt(`onnxruntime B${c.batch}`, () => session.run(feeds), c.opts);
  await session.release();
  return { seconds, peakRssMB: process.resourceUsage().maxRSS / 1024, logits, version: ort.env.versions.node };
}

/** Child, tunekit side: the Hugging Face folder in c.dir (or random weights without one), in c.dtype. */
async function runOurs(c) {
  const tk = await import("../dist/index.js");
  const { randomBert, fullBatch, makeStep } = await import("./bert_step.mjs");
  if (c.dtype === "bf16") tk.native.setMatmulPrecision("bf16");
  let model;
  if (c.dir) {
    model = await tk.AutoModelForSequenceClassification.fromPretrained(c.dir, { warn: null });
    const { initialized, unexpected } = model.loadReport;
    if (initialized.length || unexpected.length) throw new Error(`the exported folder does not match tunekit's BERT: missing ${initialized.join(", ") || "none"}, unused ${unexpected.join(", ") || "none"}`);
  } else model = randomBert(c.model);
  const batch = fullBatch(c.batch, c.seq, c.model.vocab);
  const step = makeStep(model, batch, "infer"); // eval mode, noGrad, tidy: what inference in tunekit is
  const logits = tk.noGrad(() => tk.tidy(() => Array.from(model.forward(batch).logits.toHost())));
  const seconds = await timeIt(`tunekit B${c.batch} ${c.dtype}`, step, c.opts);
  return { seconds, peakRssMB: process.resourceUsage().maxRSS / 1024, logits };
}

/** One child run; script: this file, or the baseline checkout's (its own dist/ and addon). */
function child(args, script = here) {
  const out = execFileSync(process.execPath, [script, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 24 });
  return JSON.parse(out.trim().split("\n").pop());
}

/** The best (fastest) of several results of one side: the run least slowed by other work. */
const best = (runs) => runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));

function gitHead(dir) {
  try {
    return execFileSync("git", ["-C", dir, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
  } catch {
    return null;
  }
}

const maxAbsDiff = (a, b) => (a && b ? a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0) : null);

/** The CPU's model name as /proc/cpuinfo gives it (os.cpus() elsewhere). */
function cpuName() {
  try {
    return /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? os.cpus()[0]?.model;
  } catch {
    return os.cpus()[0]?.model ?? "unknown";
  }
}

async function main() {
  const tk = await import("../dist/index.js");
  const { bertFlops } = await import("./bert_step.mjs");
  const threads = tk.native.numThreads();
  const bf16Available = tk.native.bf16Available();
  const dtypes = !argv.includes("--no-bf16") && bf16Available ? ["fp32", "bf16"] : ["fp32"];
  const cpu = cpuName();
  const load = os.loadavg();
  const peak = tk.native.peakGflops(quick ? 0.05 : 0.5);
  console.log(`${cpu}, ${threads} threads on both sides (tunekit's native.numThreads()), ISA ${tk.native.isa()}, bf16 ${bf16Available ? "available" : "not available"}; measured FMA peak ${fmt(peak)} GFLOP/s (fp32)`);
  console.log(`load average ${load.map((x) => x.toFixed(2)).join(" ")} (the CPU may be shared: compare the ratio, measured in this run, not absolute times)`);

  let ortVersion = null;
  try {
    ortVersion = createRequire(import.meta.url)("onnxruntime-node/package.json").version;
  } catch {
    console.log("onnxruntime-node is not installed (it is a devDependency: npm install); tunekit alone is timed.");
  }
  openblasCoretype(tk.native); // PyTorch only exports here (and computes reference logits); nothing of it is timed
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-bench-infer-"));
  try {
    const exported = runTorch("torch_train.py", { mode: "export", ...MODEL, seq: SEQ, batches: BATCHES, threads, out: dir });
    if (exported) console.log(`PyTorch ${exported.torch} exported the model: ONNX opset ${exported.onnxOpset} and a Hugging Face folder (config.json, model.safetensors)`);
    else console.log("no exported model: onnxruntime is not run, and tunekit runs on its own random weights.");
    const withOrt = exported && ortVersion;
    if (withOrt) console.log(`onnxruntime-node ${ortVersion}, CPU execution provider, fp32, ${JSON.stringify(ortSettings(threads))}`);
    if (dtypes.includes("bf16")) console.log("bf16 rows: tunekit with native.setMatmulPrecision(\"bf16\"); onnxruntime stays fp32 (no bf16 matmul on its CPU provider)");

    if (baseline) console.log(`baseline: ${baseline} (its tunekit, same weights and inputs), ${rounds} rounds, each side in turn; best of the rounds`);
    const results = [], rows = [];
    for (const batch of BATCHES) {
      const f = bertFlops(MODEL, "infer", batch, SEQ);
      const c = { model: MODEL, batch, seq: SEQ, threads, opts, dir: exported ? dir : null };
      const runs = { ort: [], ...Object.fromEntries(dtypes.flatMap((d) => [[d, []], [`${d} baseline`, []]])) };
      const time = (label, key, args, script) => {
        process.stdout.write(`B${batch}×${SEQ} ${label} … `);
        const r = child(args, script);
        runs[key].push(r);
        console.log(`${fmt(r.seconds * 1e3, 1)} ms/run (load ${os.loadavg()[0].toFixed(1)})`);
      };
      for (let round = 0; round < rounds; round++) {
        if (withOrt) time("onnxruntime fp32", "ort", ["--ort", JSON.stringify(c)]);
        for (const dtype of dtypes) {
          time(`tunekit ${dtype}`, dtype, ["--ours", JSON.stringify({ ...c, dtype })]);
          if (baseline) time(`baseline tunekit ${dtype}`, `${dtype} baseline`, ["--ours", JSON.stringify({ ...c, dtype })], path.join(baseline, "bench", "infer.mjs"));
        }
      }
      const ort = runs.ort.length ? best(runs.ort) : null;
      for (const dtype of dtypes) {
        const ours = best(runs[dtype]);
        const before = baseline ? best(runs[`${dtype} baseline`]) : null;
        const diff = maxAbsDiff(ours.logits, ort?.logits);
        const diffTorch = maxAbsDiff(ort?.logits, exported?.logits[batch]);
        const ratio = ort ? ort.seconds / ours.seconds : null;
        const side = (r) => r && { seconds: r.seconds, samplesPerSec: batch / r.seconds, latencyMs: r.seconds * 1e3, gflops: f / r.seconds / 1e9, peakRssMB: r.peakRssMB };
        const beforeRatio = ort && before ? ort.seconds / before.seconds : null;
        const secs = (rs) => rs.map((r) => r.seconds);
        results.push({
          batch, seq: SEQ, dtype, flops: f, tunekit: side(ours), onnxruntime: ort && { ...side(ort), dtype: "fp32" }, ratio, maxAbsDiff: diff, onnxruntimeVsTorchMaxAbsDiff: diffTorch,
          ...(baseline && { baseline: { ...side(before), ratio: beforeRatio, maxAbsDiffVsTunekit: maxAbsDiff(ours.logits, before.logits) }, rounds: { tunekit: secs(runs[dtype]), baseline: secs(runs[`${dtype} baseline`]), onnxruntime: secs(runs.ort) } }),
        });
        rows.push({
          case: `B${batch}×${SEQ} ${dtype}`, "tunekit samples/s": fmt(batch / ours.seconds, 2), "ORT fp32 samples/s": fmt(ort && batch / ort.seconds, 2),
          ratio: ratio ? fmt(ratio, 2) + "x" : "-", "baseline samples/s": before ? fmt(batch / before.seconds, 2) : "-", "baseline ratio": beforeRatio ? fmt(beforeRatio, 2) + "x" : "-",
          "tunekit ms": batch === 1 ? fmt(ours.seconds * 1e3, 1) : "", "baseline ms": batch === 1 && before ? fmt(before.seconds * 1e3, 1) : "", "ORT ms": batch === 1 ? fmt(ort?.seconds * 1e3, 1) : "",
          "tunekit GFLOP/s": fmt(f / ours.seconds / 1e9), "ORT GFLOP/s": fmt(ort && f / ort.seconds / 1e9),
          "max|Δ| logits": diff == null ? "-" : diff.toExponential(1), "RSS MB": fmt(ours.peakRssMB, 0), "ORT RSS MB": fmt(ort?.peakRssMB, 0),
        });
      }
    }
    console.log();
    const baseCols = baseline ? ["baseline samples/s", "baseline ratio"] : [];
    table(rows, ["case", "tunekit samples/s", "ORT fp32 samples/s", "ratio", ...baseCols, "tunekit ms", ...(baseline ? ["baseline ms"] : []), "ORT ms", "tunekit GFLOP/s", "ORT GFLOP/s", "max|Δ| logits", "RSS MB", "ORT RSS MB"]);
    console.log(`${cpu}, ${threads} threads; ratio = onnxruntime time / tunekit time; ms = latency of one batch-1 run (median); max|Δ| = tunekit vs onnxruntime logits`);
    for (const r of results.filter((r) => r.onnxruntimeVsTorchMaxAbsDiff != null && r.dtype === "fp32"))
      console.log(`B${r.batch}: onnxruntime vs PyTorch logits max|Δ| ${r.onnxruntimeVsTorchMaxAbsDiff.toExponential(1)} (the export is faithful)`);
    if (quick) console.log("(--quick: tiny shapes, one timed run; the numbers mean nothing)");
    saveResults(`infer${quick ? "-quick" : ""}${baseline ? "-vs-baseline" : ""}`, {
      date: new Date().toISOString(), machine: { ...machine(tk.native), cpu }, loadAverage: { before: load, after: os.loadavg() }, timing: { ...opts, rounds },
      baseline: baseline && { dir: baseline, commit: gitHead(baseline) }, commit: gitHead(path.dirname(path.dirname(here))),
      note: "the CPU may be shared with other work; ratios are measured in the same run, case by case; onnxruntime runs fp32 in every row",
      model: MODEL, peakGflops: peak, bf16Available,
      onnxruntime: withOrt ? { version: ortVersion, dtype: "fp32", settings: ortSettings(threads) } : null,
      export: exported ? { torch: exported.torch, onnxOpset: exported.onnxOpset } : null, results,
    });
    // Same weights on both sides, or the timings compare different things.
    const bad = results.filter((r) => r.maxAbsDiff != null && r.maxAbsDiff > (r.dtype === "fp32" ? FP32_TOL : BF16_TOL));
    const badExport = results.filter((r) => r.onnxruntimeVsTorchMaxAbsDiff != null && r.onnxruntimeVsTorchMaxAbsDiff > FP32_TOL);
    if (bad.length || badExport.length) {
      for (const r of bad) console.error(`B${r.batch} ${r.dtype}: tunekit and onnxruntime logits differ by ${r.maxAbsDiff} (> ${r.dtype === "fp32" ? FP32_TOL : BF16_TOL})`);
      for (const r of badExport) console.error(`B${r.batch}: onnxruntime and PyTorch logits differ by ${r.onnxruntimeVsTorchMaxAbsDiff} (> ${FP32_TOL})`);
      process.exitCode = 1;
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (argv[0] === "--ort") console.log(JSON.stringify(await runOrt(JSON.parse(argv[1]))));
else if (argv[0] === "--ours") console.log(JSON.stringify(await runOurs(JSON.parse(argv[1]))));
else await main();
