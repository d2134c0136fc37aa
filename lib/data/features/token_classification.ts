// Token classification (NER, POS): words → sub-tokens (isSplitIntoWords) and word labels → token labels,
// as transformers' run_ner does: the first sub-token of each word gets the word's label, the other
// sub-tokens and the special tokens get -100 (no loss); with labelAllTokens the other sub-tokens get it
// too (B-X turned into I-X). Predictions are read back per word from the first sub-token.
// Byte-level BPE (GPT-2, RoBERTa) encodes the words with add_prefix_space, as run_ner loads those tokenizers
// (add_prefix_space=True): every word, the first one too, is tokenized as it is mid-sentence ("Ġword"), the form the
// model saw in pre-training. Without it no word gets its space ("SO CC ER" for SOCCER). lib/data/tokenizer/TOKENIZERS.md.
import { TunekitError } from "../../errors";
import type { Tokenizer } from "../tokenizer";
import { IGNORE_INDEX } from "./collate";
import type { EncodedFeature } from "./collate";
import { buildLabelMap, checkLabelMap, labelId } from "./labels";
import type { LabelMap } from "./labels";
import type { TokenClassificationExample } from "../files/examples";
import { encodeAll } from "./encode";

export interface TokenClassificationOptions {
  /** Truncation length, special tokens included (words past it are dropped). Default: modelMaxLength. */
  maxLength?: number;
  /** Label the later sub-tokens of a word too (default false: only the first, run_ner's default). */
  labelAllTokens?: boolean;
  label2id?: Record<string, number>;
  /** Byte-level BPE only: encode each word with a leading space. Default true (run_ner's add_prefix_space=True);
   *  false tokenizes each word as it stands, as GPT-2's tokenizer does by default. Ignored by other tokenizers. */
  addPrefixSpace?: boolean;
}

export interface TokenFeature extends EncodedFeature {
  /** Word index of each token (null for specials). */
  wordIds: (number | null)[];
  /** Words of the example that this feature covers (fewer than the example's when truncated). */
  numWords: number;
}

export interface TokenClassificationFeatures extends LabelMap {
  features: TokenFeature[];
  numLabels: number;
}

export async function tokenClassificationFeatures(tok: Tokenizer, examples: TokenClassificationExample[],
                                                  options: TokenClassificationOptions = {}): Promise<TokenClassificationFeatures> {
  const where = "tokenClassificationFeatures";
  if (!Array.isArray(examples) || examples.length === 0) throw new TunekitError(`${where}: expected a non-empty array of examples`);
  examples.forEach((e, i) => {
    if (e === null || typeof e !== "object" || !Array.isArray(e.words) || e.words.length === 0 || !e.words.every((w) => typeof w === "string")) {
      throw new TunekitError(`${where}: example ${i}: expected { words: string[] (non-empty), tags?: one label per word }`);
    }
    if (e.tags !== undefined && (!Array.isArray(e.tags) || e.tags.length !== e.words.length)) {
      throw new TunekitError(`${where}: example ${i}: ${e.words.length} words but ${Array.isArray(e.tags) ? e.tags.length : "no"} tags`);
    }
  });
  const labelled = examples[0].tags !== undefined;
  if (examples.some((e) => (e.tags !== undefined) !== labelled)) throw new TunekitError(`${where}: some examples have tags and some do not`);
  const map = options.label2id ? checkLabelMap(options.label2id, where)
    : labelled ? buildLabelMap(examples.flatMap((e) => e.tags!), where) : null;
  if (map === null) throw new TunekitError(`${where}: unlabelled examples need label2id (the model's labels)`);
  const numLabels = Object.keys(map.label2id).length;
  // run_ner's b_to_i_label: the I- label of each B- label, where the map has one.
  const bToI = Array.from({ length: numLabels }, (_, id) => {
    const name = map.id2label[id];
    return name.startsWith("B-") && map.label2id[`I-${name.slice(2)}`] !== undefined ? map.label2id[`I-${name.slice(2)}`] : id;
  });

  if (options.addPrefixSpace !== undefined && typeof options.addPrefixSpace !== "boolean") {
    throw new TunekitError(`${where}: addPrefixSpace must be true or false, got ${JSON.stringify(options.addPrefixSpace)}`);
  }
  const addPrefixSpace = tok.addPrefixSpace === null ? undefined : options.addPrefixSpace ?? true;
  const enc = await encodeAll(tok, examples.map((e) => e.words),
    { isSplitIntoWords: true, addPrefixSpace, truncation: true, maxLength: options.maxLength ?? tok.modelMaxLength }, where);
  const withTypes = tok.modelInputNames.includes("token_type_ids");
  const features = enc.input_ids.map((ids, i): TokenFeature => {
    const wordIds = enc.word_ids[i];
    const f: TokenFeature = {
      inputIds: ids, attentionMask: enc.attention_mask[i], wordIds,
      numWords: wordIds.reduce((m: number, w) => (w === null ? m : Math.max(m, w + 1)), 0),
    };
    if (withTypes) f.tokenTypeIds = enc.token_type_ids[i];
    if (labelled) {
      const tags = examples[i].tags!.map((t) => labelId(map, t, `${where}: example ${i}`));
      f.labels = wordIds.map((w, t) => {
        if (w === null) return IGNORE_INDEX;
        if (t === 0 || wordIds[t - 1] !== w) return tags[w];
        return options.labelAllTokens ? bToI[tags[w]] : IGNORE_INDEX;
      });
      f.labelKind = "token";
    }
    return f;
  });
  return { features, numLabels, ...map };
}

/** Word-level predictions of one feature: for each word it covers, the class of its first sub-token's
 *  row in `logits` ((T, numLabels) row-major, T >= the feature's length) or in `predictions` (T class ids). */
export function wordPredictions(feature: TokenFeature, scores: { logits: ArrayLike<number>; numLabels: number } | { predictions: ArrayLike<number> }): number[] {
  const out = new Array<number>(feature.numWords).fill(-1);
  const n = feature.wordIds.length;
  for (let t = 0; t < n; t++) {
    const w = feature.wordIds[t];
    if (w === null || (t > 0 && feature.wordIds[t - 1] === w)) continue;
    if ("predictions" in scores) {
      out[w] = scores.predictions[t];
      continue;
    }
    const { logits, numLabels } = scores;
    if (logits.length < n * numLabels) throw new TunekitError(`wordPredictions: logits has ${logits.length} values, expected at least ${n} tokens × ${numLabels} labels`);
    let best = 0;
    for (let k = 1; k < numLabels; k++) if (logits[t * numLabels + k] > logits[t * numLabels + best]) best = k;
    out[w] = best;
  }
  return out;
}
