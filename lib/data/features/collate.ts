// Features (one tokenized row each, as the task builders in this folder make them) → padded batches
// the models and heads take. Padding is dynamic: to the longest row of the batch (rounded up to
// padToMultipleOf), as transformers' DataCollatorWithPadding does, so short batches stay short.
import { TunekitError } from "../../errors";
import type { ProblemType } from "../../io/config";

/** What a feature's `labels` hold: one per sequence (a class id, a float, a multi-hot vector) or one per token. */
export type LabelKind = ProblemType | "token";

/** Label of tokens that the loss ignores (PyTorch's cross-entropy ignore_index). */
export const IGNORE_INDEX = -100;

/** One tokenized row. Arrays are per token and as long as inputIds. */
export interface Feature {
  inputIds: ArrayLike<number>;
  /** 1 = real token. Default all ones. */
  attentionMask?: ArrayLike<number>;
  tokenTypeIds?: ArrayLike<number>;
  /** single_label_classification: class id; regression: a float; multi_label_classification: multi-hot
   *  vector (numLabels); token: one per token, IGNORE_INDEX where no loss. */
  labels?: number | ArrayLike<number>;
  /** Required with labels: how to collate them. */
  labelKind?: LabelKind;
  /** Extractive QA: answer start/end token (0 = the CLS token when the answer is not in this row). */
  startPosition?: number;
  endPosition?: number;
}

/** A feature as the task builders make it from the tokenizer's output (plain arrays). */
export interface EncodedFeature extends Feature {
  inputIds: number[];
  attentionMask: number[];
  tokenTypeIds?: number[];
}

/** Bi-encoder row (STS-B): both sides are tokenized and padded separately. */
export interface PairFeature<F extends Feature = Feature> {
  a: F;
  b: F;
  /** Training target (STS-B: score / 5, the cosine target). */
  labels: number;
  /** The raw score (0..5 for STS-B), for Pearson / Spearman. */
  score: number;
}

/** A padded batch; satisfies ModelInputs (inputIds, attentionMask, tokenTypeIds, batchSize, seqLen). */
export interface Batch {
  /** (B, T) */
  inputIds: Int32Array;
  /** (B, T): 1 = real token, 0 = padding. */
  attentionMask: Uint8Array;
  /** (B, T), when the features have them. */
  tokenTypeIds?: Int32Array;
  batchSize: number;
  seqLen: number;
  /** single_label_classification: Int32Array (B); regression: Float32Array (B); multi_label_classification:
   *  Float32Array (B, numLabels); token: Int32Array (B, T) with IGNORE_INDEX on padding. */
  labels?: Int32Array | Float32Array;
  labelKind?: LabelKind;
  /** multi_label_classification: the width of each labels row. */
  numLabels?: number;
  /** (B) */
  startPositions?: Int32Array;
  endPositions?: Int32Array;
}

export interface PairBatch {
  a: Batch;
  b: Batch;
  batchSize: number;
  /** (B) training targets (score / 5). */
  labels: Float32Array;
  /** (B) raw scores. */
  scores: Float32Array;
}

export interface CollateOptions {
  /** The tokenizer's pad token id. */
  padId: number;
  /** Round the padded length up to a multiple of this (8 suits tensor cores). */
  padToMultipleOf?: number;
  /** Default "right". With "left", token labels and start/end positions move with their tokens. */
  paddingSide?: "right" | "left";
}

function fail(msg: string): never {
  throw new TunekitError(`collate: ${msg}`);
}

const isIntIn = (v: unknown, lo: number, hi: number): v is number =>
  typeof v === "number" && Number.isInteger(v) && v >= lo && v <= hi;

function isArrayLike(v: unknown): v is ArrayLike<number> {
  return Array.isArray(v) || ArrayBuffer.isView(v);
}

function checkOptions(o: CollateOptions): { padId: number; multiple: number; left: boolean } {
  if (o === null || typeof o !== "object") fail("options must be an object with padId");
  if (!isIntIn(o.padId, 0, 0x7fffffff)) fail(`padId must be an integer >= 0, got ${JSON.stringify(o.padId)}`);
  if (o.padToMultipleOf !== undefined && !isIntIn(o.padToMultipleOf, 1, 1 << 20)) {
    fail(`padToMultipleOf must be an integer >= 1, got ${JSON.stringify(o.padToMultipleOf)}`);
  }
  if (o.paddingSide !== undefined && o.paddingSide !== "right" && o.paddingSide !== "left") {
    fail(`paddingSide must be "right" or "left", got ${JSON.stringify(o.paddingSide)}`);
  }
  return { padId: o.padId, multiple: o.padToMultipleOf ?? 1, left: o.paddingSide === "left" };
}

/** Pads features into one batch. A list of PairFeature gives a PairBatch (two sub-batches a and b). */
export function collate(features: PairFeature[], options: CollateOptions): PairBatch;
export function collate(features: Feature[], options: CollateOptions): Batch;
export function collate(features: Feature[] | PairFeature[], options: CollateOptions): Batch | PairBatch {
  const o = checkOptions(options);
  if (!Array.isArray(features) || features.length === 0) fail("expected a non-empty array of features");
  const pairs = features.map((f) => f !== null && typeof f === "object" && "a" in f && "b" in f);
  if (pairs.every((p) => p)) return collatePairs(features as PairFeature[], o);
  if (pairs.some((p) => p)) fail(`feature ${pairs.indexOf(true)} is a pair (a, b) but feature ${pairs.indexOf(false)} is not`);
  return collateRows(features as Feature[], o, "");
}

function collatePairs(features: PairFeature[], o: ReturnType<typeof checkOptions>): PairBatch {
  const B = features.length;
  const labels = new Float32Array(B);
  const scores = new Float32Array(B);
  features.forEach((f, i) => {
    if (typeof f.labels !== "number" || !Number.isFinite(f.labels)) fail(`pair feature ${i}: labels must be a finite number, got ${JSON.stringify(f.labels)}`);
    if (typeof f.score !== "number" || !Number.isFinite(f.score)) fail(`pair feature ${i}: score must be a finite number, got ${JSON.stringify(f.score)}`);
    labels[i] = f.labels;
    scores[i] = f.score;
  });
  return {
    a: collateRows(features.map((f) => f.a), o, " (side a)"),
    b: collateRows(features.map((f) => f.b), o, " (side b)"),
    batchSize: B, labels, scores,
  };
}

function collateRows(features: Feature[], o: ReturnType<typeof checkOptions>, side: string): Batch {
  const B = features.length;
  const where = (i: number) => `feature ${i}${side}`;
  features.forEach((f, i) => {
    if (f === null || typeof f !== "object" || !isArrayLike(f.inputIds)) fail(`${where(i)}: expected an object with inputIds (an array of token ids)`);
    if (f.inputIds.length === 0) fail(`${where(i)}: inputIds is empty`);
  });
  let T = Math.max(...features.map((f) => f.inputIds.length));
  T = Math.ceil(T / o.multiple) * o.multiple;

  const withTypes = features.map((f) => f.tokenTypeIds !== undefined);
  if (withTypes.some((x) => x !== withTypes[0])) fail(`${where(withTypes.indexOf(!withTypes[0]))} ${withTypes[0] ? "lacks" : "has"} tokenTypeIds but ${where(0)} does not`);
  const kind = features[0].labels === undefined ? undefined : features[0].labelKind;
  const withPositions = features[0].startPosition !== undefined;

  const inputIds = new Int32Array(B * T).fill(o.padId);
  const attentionMask = new Uint8Array(B * T);
  const tokenTypeIds = withTypes[0] ? new Int32Array(B * T) : undefined;
  let labels: Int32Array | Float32Array | undefined;
  let numLabels: number | undefined;
  if (kind === "token") labels = new Int32Array(B * T).fill(IGNORE_INDEX);
  else if (kind === "single_label_classification") labels = new Int32Array(B);
  else if (kind === "regression") labels = new Float32Array(B);
  else if (kind === "multi_label_classification") {
    const first = features[0].labels;
    if (!isArrayLike(first) || first.length === 0) fail(`${where(0)}: multi_label_classification labels must be a non-empty multi-hot array`);
    numLabels = first.length;
    labels = new Float32Array(B * numLabels);
  } else if (features[0].labels !== undefined) {
    fail(`${where(0)}: labels need labelKind ("single_label_classification", "regression", "multi_label_classification" or "token"), got ${JSON.stringify(kind)}`);
  }
  const startPositions = withPositions ? new Int32Array(B) : undefined;
  const endPositions = withPositions ? new Int32Array(B) : undefined;

  features.forEach((f, i) => {
    const n = f.inputIds.length;
    const shift = o.left ? T - n : 0; // where the row's first token lands
    const base = i * T + shift;
    const perToken = (name: string, v: ArrayLike<number> | undefined) => {
      if (v !== undefined && (!isArrayLike(v) || v.length !== n)) fail(`${where(i)}: ${name} must have one entry per token (${n}), got ${isArrayLike(v) ? v.length : typeof v}`);
    };
    perToken("attentionMask", f.attentionMask);
    perToken("tokenTypeIds", f.tokenTypeIds);
    for (let t = 0; t < n; t++) {
      const id = f.inputIds[t];
      if (!isIntIn(id, 0, 0x7fffffff)) fail(`${where(i)}: inputIds[${t}] = ${id} is not a token id`);
      inputIds[base + t] = id;
      attentionMask[base + t] = f.attentionMask === undefined || f.attentionMask[t] ? 1 : 0;
      if (tokenTypeIds) tokenTypeIds[base + t] = f.tokenTypeIds![t];
    }

    const fk = f.labels === undefined ? undefined : f.labelKind;
    if (fk !== kind || (f.labels === undefined) !== (features[0].labels === undefined)) {
      fail(`${where(i)} has labels of kind ${JSON.stringify(fk ?? null)} but ${where(0)} has ${JSON.stringify(kind ?? null)}: one batch holds one kind`);
    }
    const y = f.labels;
    if (kind === "token") {
      if (!isArrayLike(y) || y.length !== n) fail(`${where(i)}: token labels must have one entry per token (${n}), got ${isArrayLike(y) ? y.length : JSON.stringify(y)}`);
      for (let t = 0; t < n; t++) {
        if (!(isIntIn(y[t], 0, 0x7fffffff) || y[t] === IGNORE_INDEX)) fail(`${where(i)}: labels[${t}] = ${y[t]} is neither a class id nor ${IGNORE_INDEX}`);
        labels![base + t] = y[t];
      }
    } else if (kind === "single_label_classification") {
      if (!isIntIn(y, 0, 0x7fffffff)) fail(`${where(i)}: a single_label_classification label must be a class id (integer >= 0), got ${JSON.stringify(y)}`);
      labels![i] = y;
    } else if (kind === "regression") {
      if (typeof y !== "number" || !Number.isFinite(y)) fail(`${where(i)}: a regression label must be a finite number, got ${JSON.stringify(y)}`);
      labels![i] = y;
    } else if (kind === "multi_label_classification") {
      if (!isArrayLike(y) || y.length !== numLabels) fail(`${where(i)}: multi-hot labels must have ${numLabels} entries (as ${where(0)}), got ${isArrayLike(y) ? y.length : JSON.stringify(y)}`);
      for (let k = 0; k < numLabels!; k++) {
        if (typeof y[k] !== "number" || !Number.isFinite(y[k])) fail(`${where(i)}: labels[${k}] = ${y[k]} is not a number`);
        labels![i * numLabels! + k] = y[k];
      }
    }

    if ((f.startPosition !== undefined) !== withPositions || (f.endPosition !== undefined) !== withPositions) {
      fail(`${where(i)}: startPosition/endPosition must be given for every feature of a batch or for none`);
    }
    if (withPositions) {
      for (const [name, p] of [["startPosition", f.startPosition], ["endPosition", f.endPosition]] as const) {
        if (!isIntIn(p, 0, n - 1)) fail(`${where(i)}: ${name} ${JSON.stringify(p)} is not a token index in [0, ${n})`);
      }
      startPositions![i] = f.startPosition! + shift;
      endPositions![i] = f.endPosition! + shift;
    }
  });

  const batch: Batch = { inputIds, attentionMask, batchSize: B, seqLen: T };
  if (tokenTypeIds) batch.tokenTypeIds = tokenTypeIds;
  if (labels) {
    batch.labels = labels;
    batch.labelKind = kind;
    if (numLabels !== undefined) batch.numLabels = numLabels;
  }
  if (startPositions) {
    batch.startPositions = startPositions;
    batch.endPositions = endPositions;
  }
  return batch;
}
