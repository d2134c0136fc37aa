// HF's logits processors and warpers (generation/logits_process.py) on one row of scores, in place, in
// the order _get_logits_processor builds them: repetition penalty, min new tokens, then (sampling
// only) temperature, top-k, top-p. Removed tokens get −Infinity, as HF's filter_value.
import { Rng } from "../data/rng";

/** RepetitionPenaltyLogitsProcessor: each token of `previous` (once, however often it occurs). */
export function applyRepetitionPenalty(scores: Float32Array, previous: ArrayLike<number>, penalty: number): void {
  if (penalty === 1) return;
  const seen = new Set<number>();
  for (let i = 0; i < previous.length; i++) {
    const id = previous[i];
    if (seen.has(id)) continue;
    seen.add(id);
    const s = scores[id];
    scores[id] = s < 0 ? s * penalty : s / penalty;
  }
}

/** MinNewTokensLengthLogitsProcessor: EOS cannot be picked yet. */
export function suppressTokens(scores: Float32Array, ids: number[]): void {
  for (const id of ids) scores[id] = -Infinity;
}

/** TemperatureLogitsWarper. */
export function applyTemperature(scores: Float32Array, temperature: number): void {
  if (temperature === 1) return;
  for (let i = 0; i < scores.length; i++) scores[i] /= temperature;
}

/** TopKLogitsWarper: everything below the k-th largest score goes (ties with it stay). */
export function applyTopK(scores: Float32Array, k: number, minTokensToKeep = 1): void {
  if (k === 0 || k >= scores.length) return;
  const kth = Float32Array.from(scores).sort()[scores.length - Math.max(k, minTokensToKeep)];
  for (let i = 0; i < scores.length; i++) if (scores[i] < kth) scores[i] = -Infinity;
}

/**
 * TopPLogitsWarper: sorted ascending, the tokens whose cumulative probability is <= 1 − topP go; the
 * minTokensToKeep most likely always stay.
 */
export function applyTopP(scores: Float32Array, topP: number, minTokensToKeep = 1): void {
  if (topP >= 1) return;
  const order = Array.from(scores.keys()).sort((a, b) => scores[a] - scores[b] || a - b);
  const probs = softmax(Float32Array.from(order, (i) => scores[i]));
  let cum = 0;
  for (let j = 0; j < order.length - minTokensToKeep; j++) {
    cum += probs[j];
    if (cum <= 1 - topP) scores[order[j]] = -Infinity;
    else break;
  }
}

/** Softmax in float64 (−Infinity → 0). */
export function softmax(scores: Float32Array): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < scores.length; i++) if (scores[i] > max) max = scores[i];
  const p = new Float64Array(scores.length);
  let sum = 0;
  for (let i = 0; i < scores.length; i++) sum += p[i] = Math.exp(scores[i] - max);
  for (let i = 0; i < p.length; i++) p[i] /= sum;
  return p;
}

/** The first index of the largest score (torch.argmax). */
export function argmax(scores: Float32Array): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
  return best;
}

/** One draw from softmax(scores) (torch.multinomial(probs, 1)). */
export function sample(scores: Float32Array, rng: Rng): number {
  const p = softmax(scores);
  let u = rng.float();
  let last = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) continue;
    last = i;
    u -= p[i];
    if (u < 0) return i;
  }
  return last; // rounding left a sliver of u: the last possible token
}

export interface ProcessorSettings {
  doSample: boolean;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
}

/** All processors, in HF's order, on one row's scores; `previous` = the row's real tokens so far. */
export function processScores(scores: Float32Array, previous: ArrayLike<number>, s: ProcessorSettings, suppress: number[] = []): void {
  applyRepetitionPenalty(scores, previous, s.repetitionPenalty);
  suppressTokens(scores, suppress);
  if (!s.doSample) return;
  applyTemperature(scores, s.temperature);
  applyTopK(scores, s.topK);
  applyTopP(scores, s.topP);
}
