// `npm run bench:train`: end-to-end training speed and memory, tunekit next to PyTorch (bench/torch_train.py,
// an equivalent plain-torch BERT) on the same shapes with random weights, in one command. Every case runs
// in its own child process on both sides, so each peak RSS is that case's own.
//   node bench/train.mjs            fp32 table (+ bf16 rows where the CPU has AVX512-BF16) → bench/results/train.json
//   node bench/train.mjs --quick    tiny shapes, 1–2 steps: checks that every case runs (CI; numbers mean nothing)
//   node bench/train.mjs --only mini   cases whose name contains "mini"
//   node bench/train.mjs --no-bf16     fp32 only
//   node bench/train.mjs --iters 2 --time 0   fewer timed steps (a busy machine)
//   node bench/train.mjs --baseline ../main --rounds 2 --no-torch   also times another checkout's tunekit (built)
//                                      in the same sitting, each side in turn, `rounds` times; best of the rounds
// A step is what the Trainer does: forward + backward (dropout 0.1 on), global-norm clip at 1.0, AdamW.
import { execFileSync } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as tk from "../dist/index.js";
import { machine, timeIt, runTorch, table, saveResults, fmt, openblasCoretype, MIN_TORCH_GEMM_GFLOPS } from "./common.mjs";
import { randomBert, fullBatch, makeStep, bertFlops as flops } from "./bert_step.mjs";

const here = fileURLToPath(import.meta.url);
const argv = process.argv.slice(2);
const quick = argv.includes("--quick");
const numArg = (name, dflt) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : dflt);
// Median of at least `iters` steps and `time` seconds, after one warm-up step (--iters / --time override).
const opts = quick ? { time: 0, iters: 1 } : { time: numArg("--time", 8), iters: numArg("--iters", 3) };
const baseline = argv.includes("--baseline") ? argv[argv.indexOf("--baseline") + 1] : null;
const rounds = numArg("--rounds", baseline ? 2 : 1);

const BASE = { layers: 12, hidden: 768, heads: 12, inter: 3072, vocab: 30522 };
const MINI = { layers: 4, hidden: 256, heads: 4, inter: 1024, vocab: 30522 };
const TINY = { layers: 2, hidden: 128, heads: 2, inter: 512, vocab: 30522 };
const QUICK = { layers: 2, hidden: 64, heads: 2, inter: 128, vocab: 1000 };
// [name, model, mode, batch, seq, target ratio over torch fp32]
const CASES = quick
  ? [["quick/full", QUICK, "full", 2, 16], ["quick/lora", QUICK, "lora", 2, 16], ["quick/infer", QUICK, "infer", 2, 16]]
  : [
      ["base/full", BASE, "full", 16, 128, 1.5],
      ["base/lora", BASE, "lora", 16, 128, 1.5],
      ["base/infer", BASE, "infer", 16, 128, 1.3],
      ["mini/full", MINI, "full", 32, 128, 2],
      ["tiny/full", TINY, "full", 32, 128, 2],
    ];
const BF16_TARGET = { "base/full": 2.5 };

/** Child: one case on our side; prints seconds per step and peak RSS as JSON. */
async function runOurs(c) {
  if (c.dtype === "bf16") tk.native.setMatmulPrecision("bf16");
  const step = makeStep(randomBert(c.model), fullBatch(c.batch, c.seq, c.model.vocab), c.mode);
  // The FMA peak as the cores give it to this process now (on a shared machine far below the idle
  // peak): measured around the timed steps, so "% of peak" compares like with like.
  const peakBefore = tk.native.peakGflops(0.2);
  const seconds = await timeIt(c.name, step, c.opts ?? opts);
  return { seconds, peakRssMB: process.resourceUsage().maxRSS / 1024, peakGflops: Math.max(peakBefore, tk.native.peakGflops(0.2)) };
}

/** One child run; script: this file, or the baseline checkout's (its own dist/ and addon). */
function child(args, script = here) {
  const out = execFileSync(process.execPath, [script, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 24 });
  return JSON.parse(out.trim().split("\n").pop());
}

/** The best (fastest) of several runs of one side: the one least slowed by other work. */
const best = (runs) => runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));

async function main() {
  const only = argv.includes("--only") ? argv[argv.indexOf("--only") + 1] : "";
  const threads = tk.native.numThreads();
  const peak = tk.native.peakGflops(quick ? 0.05 : 0.5);
  const bf16Available = tk.native.bf16Available();
  const bf16 = !argv.includes("--no-bf16") && bf16Available;
  const load = os.loadavg();
  console.log(`tunekit training on ${machine(tk.native).cpu}, ${threads} threads, ISA ${tk.native.isa()}, bf16 ${bf16Available ? "available" : "not available"}; measured FMA peak ${fmt(peak)} GFLOP/s (fp32)`);
  console.log(`load average ${load.map((x) => x.toFixed(2)).join(" ")} (the CPU may be shared: compare the ratio, measured in this run, not absolute times)`);

  openblasCoretype(tk.native);
  const gemmShape = quick ? [64, 64, 64] : [2048, 768, 3072];
  const tg = argv.includes("--no-torch") ? null : runTorch("torch_train.py", { mode: "gemm", shape: gemmShape, threads, time: quick ? 0 : 2, iters: quick ? 1 : 5 });
  const torchGemm = tg?.gflops ?? 0;
  const comparable = tg && (quick || torchGemm >= MIN_TORCH_GEMM_GFLOPS);
  if (tg) console.log(`PyTorch ${tg.torch}: GEMM ${gemmShape.join("x")} at ${fmt(torchGemm)} GFLOP/s`);
  if (tg && !comparable) console.log(`PyTorch's GEMM runs at ${fmt(torchGemm)} GFLOP/s (< ${MIN_TORCH_GEMM_GFLOPS}): it is on the reference BLAS, so no comparison is made. Install libopenblas0-pthread.`);

  const results = [], rows = [];
  const dtypes = bf16 ? ["fp32", "bf16"] : ["fp32"];
  for (const [name, model, mode, batch, seq, target] of CASES.filter(([n]) => n.includes(only))) {
    const f = flops(model, mode, batch, seq);
    let torch = null;
    if (comparable) {
      const t = runTorch("torch_train.py", { mode, ...model, batch, seq, threads, ...opts, dtype: "fp32" });
      if (t) torch = { seconds: t.seconds, samplesPerSec: batch / t.seconds, peakRssMB: t.peakRssMB, gflops: f / t.seconds / 1e9 };
    }
    for (const dtype of dtypes) {
      const args = ["--run", JSON.stringify({ name, model, mode, batch, seq, dtype, opts })];
      const mine = [], theirs = [];
      for (let round = 0; round < rounds; round++) {
        process.stdout.write(`${name} ${dtype} … `);
        mine.push(child(args));
        console.log(`${fmt(mine.at(-1).seconds * 1e3, 0)} ms/step (load ${os.loadavg()[0].toFixed(1)})`);
        if (!baseline) continue;
        process.stdout.write(`${name} ${dtype} baseline … `);
        theirs.push(child(args, path.join(path.resolve(baseline), "bench", "train.mjs")));
        console.log(`${fmt(theirs.at(-1).seconds * 1e3, 0)} ms/step (load ${os.loadavg()[0].toFixed(1)})`);
      }
      const ours = best(mine), before = baseline ? best(theirs) : null;
      const sps = batch / ours.seconds, gf = f / ours.seconds / 1e9, casePeak = ours.peakGflops ?? peak;
      const ratio = torch ? torch.seconds / ours.seconds : null;
      const want = dtype === "bf16" ? BF16_TARGET[name] : target;
      // % of peak: each side against the FMA peak its own child measured around its steps
      const baseGf = before && f / before.seconds / 1e9, basePeak = before && (before.peakGflops ?? peak);
      results.push({
        name, dtype, mode, model, batch, seq, flops: f, seconds: ours.seconds, samplesPerSec: sps, gflops: gf, peakGflops: casePeak, peakFraction: gf / casePeak, peakRssMB: ours.peakRssMB, torch, ratio, target: want ?? null, met: quick || !want || ratio == null ? null : ratio >= want && ours.peakRssMB <= torch.peakRssMB,
        ...(baseline && { baseline: { seconds: before.seconds, samplesPerSec: batch / before.seconds, gflops: baseGf, peakGflops: basePeak, peakFraction: baseGf / basePeak, peakRssMB: before.peakRssMB }, rounds: { tunekit: mine.map((r) => r.seconds), baseline: theirs.map((r) => r.seconds) } }),
      });
      rows.push({ case: `${name} ${dtype}`, "samples/s": fmt(sps, 2), "torch fp32": fmt(torch?.samplesPerSec, 2), ratio: ratio ? fmt(ratio, 2) + "x" : "-", target: want ? `${want}x` : "-", "GFLOP/s": fmt(gf), "% peak": fmt((100 * gf) / casePeak), "baseline samples/s": before ? fmt(batch / before.seconds, 2) : "-", "baseline % peak": before ? fmt((100 * baseGf) / basePeak) : "-", "torch GFLOP/s": fmt(torch?.gflops), "RSS MB": fmt(ours.peakRssMB, 0), "baseline RSS MB": before ? fmt(before.peakRssMB, 0) : "-", "torch RSS MB": fmt(torch?.peakRssMB, 0) });
    }
  }
  const baseCols = baseline ? ["baseline samples/s", "baseline % peak"] : [];
  table(rows, ["case", "samples/s", "torch fp32", "ratio", "target", "GFLOP/s", "% peak", ...baseCols, "torch GFLOP/s", "RSS MB", ...(baseline ? ["baseline RSS MB"] : []), "torch RSS MB"]);
  if (quick) console.log("(--quick: tiny shapes, one step; the numbers mean nothing)");
  saveResults(`train${quick ? "-quick" : ""}${only ? "-" + only.replace(/[^a-z0-9]+/gi, "_") : ""}${baseline ? "-vs-baseline" : ""}`, {
    date: new Date().toISOString(), machine: machine(tk.native), loadAverage: { before: load, after: os.loadavg() }, timing: { ...opts, rounds }, baseline,
    note: "the CPU is shared with other work; ratios are measured in the same run, case by case",
    peakGflops: peak, bf16Available,
    torch: tg ? { version: tg.torch, threads: tg.threads, gemmGflops: torchGemm, gemmShape, openblasCoretype: process.env.OPENBLAS_CORETYPE ?? null } : null, results,
  });
}

if (argv[0] === "--run") console.log(JSON.stringify(await runOurs(JSON.parse(argv[1]))));
else await main();
