// RoBERTa (modeling_roberta.py, configuration_roberta.py): BERT's body and config keys, with its own
// position ids, special tokens, classification and LM heads, and checkpoint prefix.
import type { ArchSpec } from "../spec";
import type { BertConfigJson } from "../bert/config";
import { robertaConfig } from "./config";
import { RobertaModel } from "./model";
import { robertaHeads } from "./heads";

/** Leaf names of RoBERTa's Linear layers (body, LM and task heads). */
export type RobertaLinear = "query" | "key" | "value" | "dense" | "out_proj" | "classifier" | "qa_outputs";

export const roberta: ArchSpec<BertConfigJson, RobertaModel, RobertaLinear> = {
  modelType: "roberta",
  hfModule: "transformers.models.roberta.modeling_roberta",
  classes: {
    base: "RobertaModel", maskedLM: "RobertaForMaskedLM", sequenceClassification: "RobertaForSequenceClassification",
    tokenClassification: "RobertaForTokenClassification", questionAnswering: "RobertaForQuestionAnswering",
  },
  config: robertaConfig,
  prefix: "roberta",
  body: (config, ctx, pooler) => new RobertaModel(config, pooler, ctx),
  heads: robertaHeads,
  checkpoint: {
    buffers: ["embeddings.position_ids", "embeddings.token_type_ids"],
    tied: { "lm_head.decoder.weight": "roberta.embeddings.word_embeddings.weight", "lm_head.decoder.bias": "lm_head.bias" },
    transposed: [],
    optional: ["pooler"],
  },
  layers: { list: "encoder.layer", embeddings: ["embeddings"] },
  norms: ["LayerNorm", "layer_norm"],
  lora: { linear: ["query", "key", "value", "dense", "out_proj", "classifier", "qa_outputs"], defaultTargets: ["query", "value"], queryValue: ["query", "value"] },
  tokenizerClass: "RobertaTokenizer",
  // Positions run from padding_idx + 1, so the table holds two fewer tokens than its size (512 of 514).
  maxTokens: (c) => c.maxPositions - 2,
};
