// BertConfig (configuration_bert.py): its keys and defaults, and where the normalised fields live.
// RobertaConfig is BertConfig with another vocabulary and other token ids (lib/models/roberta/config.ts).
import type { Reader } from "../../io/config";
import type { ArchConfig, ArchFields } from "../spec";

/** BertConfig / RobertaConfig keys (configuration_bert.py, configuration_roberta.py). */
export interface BertConfigJson {
  model_type: "bert" | "roberta";
  vocab_size: number; hidden_size: number; num_hidden_layers: number; num_attention_heads: number;
  intermediate_size: number; hidden_act: string; hidden_dropout_prob: number; attention_probs_dropout_prob: number;
  max_position_embeddings: number; type_vocab_size: number; initializer_range: number; layer_norm_eps: number;
  position_embedding_type: string; classifier_dropout: number | null;
}

export function parseBertJson(r: Reader, modelType: BertConfigJson["model_type"], vocabSize: number): BertConfigJson {
  return {
    model_type: modelType,
    vocab_size: r.posInt("vocab_size", vocabSize),
    hidden_size: r.posInt("hidden_size", 768),
    num_hidden_layers: r.posInt("num_hidden_layers", 12),
    num_attention_heads: r.posInt("num_attention_heads", 12),
    intermediate_size: r.posInt("intermediate_size", 3072),
    hidden_act: r.str("hidden_act", "gelu"),
    hidden_dropout_prob: r.prob("hidden_dropout_prob", 0.1),
    attention_probs_dropout_prob: r.prob("attention_probs_dropout_prob", 0.1),
    max_position_embeddings: r.posInt("max_position_embeddings", 512),
    type_vocab_size: r.nonNegInt("type_vocab_size", 2),
    initializer_range: r.posNum("initializer_range", 0.02),
    layer_norm_eps: r.posNum("layer_norm_eps", 1e-12),
    position_embedding_type: r.str("position_embedding_type", "absolute"),
    classifier_dropout: r.optProb("classifier_dropout"),
  };
}

/** hidden_dropout_prob is also the embeddings' dropout and, without classifier_dropout, the classifier's. */
export function bertFields(hf: BertConfigJson): ArchFields {
  return {
    vocabSize: hf.vocab_size, hiddenSize: hf.hidden_size, numLayers: hf.num_hidden_layers, numHeads: hf.num_attention_heads,
    intermediateSize: hf.intermediate_size, maxPositions: hf.max_position_embeddings, typeVocabSize: hf.type_vocab_size,
    layerNormEps: hf.layer_norm_eps, hiddenAct: hf.hidden_act, hiddenDropout: hf.hidden_dropout_prob,
    attentionDropout: hf.attention_probs_dropout_prob, embeddingDropout: hf.hidden_dropout_prob,
    classifierDropout: hf.classifier_dropout ?? hf.hidden_dropout_prob, qaDropout: 0, initializerRange: hf.initializer_range,
  };
}

export const BERT_FIELD_KEYS: ArchConfig<BertConfigJson>["keys"] = {
  vocabSize: "vocab_size", hiddenSize: "hidden_size", numLayers: "num_hidden_layers", numHeads: "num_attention_heads",
  intermediateSize: "intermediate_size", maxPositions: "max_position_embeddings", typeVocabSize: "type_vocab_size",
  layerNormEps: "layer_norm_eps", hiddenAct: "hidden_act", hiddenDropout: "hidden_dropout_prob",
  embeddingDropout: "hidden_dropout_prob", attentionDropout: "attention_probs_dropout_prob", classifierDropout: "classifier_dropout",
};

export const bertConfig: ArchConfig<BertConfigJson> = {
  parse: (r) => parseBertJson(r, "bert", 30522),
  fields: bertFields,
  keys: BERT_FIELD_KEYS,
  tokenIds: { pad: 0, bos: null, eos: null },
};
