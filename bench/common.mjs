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

/** Median seconds of fn over at least `iters` runs and `time` seconds, measured by tinybench. */
export async function timeIt(name, fn, { time, iters }) {
  const bench = new Bench({ time: time * 1000, iterations: iters, warmupIterations: 1, warmupTime: 0 });
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
