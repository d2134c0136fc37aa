// Plain-text output of the CLI: aligned tables, a confusion matrix, metrics on one line. --json
// replaces all of it with one JSON document on stdout.
import type { Metrics } from "../train/trainer";
import { isWorldProcessZero } from "../distributed/process_group";

export interface Out {
  json: boolean;
  /** Human lines (suppressed under --json; they go to stderr there so stdout stays parseable). */
  line(s?: string): void;
  /** The machine-readable result (printed under --json only). */
  result(obj: unknown): void;
}

/** Under data parallelism only the first process prints (HF's is_world_process_zero); the others stay silent. */
export function output(json: boolean): Out {
  if (!isWorldProcessZero()) return { json, line: () => undefined, result: () => undefined };
  return {
    json,
    line: (s = "") => (json ? process.stderr.write(s + "\n") : process.stdout.write(s + "\n")),
    result: (obj) => { if (json) process.stdout.write(JSON.stringify(obj, null, 2) + "\n"); },
  };
}

export function table(rows: (string | number)[][], header?: string[]): string {
  const all = header ? [header, ...rows] : rows;
  const cells = all.map((r) => r.map((c) => (typeof c === "number" ? fmt(c) : c)));
  const width = cells[0].map((_, j) => Math.max(...cells.map((r) => String(r[j] ?? "").length)));
  const line = (r: string[]) => r.map((c, j) => (typeof all[0][j] === "number" || /^-?[\d.]+%?$/.test(c) ? c.padStart(width[j]) : c.padEnd(width[j]))).join("  ").trimEnd();
  const out = cells.map(line);
  if (header) out.splice(1, 0, width.map((w) => "-".repeat(w)).join("  "));
  return out.join("\n");
}

export function fmt(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(4);
}

/** Scalar metrics as "accuracy 0.9312, f1 0.9021, …" (matrices left out). */
export function metricLine(m: Metrics, keys?: string[]): string {
  return Object.entries(m).filter(([k, v]) => typeof v === "number" && (!keys || keys.includes(k)))
    .map(([k, v]) => `${k} ${fmt(v as number)}`).join(", ");
}

export function confusionTable(labels: string[], matrix: number[][]): string {
  const rows = matrix.map((r, i) => [`true ${labels[i]}`, ...r.map((v) => String(v))]);
  return table(rows, ["", ...labels.map((l) => `pred ${l}`)]);
}

export function clip(s: string, n = 90): string {
  const one = s.replace(/\s+/g, " ").trim();
  return one.length > n ? one.slice(0, n - 1) + "…" : one;
}
