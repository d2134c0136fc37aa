import { TunekitError } from "../errors";
import type { KVCache } from "./cache";

/** A batch as the tokenizer gives it: (B, T) ids with HF's names. */
export interface ModelInputs {
  inputIds: Int32Array;
  /** (B, T): 1 = real token, 0 = padding. Default: all ones. */
  attentionMask?: ArrayLike<number>;
  /** (B, T) segment ids (BERT pairs). Default: zeros. */
  tokenTypeIds?: Int32Array;
  batchSize: number;
  seqLen: number;
  /**
   * Generation: the key/value cache of the tokens before these (lib/models/cache.ts). The body then
   * reads positions from it, appends this step's keys and values, and attends over everything cached.
   */
  cache?: KVCache;
}

export function checkInputs(x: ModelInputs, model: string, maxPositions: number, vocabSize: number): Uint8Array {
  const { batchSize: B, seqLen: T } = x;
  if (!(Number.isInteger(B) && B > 0 && Number.isInteger(T) && T > 0))
    throw new TunekitError(`${model}: batchSize and seqLen must be positive integers, got ${B} and ${T}`);
  if (x.inputIds.length !== B * T)
    throw new TunekitError(`${model}: inputIds has ${x.inputIds.length} ids, expected batchSize × seqLen = ${B * T}`);
  const past = x.cache?.length ?? 0;
  if (past + T > maxPositions)
    throw new TunekitError(`${model}: sequence length ${past ? `${past} cached + ` : ""}${T} exceeds max_position_embeddings ${maxPositions}; truncate the input`);
  for (let i = 0; i < x.inputIds.length; i++) {
    const id = x.inputIds[i];
    if (id < 0 || id >= vocabSize) throw new TunekitError(`${model}: input id ${id} at position ${i} is outside the vocabulary (size ${vocabSize})`);
  }
  const mask = new Uint8Array(B * T).fill(1);
  if (x.attentionMask) {
    if (x.attentionMask.length !== B * T)
      throw new TunekitError(`${model}: attentionMask has ${x.attentionMask.length} entries, expected ${B * T}`);
    for (let i = 0; i < B * T; i++) mask[i] = x.attentionMask[i] ? 1 : 0;
  }
  if (x.tokenTypeIds && x.tokenTypeIds.length !== B * T)
    throw new TunekitError(`${model}: tokenTypeIds has ${x.tokenTypeIds.length} ids, expected ${B * T}`);
  return mask;
}

/**
 * Index of each row's last real token (mask 1): where a decoder's sequence-classification head reads.
 * HF finds it from input_ids (the last id ≠ pad_token_id); the mask gives the same token whenever padding is
 * the pad id and no real token is (pad = eos with a trailing eos is the case they differ), and needs no pad id.
 */
export function lastRealTokens(mask: Uint8Array, B: number, T: number): number[] {
  return Array.from({ length: B }, (_, b) => {
    let last = 0;
    for (let t = 0; t < T; t++) if (mask[b * T + t]) last = t;
    return last;
  });
}
