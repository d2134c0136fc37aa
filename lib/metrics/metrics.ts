// Evaluation metrics, computed batch by batch: each metric keeps small running counts (a confusion matrix,
// entity counts, sums), never the logits. Definitions follow the reference implementations people compare
// against: scikit-learn (zero_division=0), seqeval's default mode, the official SQuAD v1.1 script, scipy.
import { TunekitError } from "../errors";

export type MetricValues = Record<string, number | number[][]>;

/** A streaming metric: update() once per batch, compute() at the end (repeatable), reset() to start over. */
export interface Metric<Args extends unknown[] = unknown[]> {
  update(...args: Args): void;
  compute(): MetricValues;
  reset(): void;
}

function fail(where: string, msg: string): never {
  throw new TunekitError(`${where}: ${msg}`);
}

function checkCount(where: string, name: string, v: unknown, min: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) fail(where, `${name} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

function checkRows(where: string, scores: ArrayLike<number>, numLabels: number): number {
  if (scores.length % numLabels !== 0) fail(where, `logits length ${scores.length} is not a multiple of numLabels ${numLabels}`);
  return scores.length / numLabels;
}

/** P, R, F1 with scikit-learn's zero_division=0: an empty denominator gives 0, never NaN. F1 = 2tp / (2tp + fp + fn). */
function prf(tp: number, predicted: number, actual: number): [number, number, number] {
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

// ------------------------------------------------------------------------------------------ classification

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

// ------------------------------------------------------------------------------------------ entities (seqeval)

/** An entity chunk: type and inclusive token span, as seqeval's get_entities returns it. */
export interface Entity {
  type: string;
  start: number;
  end: number;
}

/** Splits a tag into seqeval's (prefix letter, type); bare B/I/E/S and "B-" have type "_". */
function splitTag(where: string, tag: string, at: number): [string, string] {
  if (tag === "O") return ["O", "_"];
  const c = tag[0];
  if ((c === "B" || c === "I" || c === "E" || c === "S") && (tag.length === 1 || tag[1] === "-")) return [c, tag.slice(2) || "_"];
  return fail(where, `tag ${JSON.stringify(tag)} at ${at} is not O, B-<type>, I-<type>, E-<type> or S-<type>`);
}

function endOfChunk(prevTag: string, tag: string, prevType: string, type: string): boolean {
  if (prevTag === "E" || prevTag === "S") return true;
  if ((prevTag === "B" || prevTag === "I") && (tag === "B" || tag === "S" || tag === "O")) return true;
  return prevTag !== "O" && prevType !== type;
}

function startOfChunk(prevTag: string, tag: string, prevType: string, type: string): boolean {
  if (tag === "B" || tag === "S") return true;
  if ((prevTag === "E" || prevTag === "S" || prevTag === "O") && (tag === "E" || tag === "I")) return true;
  return tag !== "O" && prevType !== type;
}

/**
 * Entity chunks of one tag sequence with seqeval's default (conlleval-compatible, non-strict) rules: an I-
 * after O, or after a tag of another type, starts a new chunk; a type change ends one. Accepts IOB1/IOB2/IOBES.
 */
export function getEntities(tags: readonly string[]): Entity[] {
  return entitiesOf(tags, "getEntities");
}

function entitiesOf(tags: readonly string[], where: string): Entity[] {
  const chunks: Entity[] = [];
  let prevTag = "O", prevType = "", begin = 0;
  for (let i = 0; i <= tags.length; i++) {
    const [tag, type] = i < tags.length ? splitTag(where, tags[i], i) : ["O", "_"];
    if (endOfChunk(prevTag, tag, prevType, type)) chunks.push({ type: prevType, start: begin, end: i - 1 });
    if (startOfChunk(prevTag, tag, prevType, type)) begin = i;
    prevTag = tag;
    prevType = type;
  }
  return chunks;
}

/**
 * Entity-level precision/recall/F1 over tag sequences, as seqeval's default mode (what HF's token
 * classification examples report). compute(): precision, recall, f1 (micro over all entities), accuracy
 * (token level), and per type `${type}_precision|_recall|_f1|_support`, types sorted.
 */
export class EntityMetric implements Metric<[readonly (readonly string[])[], readonly (readonly string[])[]]> {
  private counts = new Map<string, { tp: number; predicted: number; actual: number }>();
  private tokens = 0;
  private correctTokens = 0;

  /** predictions and references: one tag sequence per sentence, the same length pairwise. */
  update(predictions: readonly (readonly string[])[], references: readonly (readonly string[])[]): void {
    const where = "EntityMetric.update";
    if (predictions.length !== references.length) fail(where, `${predictions.length} predicted sequences for ${references.length} references`);
    // seqeval joins the sentences with an "O" between them; chunking each sentence from a fresh state is the
    // same, since every sentence then starts after an O, and (sentence, span) identifies an entity as well.
    const found: [Entity[], Entity[]][] = [];
    for (let s = 0; s < references.length; s++) {
      if (predictions[s].length !== references[s].length)
        fail(where, `sequence ${s}: ${predictions[s].length} predicted tags for ${references[s].length} reference tags`);
      found.push([entitiesOf(predictions[s], `${where}: predictions[${s}]`), entitiesOf(references[s], `${where}: references[${s}]`)]);
    }
    for (let s = 0; s < references.length; s++) {
      const [pred, ref] = found[s];
      const key = (e: Entity) => `${e.type}\u0000${e.start}\u0000${e.end}`;
      const refKeys = new Set(ref.map(key));
      for (const e of ref) this.count(e.type).actual++;
      for (const e of pred) {
        const c = this.count(e.type);
        c.predicted++;
        if (refKeys.has(key(e))) c.tp++;
      }
      for (let i = 0; i < references[s].length; i++) if (predictions[s][i] === references[s][i]) this.correctTokens++;
      this.tokens += references[s].length;
    }
  }

  private count(type: string) {
    let c = this.counts.get(type);
    if (!c) this.counts.set(type, (c = { tp: 0, predicted: 0, actual: 0 }));
    return c;
  }

  reset(): void {
    this.counts.clear();
    this.tokens = this.correctTokens = 0;
  }

  compute(): MetricValues {
    if (this.tokens === 0) fail("EntityMetric.compute", "no tags were given to update()");
    let tp = 0, pr = 0, ac = 0;
    for (const c of this.counts.values()) {
      tp += c.tp;
      pr += c.predicted;
      ac += c.actual;
    }
    const [precision, recall, f1] = prf(tp, pr, ac);
    const out: MetricValues = { precision, recall, f1, accuracy: this.correctTokens / this.tokens };
    for (const type of [...this.counts.keys()].sort()) {
      const c = this.counts.get(type)!;
      [out[`${type}_precision`], out[`${type}_recall`], out[`${type}_f1`]] = prf(c.tp, c.predicted, c.actual);
      out[`${type}_support`] = c.actual;
    }
    return out;
  }
}

/**
 * Token-classification ids → tag sequences for EntityMetric, dropping positions whose label is ignoreIndex
 * (special tokens, non-first sub-words), as HF's run_ner compute_metrics does. Ids are row-major [batch, seqLen].
 */
export function tagsFromIds(
  predictions: ArrayLike<number>,
  labels: ArrayLike<number>,
  seqLen: number,
  idToTag: readonly string[],
  ignoreIndex = -100,
): { predictions: string[][]; references: string[][] } {
  const where = "tagsFromIds";
  checkCount(where, "seqLen", seqLen, 1);
  if (predictions.length !== labels.length) fail(where, `${predictions.length} predictions for ${labels.length} labels`);
  if (labels.length % seqLen !== 0) fail(where, `length ${labels.length} is not a multiple of seqLen ${seqLen}`);
  const tag = (id: number, what: string, i: number) => {
    if (!Number.isInteger(id) || id < 0 || id >= idToTag.length) fail(where, `${what} ${id} at ${i} is not in [0, ${idToTag.length})`);
    return idToTag[id];
  };
  const out = { predictions: [] as string[][], references: [] as string[][] };
  for (let b = 0; b < labels.length / seqLen; b++) {
    const p: string[] = [], r: string[] = [];
    for (let i = b * seqLen; i < (b + 1) * seqLen; i++) {
      if (labels[i] === ignoreIndex) continue;
      r.push(tag(labels[i], "label", i));
      p.push(tag(predictions[i], "prediction", i));
    }
    out.predictions.push(p);
    out.references.push(r);
  }
  return out;
}

// ------------------------------------------------------------------------------------------ SQuAD v1.1

const PUNCTUATION = new Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"); // Python's string.punctuation (ASCII only)
// Python's \b(a|an|the)\b on str: word characters are Unicode letters, numbers and "_" (JS \b is ASCII-only).
const ARTICLES = /(?<![\p{L}\p{N}_])(?:a|an|the)(?![\p{L}\p{N}_])/gu;
// Python's str.split(): JS \s without U+FEFF, plus U+001C..U+001F and U+0085.
const PY_WHITESPACE = /[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

function pySplit(s: string): string[] {
  return s.split(PY_WHITESPACE).filter((t) => t.length > 0);
}

/** normalize_answer of the SQuAD v1.1 script: lower case, drop ASCII punctuation, then articles, fix whitespace. */
export function normalizeAnswer(s: string): string {
  let noPunct = "";
  for (const ch of s.toLowerCase()) if (!PUNCTUATION.has(ch)) noPunct += ch;
  return pySplit(noPunct.replace(ARTICLES, " ")).join(" ");
}

function tokenF1(prediction: string[], truth: string[]): number {
  const counts = new Map<string, number>();
  for (const t of truth) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0;
  for (const t of prediction) {
    const c = counts.get(t) ?? 0;
    if (c > 0) {
      same++;
      counts.set(t, c - 1);
    }
  }
  if (same === 0) return 0;
  const precision = same / prediction.length, recall = same / truth.length;
  return (2 * precision * recall) / (precision + recall);
}

/** One question: exact match (0/1) and token F1 (0..1), each the max over the ground truths. */
export function squadScores(prediction: string, groundTruths: readonly string[]): { exactMatch: number; f1: number } {
  if (groundTruths.length === 0) fail("squadScores", "a question needs at least one ground-truth answer");
  const p = normalizeAnswer(prediction);
  const pTokens = pySplit(p);
  let exactMatch = 0, f1 = 0;
  for (const g of groundTruths) {
    const n = normalizeAnswer(g);
    if (n === p) exactMatch = 1;
    f1 = Math.max(f1, tokenF1(pTokens, pySplit(n)));
  }
  return { exactMatch, f1 };
}

/** Extractive QA as the official SQuAD v1.1 evaluate script: compute() gives exact_match and f1 in percent (0..100). */
export class SquadMetric implements Metric<[readonly string[], readonly (readonly string[])[]]> {
  private n = 0;
  private em = 0;
  private f1 = 0;

  /** predictions: one answer text per question; references: the ground-truth answer texts of each question. */
  update(predictions: readonly string[], references: readonly (readonly string[])[]): void {
    const where = "SquadMetric.update";
    if (predictions.length !== references.length) fail(where, `${predictions.length} predictions for ${references.length} questions`);
    for (let i = 0; i < references.length; i++) if (references[i].length === 0) fail(where, `question ${i} has no ground-truth answer`);
    for (let i = 0; i < predictions.length; i++) {
      const s = squadScores(predictions[i], references[i]);
      this.em += s.exactMatch;
      this.f1 += s.f1;
    }
    this.n += predictions.length;
  }

  reset(): void {
    this.n = this.em = this.f1 = 0;
  }

  compute(): MetricValues {
    if (this.n === 0) fail("SquadMetric.compute", "no questions were given to update()");
    return { exact_match: (100 * this.em) / this.n, f1: (100 * this.f1) / this.n };
  }
}

// ------------------------------------------------------------------------------------------ regression

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

// ------------------------------------------------------------------------------------------ error analysis

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
