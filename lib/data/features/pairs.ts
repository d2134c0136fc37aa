// Sentence pairs for a bi-encoder (sentence-transformers' STS-B recipe): each sentence is tokenized on
// its own (the two towers share weights but not a sequence); the target is score / maxScore, which a
// cosine-similarity loss compares with cos(u, v), and the raw score is kept for Pearson / Spearman.
import { TunekitError } from "../../errors";
import type { Tokenizer } from "../tokenizer";
import type { EncodedFeature, PairFeature } from "./collate";
import type { SentencePairExample } from "../files/examples";
import { encodeAll } from "./encode";

export interface SentencePairOptions {
  /** Truncation length of each side. Default: modelMaxLength. */
  maxLength?: number;
  /** The top of the score scale (STS-B: 5), so that labels = score / maxScore lies in [0, 1]. */
  maxScore?: number;
}

export async function sentencePairFeatures(tok: Tokenizer, examples: SentencePairExample[],
                                           options: SentencePairOptions = {}): Promise<PairFeature<EncodedFeature>[]> {
  const where = "sentencePairFeatures";
  const maxScore = options.maxScore ?? 5;
  if (typeof maxScore !== "number" || !(maxScore > 0) || !Number.isFinite(maxScore)) throw new TunekitError(`${where}: maxScore must be a positive number, got ${JSON.stringify(maxScore)}`);
  if (!Array.isArray(examples) || examples.length === 0) throw new TunekitError(`${where}: expected a non-empty array of examples`);
  examples.forEach((e, i) => {
    if (e === null || typeof e !== "object" || typeof e.sentence1 !== "string" || typeof e.sentence2 !== "string" || typeof e.score !== "number" || !Number.isFinite(e.score)) {
      throw new TunekitError(`${where}: example ${i}: expected { sentence1: string, sentence2: string, score: number }`);
    }
  });
  const opts = { truncation: true, maxLength: options.maxLength ?? tok.modelMaxLength };
  // Both sides in one pass: sentence1 of every example, then sentence2.
  const n = examples.length;
  const enc = await encodeAll(tok, [...examples.map((e) => e.sentence1), ...examples.map((e) => e.sentence2)], opts, where,
    (i) => `example ${i % n} (sentence${i < n ? 1 : 2})`);
  const withTypes = tok.modelInputNames.includes("token_type_ids");
  const side = (r: number): EncodedFeature => {
    const f: EncodedFeature = { inputIds: enc.input_ids[r], attentionMask: enc.attention_mask[r] };
    if (withTypes) f.tokenTypeIds = enc.token_type_ids[r];
    return f;
  };
  return examples.map((e, i) => ({ a: side(i), b: side(n + i), labels: e.score / maxScore, score: e.score }));
}
