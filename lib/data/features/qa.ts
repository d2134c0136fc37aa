// Extractive question answering, as transformers' run_qa: question + context pairs truncated "only_second"
// into overlapping windows of maxLength tokens (docStride context tokens shared between neighbours); the
// answer's first/last token found through the offsets (the CLS index 0 when the window does not hold the
// whole answer). Post-processing turns start/end logits back into answer text through the same offsets,
// the best span over all windows of an example.
import { squadScores } from "../../metrics";
import { TunekitError } from "../../errors";
import type { Tokenizer } from "../tokenizer";
import type { EncodedFeature } from "./collate";
import type { QaExample } from "../files/examples";
import { encodeAll } from "./encode";

export interface QaOptions {
  /** Window length, special tokens included. Default 384. */
  maxLength?: number;
  /** Context tokens shared by consecutive windows. Default 128. */
  docStride?: number;
}

export interface QaFeature extends EncodedFeature {
  exampleId: string;
  /** Index of the example in the list given. */
  exampleIndex: number;
  /** Per token: [start, end) in the example's context (JS string indices) for context tokens, null otherwise. */
  contextOffsets: ([number, number] | null)[];
  /** Answer tokens (first answer), 0 and 0 (CLS) when this window does not hold it; absent when the example has no answer. */
  startPosition?: number;
  endPosition?: number;
}

export interface QaPrediction {
  id: string;
  text: string;
  /** [start, end) in the context; -1, -1 when no valid span was found. */
  start: number;
  end: number;
  /** start logit + end logit of the span (-Infinity when none). */
  score: number;
}

export interface QaPostprocessOptions {
  /** Start and end candidates taken per window (the best n of each). Default 20. */
  nBest?: number;
  /** Longest answer in tokens. Default 30. */
  maxAnswerLength?: number;
}

function positiveInt(v: unknown, name: string, where: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new TunekitError(`${where}: ${name} must be an integer >= 1, got ${JSON.stringify(v)}`);
  return v;
}

/** Windows of every example with answer positions (when the examples have answers) and what post-processing needs. */
export async function qaFeatures(tok: Tokenizer, examples: QaExample[], options: QaOptions = {}): Promise<QaFeature[]> {
  const where = "qaFeatures";
  const maxLength = positiveInt(options.maxLength, "maxLength", where, 384);
  const docStride = options.docStride === undefined ? 128 : options.docStride;
  if (!Number.isInteger(docStride) || docStride < 0) throw new TunekitError(`${where}: docStride must be an integer >= 0, got ${JSON.stringify(docStride)}`);
  if (!Array.isArray(examples) || examples.length === 0) throw new TunekitError(`${where}: expected a non-empty array of examples`);
  examples.forEach((e, i) => {
    if (e === null || typeof e !== "object" || typeof e.question !== "string" || typeof e.context !== "string" || typeof e.id !== "string" || !Array.isArray(e.answers)) {
      throw new TunekitError(`${where}: example ${i}: expected { id, question, context: strings, answers: [{ text, answerStart }] }`);
    }
  });
  const cls = tok.clsTokenId;
  // run_qa strips the question's leading spaces: some SQuAD questions have many, which would eat the window.
  const enc = await encodeAll(tok, examples.map((e) => [e.question.trimStart(), e.context] as [string, string]),
    { truncation: "only_second", maxLength, stride: docStride, returnOverflowingTokens: true }, where,
    (i) => `example ${i} (id ${examples[i].id})`);

  return enc.input_ids.map((ids, r): QaFeature => {
    const ex = enc.overflow_to_sample_mapping![r];
    const e = examples[ex];
    const seq = enc.sequence_ids[r];
    const offsets = enc.offset_mapping[r];
    const contextOffsets = seq.map((s, t) => (s === 1 ? offsets[t] : null));
    const f: QaFeature = { inputIds: ids, attentionMask: enc.attention_mask[r], exampleId: e.id, exampleIndex: ex, contextOffsets };
    if (tok.modelInputNames.includes("token_type_ids")) f.tokenTypeIds = enc.token_type_ids[r];
    if (e.answers.length === 0) return f;
    const a = e.answers[0];
    const startChar = a.answerStart;
    const endChar = a.answerStart + a.text.length;
    let lo = seq.indexOf(1);
    let hi = seq.lastIndexOf(1);
    // The no-answer label points at CLS (index 0 with BERT; where the CLS token sits otherwise).
    const clsIndex = cls !== null && ids.indexOf(cls) >= 0 ? ids.indexOf(cls) : 0;
    if (lo < 0 || offsets[lo][0] > startChar || offsets[hi][1] < endChar) {
      f.startPosition = clsIndex;
      f.endPosition = clsIndex;
      return f;
    }
    // The first and last context tokens that overlap the answer's characters. (run_qa takes the last token
    // starting at or before the answer and the first ending at or after it: the same tokens, except that for
    // an answer with leading or trailing whitespace it takes one token too many.)
    while (lo <= hi && offsets[lo][1] <= startChar) lo++;
    while (hi >= lo && offsets[hi][0] >= endChar) hi--;
    if (lo > hi) { // nothing but whitespace
      f.startPosition = clsIndex;
      f.endPosition = clsIndex;
      return f;
    }
    f.startPosition = lo;
    f.endPosition = hi;
    return f;
  });
}

/** Top `n` indices of `v[0..len)` by value (ties: lower index first). */
function topN(v: ArrayLike<number>, len: number, n: number): number[] {
  const idx = Array.from({ length: len }, (_, i) => i);
  idx.sort((a, b) => v[b] - v[a] || a - b);
  return idx.slice(0, n);
}

/** Best answer per example: over all its windows, the span (start <= end, at most maxAnswerLength tokens,
 *  both ends context tokens) among the nBest start and nBest end candidates with the highest start + end logit.
 *  startLogits[i] / endLogits[i] belong to features[i] (at least as long as its inputIds; right-padded). */
export function postprocessQa(examples: QaExample[], features: QaFeature[], startLogits: ArrayLike<number>[],
                              endLogits: ArrayLike<number>[], options: QaPostprocessOptions = {}): QaPrediction[] {
  const where = "postprocessQa";
  const nBest = positiveInt(options.nBest, "nBest", where, 20);
  const maxAnswerLength = positiveInt(options.maxAnswerLength, "maxAnswerLength", where, 30);
  if (!Array.isArray(features) || startLogits.length !== features.length || endLogits.length !== features.length) {
    throw new TunekitError(`${where}: expected one start and one end logit row per feature (${features?.length} features, ${startLogits?.length} start rows, ${endLogits?.length} end rows)`);
  }
  const best: QaPrediction[] = examples.map((e) => ({ id: e.id, text: "", start: -1, end: -1, score: -Infinity }));
  features.forEach((f, i) => {
    const e = examples[f.exampleIndex];
    if (e === undefined || e.id !== f.exampleId) throw new TunekitError(`${where}: feature ${i} belongs to example ${f.exampleIndex} (id ${f.exampleId}), which is not at that index of the examples given`);
    const T = f.contextOffsets.length;
    const s = startLogits[i];
    const en = endLogits[i];
    if (s.length < T || en.length < T) throw new TunekitError(`${where}: feature ${i} has ${T} tokens but its logit rows have ${s.length} and ${en.length} values`);
    const off = f.contextOffsets;
    const out = best[f.exampleIndex];
    const ends = topN(en, T, nBest);
    for (const a of topN(s, T, nBest)) {
      if (off[a] === null) continue;
      for (const b of ends) {
        if (off[b] === null || b < a || b - a + 1 > maxAnswerLength) continue;
        const score = s[a] + en[b];
        if (score > out.score) {
          out.score = score;
          out.start = off[a]![0];
          out.end = off[b]![1];
        }
      }
    }
  });
  best.forEach((p, k) => { if (p.start >= 0) p.text = examples[k].context.slice(p.start, p.end); });
  return best;
}

/** SQuAD v1.1 evaluation: exact match and F1 in percent, each the max over the example's answers, averaged. */
export function squadMetrics(examples: QaExample[], predictions: { id: string; text: string }[]): { exactMatch: number; f1: number } {
  const byId = new Map(predictions.map((p) => [p.id, p.text]));
  let em = 0;
  let f = 0;
  let n = 0;
  for (const e of examples) {
    if (e.answers.length === 0) continue;
    const pred = byId.get(e.id);
    if (pred === undefined) throw new TunekitError(`squadMetrics: no prediction for example ${e.id}`);
    const r = squadScores(pred, e.answers.map((a) => a.text));
    em += r.exactMatch;
    f += r.f1;
    n++;
  }
  if (n === 0) throw new TunekitError("squadMetrics: no example with answers");
  return { exactMatch: (100 * em) / n, f1: (100 * f) / n };
}
