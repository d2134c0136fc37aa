// BERT (modeling_bert.py, configuration_bert.py): everything tunekit knows about the architecture.
import type { ArchSpec } from "../spec";
import { BertConfigJson, bertConfig } from "./config";
import { BertModel } from "./model";
import { bertHeads } from "./heads";

export type { BertConfigJson };

/** Leaf names of BERT's Linear layers (body, LM and task heads). */
export type BertLinear = "query" | "key" | "value" | "dense" | "classifier" | "qa_outputs";

export const bert: ArchSpec<BertConfigJson, BertModel, BertLinear> = {
  modelType: "bert",
  hfModule: "transformers.models.bert.modeling_bert",
  classes: {
    base: "BertModel", maskedLM: "BertForMaskedLM", sequenceClassification: "BertForSequenceClassification",
    tokenClassification: "BertForTokenClassification", questionAnswering: "BertForQuestionAnswering",
  },
  config: bertConfig,
  prefix: "bert",
  body: (config, ctx, pooler) => new BertModel(config, pooler, ctx),
  heads: bertHeads,
  checkpoint: {
    buffers: ["embeddings.position_ids", "embeddings.token_type_ids"],
    tied: { "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight", "cls.predictions.decoder.bias": "cls.predictions.bias" },
    transposed: [],
    optional: ["pooler"],
  },
  layers: { list: "encoder.layer", embeddings: ["embeddings"] },
  norms: ["LayerNorm"],
  lora: { linear: ["query", "key", "value", "dense", "classifier", "qa_outputs"], defaultTargets: ["query", "value"], queryValue: ["query", "value"] },
  tokenizerClass: "BertTokenizer",
};
