// Shared by the benchmarks: machine description, timing with tinybench, the PyTorch side, results.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { Bench } from "tinybench";

export const benchDir = path.dirname(fileURLToPath(import.meta.url));
export const TORCH_PYTHON = process.env.TUNEKIT_TORCH_PYTHON ?? "/usr/bin/python3";
/** Below this GEMM rate PyTorch runs on the reference BLAS: a comparison against it means nothing. */
export const MIN_TORCH_GEMM_GFLOPS = 100;

export function machine(native) {
  const cpu = os.cpus()[0]?.model ?? "unknown";
  return { cpu, cores: os.cpus().length, threads: native.numThreads(), isa: native.isa(), node: process.version, platform: `${process.platform}-${process.arch}` };
}

/**
 * Debian's OpenBLAS (0.3.21) does not recognise newer Xeons and falls back to its Prescott (SSE3) kernels,
 * ~20 GFLOP/s here: names the nearest core it has for the PyTorch children, unless the caller chose one.
 */
export function openblasCoretype(native) {
  if (!process.env.OPENBLAS_CORETYPE && native.isa() === "avx512") process.env.OPENBLAS_CORETYPE = native.bf16Available() ? "Cooperlake" : "SkylakeX";
  if (process.env.OPENBLAS_CORETYPE) console.log(`OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE} for PyTorch's OpenBLAS`);
}

/** Median seconds of fn (sync or async) over at least `iters` runs and `time` seconds after `warmup` runs, measured by tinybench. */
export async function timeIt(name, fn, { time, iters, warmup = 1 }) {
  const bench = new Bench({ time: time * 1000, iterations: iters, warmupIterations: warmup, warmupTime: 0 });
  bench.add(name, fn);
  await bench.run();
  const r = bench.tasks[0].result;
  if (!r || !r.latency) throw new Error(`benchmark ${name} failed: ${r?.error ?? r?.state}`);
  return (r.latency.p50 ?? r.latency.mean) / 1000;
}

/** Runs the PyTorch script with the same shapes; null (with the reason printed) when torch is absent. */
export function runTorch(script, config) {
  try {
    const out = execFileSync(TORCH_PYTHON, [path.join(benchDir, script), JSON.stringify(config)], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 24 });
    return JSON.parse(out.trim().split("\n").pop());
  } catch (e) {
    const why = String(e.stderr || e.message).trim().split("\n").pop();
    console.log(`PyTorch side unavailable (${TORCH_PYTHON}: ${why}); install Debian's python3-torch and libopenblas0-pthread to compare.`);
    return null;
  }
}

/** Token i of bert_step.mjs's fullBatch: bench/infer.mjs feeds the same ids to onnxruntime, torch_train.py's export to PyTorch. */
export const fullBatchToken = (i, vocab) => 1 + ((i * 7919) % (vocab - 1));

export function table(rows, columns) {
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? "").length)));
  const line = (cells) => cells.map((c, i) => String(c ?? "").padStart(widths[i])).join("  ");
  console.log(line(columns));
  for (const r of rows) console.log(line(columns.map((c) => r[c])));
}

export function saveResults(name, data) {
  const dir = path.join(benchDir, "results");
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(data, null, 2) + "\n");
  console.log(`results written to ${path.relative(process.cwd(), file)}`);
}

export const fmt = (x, d = 1) => (x == null || !Number.isFinite(x) ? "-" : x.toFixed(d));
