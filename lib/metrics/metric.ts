// The streaming-metric interface and the helpers every metric shares. Metrics are computed batch by batch:
// each keeps small running counts (a confusion matrix, entity counts, sums), never the logits. Definitions
// follow the reference implementations people compare against: scikit-learn (zero_division=0), seqeval's
// default mode, the official SQuAD v1.1 script, scipy.
import { TunekitError } from "../errors";

export type MetricValues = Record<string, number | number[][]>;

/** A streaming metric: update() once per batch, compute() at the end (repeatable), reset() to start over. */
export interface Metric<Args extends unknown[] = unknown[]> {
  update(...args: Args): void;
  compute(): MetricValues;
  reset(): void;
}

export function fail(where: string, msg: string): never {
  throw new TunekitError(`${where}: ${msg}`);
}

export function checkCount(where: string, name: string, v: unknown, min: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) fail(where, `${name} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

export function checkRows(where: string, scores: ArrayLike<number>, numLabels: number): number {
  if (scores.length % numLabels !== 0) fail(where, `logits length ${scores.length} is not a multiple of numLabels ${numLabels}`);
  return scores.length / numLabels;
}

/** P, R, F1 with scikit-learn's zero_division=0: an empty denominator gives 0, never NaN. F1 = 2tp / (2tp + fp + fn). */
export function prf(tp: number, predicted: number, actual: number): [number, number, number] {
  return [
    predicted > 0 ? tp / predicted : 0,
    actual > 0 ? tp / actual : 0,
    predicted + actual > 0 ? (2 * tp) / (predicted + actual) : 0,
  ];
}

/** Index of the largest value of one row; the first one on ties (as torch.argmax). */
function argmaxRow(where: string, scores: ArrayLike<number>, base: number, numLabels: number): number {
  let best = 0;
  let bestV = scores[base];
  for (let j = 0; j < numLabels; j++) {
    const v = scores[base + j];
    if (Number.isNaN(v)) fail(where, `logits contain NaN (row ${base / numLabels}, column ${j})`);
    if (v > bestV) {
      bestV = v;
      best = j;
    }
  }
  return best;
}

/** Row-wise argmax of row-major logits [rows, numLabels]; ties take the first index; NaN is refused. */
export function argmax(logits: ArrayLike<number>, numLabels: number): Int32Array {
  checkCount("argmax", "numLabels", numLabels, 1);
  const rows = checkRows("argmax", logits, numLabels);
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) out[r] = argmaxRow("argmax", logits, r * numLabels, numLabels);
  return out;
}
