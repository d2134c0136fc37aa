// RobertaConfig (configuration_roberta.py): BertConfig's keys with RoBERTa's vocabulary and special tokens.
import type { ModelConfig } from "../config";
import type { ArchConfig } from "../spec";
import { BERT_FIELD_KEYS, BertConfigJson, bertFields, parseBertJson } from "../bert/config";

export const robertaConfig: ArchConfig<BertConfigJson> = {
  parse: (r) => parseBertJson(r, "roberta", 50265),
  fields: bertFields,
  keys: BERT_FIELD_KEYS,
  tokenIds: { pad: 1, bos: 0, eos: 2 },
};

/** RoBERTa numbers positions from padding_idx + 1 and gives padding tokens padding_idx. */
export const robertaPadding = (c: ModelConfig): number => c.padTokenId ?? 1;
