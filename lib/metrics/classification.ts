// Classification metrics: single-label (confusion matrix, as scikit-learn with zero_division=0), multi-label,
// and the most confident errors of a classifier.
import type { Metric, MetricValues } from "./metric";
import { fail, checkCount, checkRows, prf, argmax } from "./metric";

export interface ClassificationOptions {
  numLabels: number;
  /** Adds precision/recall/f1 of this label (one-vs-rest). Default 1 when numLabels is 2, else none. */
  positiveLabel?: number;
  /** Examples with this label are skipped (HF's -100 for padding and sub-word positions); null to refuse it. */
  ignoreIndex?: number | null;
}

/**
 * Single-label classification from predicted ids (or logits) and true ids, accumulated in a confusion matrix.
 * compute(): accuracy; precision/recall/f1 of the positive label; macro_* and weighted_* (support-weighted)
 * averages over the labels that occur in the labels or the predictions, as scikit-learn; confusion_matrix
 * [true][predicted].
 */
export class ClassificationMetric implements Metric<[ArrayLike<number>, ArrayLike<number>]> {
  readonly numLabels: number;
  readonly positiveLabel: number | null;
  readonly ignoreIndex: number | null;
  private readonly cm: Float64Array;

  constructor(options: ClassificationOptions) {
    const where = "ClassificationMetric";
    this.numLabels = checkCount(where, "numLabels", options.numLabels, 2);
    const pos = options.positiveLabel ?? (this.numLabels === 2 ? 1 : null);
    if (pos !== null && (!Number.isInteger(pos) || pos < 0 || pos >= this.numLabels))
      fail(where, `positiveLabel must be an integer in [0, ${this.numLabels}), got ${String(pos)}`);
    this.positiveLabel = pos;
    this.ignoreIndex = options.ignoreIndex === undefined ? -100 : options.ignoreIndex;
    this.cm = new Float64Array(this.numLabels * this.numLabels);
  }

  /** predictions and labels: one class id per example. A bad id anywhere leaves the counts untouched. */
  update(predictions: ArrayLike<number>, labels: ArrayLike<number>): void {
    const where = "ClassificationMetric.update";
    if (predictions.length !== labels.length) fail(where, `${predictions.length} predictions for ${labels.length} labels`);
    const L = this.numLabels;
    for (let i = 0; i < labels.length; i++) {
      const y = labels[i];
      if (y === this.ignoreIndex) continue;
      if (!Number.isInteger(y) || y < 0 || y >= L) fail(where, `label ${y} at ${i} is not in [0, ${L})${this.ignoreIndex === null ? "" : ` or ${this.ignoreIndex}`}`);
      const p = predictions[i];
      if (!Number.isInteger(p) || p < 0 || p >= L) fail(where, `prediction ${p} at ${i} is not in [0, ${L})`);
    }
    for (let i = 0; i < labels.length; i++) if (labels[i] !== this.ignoreIndex) this.cm[labels[i] * L + predictions[i]]++;
  }

  /** Row-major logits [n, numLabels] → argmax → update. */
  updateLogits(logits: ArrayLike<number>, labels: ArrayLike<number>): void {
    if (logits.length !== labels.length * this.numLabels)
      fail("ClassificationMetric.updateLogits", `logits length ${logits.length} != ${labels.length} labels x ${this.numLabels}`);
    this.update(argmax(logits, this.numLabels), labels);
  }

  reset(): void {
    this.cm.fill(0);
  }

  confusionMatrix(): number[][] {
    const L = this.numLabels;
    return Array.from({ length: L }, (_, t) => Array.from(this.cm.subarray(t * L, (t + 1) * L)));
  }

  compute(): MetricValues {
    const L = this.numLabels;
    const cm = this.cm;
    const actual = new Float64Array(L), predicted = new Float64Array(L);
    let total = 0, correct = 0;
    for (let t = 0; t < L; t++) {
      for (let p = 0; p < L; p++) {
        const c = cm[t * L + p];
        actual[t] += c;
        predicted[p] += c;
      }
      correct += cm[t * L + t];
      total += actual[t];
    }
    if (total === 0) fail("ClassificationMetric.compute", "no examples were given to update()");
    let present = 0;
    const macro = [0, 0, 0], weighted = [0, 0, 0];
    for (let l = 0; l < L; l++) {
      if (actual[l] === 0 && predicted[l] === 0) continue; // scikit-learn averages over labels seen
      present++;
      const s = prf(cm[l * L + l], predicted[l], actual[l]);
      for (let k = 0; k < 3; k++) {
        macro[k] += s[k];
        weighted[k] += s[k] * actual[l];
      }
    }
    const out: MetricValues = { accuracy: correct / total };
    if (this.positiveLabel !== null) {
      const l = this.positiveLabel;
      [out.precision, out.recall, out.f1] = prf(cm[l * L + l], predicted[l], actual[l]);
    }
    [out.macro_precision, out.macro_recall, out.macro_f1] = macro.map((v) => v / present);
    [out.weighted_precision, out.weighted_recall, out.weighted_f1] = weighted.map((v) => v / total);
    out.confusion_matrix = this.confusionMatrix();
    return out;
  }
}

// ------------------------------------------------------------------------------------------ multi-label

export interface MultiLabelOptions {
  numLabels: number;
  /** A label is predicted when its probability is > threshold (default 0.5). */
  threshold?: number;
  /** "logits" (default): probability = sigmoid(score); "probabilities": scores are probabilities already. */
  scores?: "logits" | "probabilities";
}

/**
 * Multi-label classification (one sigmoid per label). compute(): subset_accuracy (every label right: what
 * scikit-learn's accuracy_score gives for multi-label input), micro_* and macro_* precision/recall/f1; the
 * macro average runs over every label column, as scikit-learn does for indicator matrices.
 */
export class MultiLabelMetric implements Metric<[ArrayLike<number>, ArrayLike<number>]> {
  readonly numLabels: number;
  readonly threshold: number;
  readonly fromLogits: boolean;
  private readonly tp: Float64Array;
  private readonly predicted: Float64Array;
  private readonly actual: Float64Array;
  private rows = 0;
  private exact = 0;

  constructor(options: MultiLabelOptions) {
    const where = "MultiLabelMetric";
    this.numLabels = checkCount(where, "numLabels", options.numLabels, 1);
    this.threshold = options.threshold ?? 0.5;
    if (!(this.threshold >= 0 && this.threshold < 1)) fail(where, `threshold must be in [0, 1), got ${this.threshold}`);
    const scores = options.scores ?? "logits";
    if (scores !== "logits" && scores !== "probabilities") fail(where, `scores must be "logits" or "probabilities", got ${String(scores)}`);
    this.fromLogits = scores === "logits";
    this.tp = new Float64Array(this.numLabels);
    this.predicted = new Float64Array(this.numLabels);
    this.actual = new Float64Array(this.numLabels);
  }

  /** scores and targets: row-major [n, numLabels]; targets are 0 or 1. */
  update(scores: ArrayLike<number>, targets: ArrayLike<number>): void {
    const where = "MultiLabelMetric.update";
    if (scores.length !== targets.length) fail(where, `${scores.length} scores for ${targets.length} targets`);
    const L = this.numLabels;
    const n = checkRows(where, scores, L);
    for (let i = 0; i < targets.length; i++) {
      if (targets[i] !== 0 && targets[i] !== 1) fail(where, `target ${targets[i]} at ${i} is not 0 or 1`);
      if (Number.isNaN(scores[i])) fail(where, `scores contain NaN at ${i}`);
    }
    for (let r = 0; r < n; r++) {
      let same = true;
      for (let j = 0; j < L; j++) {
        const s = scores[r * L + j];
        const pos = (this.fromLogits ? 1 / (1 + Math.exp(-s)) : s) > this.threshold;
        const y = targets[r * L + j] === 1;
        if (pos) this.predicted[j]++;
        if (y) this.actual[j]++;
        if (pos && y) this.tp[j]++;
        if (pos !== y) same = false;
      }
      if (same) this.exact++;
    }
    this.rows += n;
  }

  reset(): void {
    this.tp.fill(0);
    this.predicted.fill(0);
    this.actual.fill(0);
    this.rows = this.exact = 0;
  }

  compute(): MetricValues {
    if (this.rows === 0) fail("MultiLabelMetric.compute", "no examples were given to update()");
    let tp = 0, pr = 0, ac = 0;
    const macro = [0, 0, 0];
    for (let j = 0; j < this.numLabels; j++) {
      tp += this.tp[j];
      pr += this.predicted[j];
      ac += this.actual[j];
      prf(this.tp[j], this.predicted[j], this.actual[j]).forEach((v, k) => (macro[k] += v));
    }
    const [micro_precision, micro_recall, micro_f1] = prf(tp, pr, ac);
    const [macro_precision, macro_recall, macro_f1] = macro.map((v) => v / this.numLabels);
    return { subset_accuracy: this.exact / this.rows, micro_precision, micro_recall, micro_f1, macro_precision, macro_recall, macro_f1 };
  }
}

/** A misclassified example: index counts every row given to update() since the last reset(). */
export interface ConfidentError {
  index: number;
  label: number;
  predicted: number;
  /** softmax probability of the predicted class */
  confidence: number;
}

/**
 * Keeps the k misclassified examples the model was most confident about while streaming (O(k) memory).
 * compute(): errors as rows [index, label, predicted, confidence] (most confident first, earlier index on
 * ties), error_count and count (rows scored, ignored labels excluded).
 */
export class MostConfidentErrors implements Metric<[ArrayLike<number>, ArrayLike<number>]> {
  private kept: ConfidentError[] = [];
  private seen = 0;
  private scored = 0;
  private wrong = 0;

  constructor(readonly k: number, readonly numLabels: number, readonly ignoreIndex: number | null = -100) {
    checkCount("MostConfidentErrors", "k", k, 1);
    checkCount("MostConfidentErrors", "numLabels", numLabels, 2);
  }

  /** logits: row-major [n, numLabels]; labels: n class ids. */
  update(logits: ArrayLike<number>, labels: ArrayLike<number>): void {
    const where = "MostConfidentErrors.update";
    const L = this.numLabels;
    if (logits.length !== labels.length * L) fail(where, `logits length ${logits.length} != ${labels.length} labels x ${L}`);
    for (let i = 0; i < labels.length; i++) {
      const y = labels[i];
      if (y !== this.ignoreIndex && (!Number.isInteger(y) || y < 0 || y >= L)) fail(where, `label ${y} at ${i} is not in [0, ${L})`);
    }
    const predicted = argmax(logits, L);
    for (let i = 0; i < labels.length; i++, this.seen++) {
      if (labels[i] === this.ignoreIndex) continue;
      this.scored++;
      if (predicted[i] === labels[i]) continue;
      this.wrong++;
      const confidence = softmaxMax(logits, i * L, L);
      const last = this.kept[this.kept.length - 1];
      if (this.kept.length === this.k && !(confidence > last.confidence)) continue;
      let at = this.kept.length; // later rows go after equal confidences
      while (at > 0 && this.kept[at - 1].confidence < confidence) at--;
      this.kept.splice(at, 0, { index: this.seen, label: labels[i], predicted: predicted[i], confidence });
      if (this.kept.length > this.k) this.kept.pop();
    }
  }

  errors(): ConfidentError[] {
    return this.kept.map((e) => ({ ...e }));
  }

  reset(): void {
    this.kept = [];
    this.seen = this.scored = this.wrong = 0;
  }

  compute(): MetricValues {
    return {
      errors: this.kept.map((e) => [e.index, e.label, e.predicted, e.confidence]),
      error_count: this.wrong,
      count: this.scored,
    };
  }
}

/** Shorthand for new MostConfidentErrors(k, numLabels). */
export function mostConfidentErrors(k: number, numLabels: number): MostConfidentErrors {
  return new MostConfidentErrors(k, numLabels);
}

/** max softmax probability of one row = 1 / Σ exp(l_j − max); +Infinity logits share the mass. */
function softmaxMax(logits: ArrayLike<number>, base: number, L: number): number {
  let m = -Infinity;
  for (let j = 0; j < L; j++) m = Math.max(m, logits[base + j]);
  if (m === -Infinity) return 1 / L;
  let s = 0;
  if (m === Infinity) {
    for (let j = 0; j < L; j++) if (logits[base + j] === Infinity) s++;
    return 1 / s;
  }
  for (let j = 0; j < L; j++) s += Math.exp(logits[base + j] - m);
  return 1 / s;
}
