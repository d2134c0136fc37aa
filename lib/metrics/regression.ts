// Regression: Pearson and Spearman correlation (as scipy.stats) and MSE.
import type { Metric, MetricValues } from "./metric";
import { fail } from "./metric";

/** scipy.stats.pearsonr: NaN when either input is constant (or has < 2 values). */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  if (y.length !== n) fail("pearson", `${n} values for ${y.length}`);
  let cx = n >= 2, cy = n >= 2;
  for (let i = 1; i < n; i++) {
    if (x[i] !== x[0]) cx = false;
    if (y[i] !== y[0]) cy = false;
  }
  if (n < 2 || cx || cy) return NaN;
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return Math.max(-1, Math.min(1, sxy / (Math.sqrt(sxx) * Math.sqrt(syy))));
}

/** 1-based ranks with ties given their average rank (scipy.stats.rankdata(method="average")). */
export function averageRanks(x: ArrayLike<number>): Float64Array {
  const n = x.length;
  for (let i = 0; i < n; i++) if (Number.isNaN(x[i])) fail("averageRanks", `NaN at ${i}`);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => x[a] - x[b] || a - b);
  const ranks = new Float64Array(n);
  for (let i = 0; i < n; ) {
    let j = i + 1;
    while (j < n && x[order[j]] === x[order[i]]) j++;
    const r = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) ranks[order[k]] = r;
    i = j;
  }
  return ranks;
}

/** scipy.stats.spearmanr: Pearson of average ranks; NaN for constant input. */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (y.length !== x.length) fail("spearman", `${x.length} values for ${y.length}`);
  return pearson(averageRanks(x), averageRanks(y));
}

/**
 * Regression / similarity (STS-B): compute() gives pearson, spearman and mse. Ranks need every value, so
 * this keeps the (prediction, label) pairs: 16 bytes per example, not logits.
 */
export class RegressionMetric implements Metric<[ArrayLike<number>, ArrayLike<number>]> {
  private pred = new Float64Array(1024);
  private label = new Float64Array(1024);
  private n = 0;

  /** predictions and labels: one number per example (a [n, 1] regression head's output as is). */
  update(predictions: ArrayLike<number>, labels: ArrayLike<number>): void {
    const where = "RegressionMetric.update";
    if (predictions.length !== labels.length) fail(where, `${predictions.length} predictions for ${labels.length} labels`);
    for (let i = 0; i < labels.length; i++) {
      if (!Number.isFinite(predictions[i])) fail(where, `prediction ${predictions[i]} at ${i} is not finite`);
      if (!Number.isFinite(labels[i])) fail(where, `label ${labels[i]} at ${i} is not finite`);
    }
    const need = this.n + labels.length;
    if (need > this.pred.length) {
      const cap = Math.max(need, 2 * this.pred.length);
      const grow = (a: Float64Array) => {
        const b = new Float64Array(cap);
        b.set(a.subarray(0, this.n));
        return b;
      };
      this.pred = grow(this.pred);
      this.label = grow(this.label);
    }
    for (let i = 0; i < labels.length; i++) {
      this.pred[this.n + i] = predictions[i];
      this.label[this.n + i] = labels[i];
    }
    this.n = need;
  }

  reset(): void {
    this.n = 0;
  }

  compute(): MetricValues {
    if (this.n === 0) fail("RegressionMetric.compute", "no examples were given to update()");
    const p = this.pred.subarray(0, this.n), y = this.label.subarray(0, this.n);
    let se = 0;
    for (let i = 0; i < this.n; i++) se += (p[i] - y[i]) ** 2;
    return { pearson: pearson(p, y), spearman: spearman(p, y), mse: se / this.n };
  }
}
