// Language-modelling data: texts → blocks of blockSize tokens (run_mlm / run_clm's group_texts), and the
// collator that pads them and makes the labels — masked LM (DataCollatorForLanguageModeling: each
// non-special, non-padding token is chosen with probability 0.15; of those 80% become [MASK], 10% a
// random token, 10% stay; labels are the original ids there and -100 elsewhere) or causal LM
// (labels = input ids, -100 on padding; the model shifts them by one).
import { TunekitError } from "../../errors";
import type { Tokenizer } from "../tokenizer";
import { collate, IGNORE_INDEX } from "./collate";
import type { Batch, Feature } from "./collate";
import { Rng, mixSeed, checkSeed } from "../rng";
import { encodeAll } from "./encode";

/** What the collator needs of a tokenizer (a Tokenizer has all of it). */
export interface LmTokenizerInfo {
  readonly padTokenId: number | null;
  readonly maskTokenId: number | null;
  readonly vocabSize: number;
  readonly allSpecialIds: number[];
}

export interface MaskOptions {
  maskId: number;
  /** Random replacements are drawn from [0, vocabSize), as transformers does (special tokens included). */
  vocabSize: number;
  /** Ids never chosen (transformers: all special ids — [CLS], [SEP], [PAD], [UNK], [MASK]). */
  specialIds: Iterable<number>;
  /** Default 0.15. */
  probability?: number;
  seed: number;
}

/** A copy of `batch` with tokens masked and token labels; padding (attentionMask 0) is never chosen. */
export function maskTokens(batch: Batch, o: MaskOptions): Batch {
  const where = "maskTokens";
  const p = o.probability ?? 0.15;
  if (!(p >= 0 && p <= 1)) throw new TunekitError(`${where}: probability must be in [0, 1], got ${p}`);
  if (!Number.isInteger(o.vocabSize) || o.vocabSize < 1) throw new TunekitError(`${where}: vocabSize must be an integer >= 1, got ${o.vocabSize}`);
  if (!Number.isInteger(o.maskId) || o.maskId < 0 || o.maskId >= o.vocabSize) throw new TunekitError(`${where}: maskId ${o.maskId} is not a token id of the vocabulary (size ${o.vocabSize})`);
  const rng = new Rng(checkSeed(o.seed, where));
  const special = new Set(o.specialIds);
  const ids = Int32Array.from(batch.inputIds);
  const labels = new Int32Array(ids.length).fill(IGNORE_INDEX);
  for (let i = 0; i < ids.length; i++) {
    if (batch.attentionMask[i] === 0 || special.has(ids[i])) continue;
    if (rng.float() >= p) continue;
    labels[i] = ids[i];
    const u = rng.float();
    if (u < 0.8) ids[i] = o.maskId;
    else if (u < 0.9) ids[i] = rng.int(o.vocabSize);
  }
  return { ...batch, inputIds: ids, labels, labelKind: "token" };
}

/** Causal-LM labels of a batch: the input ids, -100 where attentionMask is 0. (By the mask rather than
 *  by pad id, so a real end-of-text token that doubles as GPT-2's pad is still learnt.) */
export function causalLmLabels(batch: Batch): Int32Array {
  const labels = Int32Array.from(batch.inputIds);
  for (let i = 0; i < labels.length; i++) if (batch.attentionMask[i] === 0) labels[i] = IGNORE_INDEX;
  return labels;
}

export interface LmCollatorOptions {
  tokenizer: LmTokenizerInfo;
  /** true: masked LM (default); false: causal LM. */
  mlm?: boolean;
  mlmProbability?: number;
  /** Masks of call k come from mixSeed(seed, k): a run resumed at step k draws the same masks. Default 0. */
  seed?: number;
  padToMultipleOf?: number;
}

export class DataCollatorForLanguageModeling {
  /** Calls made so far; the next call's masks depend on it. Set it to resume. */
  step = 0;
  private readonly padId: number;
  private readonly mask: Omit<MaskOptions, "seed"> | null;
  private readonly seed: number;
  private readonly padToMultipleOf?: number;

  constructor(options: LmCollatorOptions) {
    const where = "DataCollatorForLanguageModeling";
    const tok = options?.tokenizer;
    if (!tok) throw new TunekitError(`${where}: options.tokenizer is required`);
    if (tok.padTokenId === null) throw new TunekitError(`${where}: the tokenizer has no pad token; set one (GPT-2: tokenizer.padToken = tokenizer.eosToken)`);
    this.padId = tok.padTokenId;
    this.seed = checkSeed(options.seed ?? 0, where);
    this.padToMultipleOf = options.padToMultipleOf;
    const mlm = options.mlm ?? true;
    const p = options.mlmProbability ?? 0.15;
    if (mlm && tok.maskTokenId === null) throw new TunekitError(`${where}: masked LM needs a tokenizer with a mask token; use mlm: false for causal LM`);
    if (!(p > 0 && p <= 1)) throw new TunekitError(`${where}: mlmProbability must be in (0, 1], got ${p}`);
    this.mask = mlm ? { maskId: tok.maskTokenId!, vocabSize: tok.vocabSize, specialIds: [...tok.allSpecialIds], probability: p } : null;
  }

  collate(features: Feature[]): Batch {
    if (!Array.isArray(features)) throw new TunekitError("DataCollatorForLanguageModeling.collate: expected an array of features");
    // Labels the features may carry are replaced by the LM labels.
    const rows = features.map((f): Feature => {
      const r: Feature = { inputIds: f?.inputIds };
      if (f?.attentionMask !== undefined) r.attentionMask = f.attentionMask;
      if (f?.tokenTypeIds !== undefined) r.tokenTypeIds = f.tokenTypeIds;
      return r;
    });
    const batch = collate(rows, { padId: this.padId, padToMultipleOf: this.padToMultipleOf });
    const seed = mixSeed(this.seed, this.step++);
    if (this.mask) return maskTokens(batch, { ...this.mask, seed });
    return { ...batch, labels: causalLmLabels(batch), labelKind: "token" };
  }
}

/** Concatenates token-id lists and cuts them into blocks of blockSize (the remainder is dropped), as
 *  run_mlm / run_clm's group_texts. */
export function groupTexts(ids: ArrayLike<number>[], blockSize: number): Feature[] {
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new TunekitError(`groupTexts: blockSize must be an integer >= 1, got ${blockSize}`);
  const total = ids.reduce((n, x) => n + x.length, 0);
  const all = new Int32Array(total);
  let k = 0;
  for (const x of ids) { all.set(x, k); k += x.length; }
  const out: Feature[] = [];
  for (let s = 0; s + blockSize <= total; s += blockSize) out.push({ inputIds: Array.from(all.subarray(s, s + blockSize)) });
  return out;
}

/** Texts → blocks of blockSize tokens (each text encoded with the tokenizer's special tokens, as run_mlm does). */
export async function languageModelingFeatures(tok: Tokenizer, texts: string[], options: { blockSize: number }): Promise<Feature[]> {
  if (!Array.isArray(texts) || texts.length === 0 || !texts.every((t) => typeof t === "string")) {
    throw new TunekitError("languageModelingFeatures: expected a non-empty array of strings");
  }
  const enc = await encodeAll(tok, texts, {}, "languageModelingFeatures");
  return groupTexts(enc.input_ids, options?.blockSize);
}
