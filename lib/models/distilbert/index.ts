// DistilBERT (modeling_distilbert.py, configuration_distilbert.py): everything tunekit knows about the architecture.
import type { ArchSpec } from "../spec";
import { DistilBertConfigJson, distilbertConfig } from "./config";
import { DistilBertModel } from "./model";
import { distilbertHeads } from "./heads";

export type { DistilBertConfigJson };

/** Leaf names of DistilBERT's Linear layers (body, LM and task heads). */
export type DistilBertLinear = "q_lin" | "k_lin" | "v_lin" | "out_lin" | "lin1" | "lin2" | "vocab_transform" | "pre_classifier" | "classifier" | "qa_outputs";

export const distilbert: ArchSpec<DistilBertConfigJson, DistilBertModel, DistilBertLinear> = {
  modelType: "distilbert",
  hfModule: "transformers.models.distilbert.modeling_distilbert",
  classes: {
    base: "DistilBertModel", maskedLM: "DistilBertForMaskedLM", sequenceClassification: "DistilBertForSequenceClassification",
    tokenClassification: "DistilBertForTokenClassification", questionAnswering: "DistilBertForQuestionAnswering",
  },
  config: distilbertConfig,
  prefix: "distilbert",
  body: (config, ctx) => new DistilBertModel(config, ctx),
  heads: distilbertHeads,
  checkpoint: {
    buffers: ["embeddings.position_ids"],
    tied: { "vocab_projector.weight": "distilbert.embeddings.word_embeddings.weight" },
    transposed: [],
    optional: [],
  },
  layers: { list: "transformer.layer", embeddings: ["embeddings"] },
  norms: ["LayerNorm", "sa_layer_norm", "output_layer_norm", "vocab_layer_norm"],
  lora: {
    linear: ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2", "vocab_transform", "pre_classifier", "classifier", "qa_outputs"],
    defaultTargets: null, // PEFT's TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING has no distilbert entry
    queryValue: ["q_lin", "v_lin"],
  },
  tokenizerClass: "DistilBertTokenizer",
};
