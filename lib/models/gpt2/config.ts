// GPT2Config (configuration_gpt2.py): its keys and defaults, and where the normalised fields live.
import type { ArchConfig } from "../spec";

/** GPT2Config keys (configuration_gpt2.py). */
export interface GPT2ConfigJson {
  model_type: "gpt2";
  vocab_size: number; n_embd: number; n_layer: number; n_head: number; n_inner: number | null; n_positions: number;
  activation_function: string; resid_pdrop: number; embd_pdrop: number; attn_pdrop: number; layer_norm_epsilon: number;
  initializer_range: number; summary_first_dropout: number; scale_attn_weights: boolean;
  scale_attn_by_inverse_layer_idx: boolean; reorder_and_upcast_attn: boolean;
}

export const gpt2Config: ArchConfig<GPT2ConfigJson> = {
  parse: (r) => ({
    model_type: "gpt2",
    vocab_size: r.posInt("vocab_size", 50257),
    n_embd: r.posInt("n_embd", 768),
    n_layer: r.posInt("n_layer", 12),
    n_head: r.posInt("n_head", 12),
    n_inner: r.optPosInt("n_inner"),
    n_positions: r.posInt("n_positions", 1024),
    activation_function: r.str("activation_function", "gelu_new"),
    resid_pdrop: r.prob("resid_pdrop", 0.1),
    embd_pdrop: r.prob("embd_pdrop", 0.1),
    attn_pdrop: r.prob("attn_pdrop", 0.1),
    layer_norm_epsilon: r.posNum("layer_norm_epsilon", 1e-5),
    initializer_range: r.posNum("initializer_range", 0.02),
    summary_first_dropout: r.prob("summary_first_dropout", 0.1),
    scale_attn_weights: r.bool("scale_attn_weights", true),
    scale_attn_by_inverse_layer_idx: r.bool("scale_attn_by_inverse_layer_idx", false),
    reorder_and_upcast_attn: r.bool("reorder_and_upcast_attn", false),
  }),
  // GPT2ForTokenClassification reads classifier_dropout, then hidden_dropout, which GPT2Config does not define.
  fields: (hf, r) => ({
    vocabSize: hf.vocab_size, hiddenSize: hf.n_embd, numLayers: hf.n_layer, numHeads: hf.n_head,
    intermediateSize: hf.n_inner ?? 4 * hf.n_embd, maxPositions: hf.n_positions, typeVocabSize: 0,
    layerNormEps: hf.layer_norm_epsilon, hiddenAct: hf.activation_function, hiddenDropout: hf.resid_pdrop,
    attentionDropout: hf.attn_pdrop, embeddingDropout: hf.embd_pdrop,
    classifierDropout: r.optProb("classifier_dropout") ?? r.optProb("hidden_dropout") ?? 0.1, qaDropout: 0,
    initializerRange: hf.initializer_range,
  }),
  keys: {
    vocabSize: "vocab_size", hiddenSize: "n_embd", numLayers: "n_layer", numHeads: "n_head", intermediateSize: "n_inner",
    maxPositions: "n_positions", layerNormEps: "layer_norm_epsilon", hiddenAct: "activation_function",
    hiddenDropout: "resid_pdrop", embeddingDropout: "embd_pdrop", attentionDropout: "attn_pdrop", classifierDropout: "classifier_dropout",
  },
  tokenIds: { pad: null, bos: 50256, eos: 50256 },
};
