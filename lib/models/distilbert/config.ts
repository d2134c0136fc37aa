// DistilBertConfig (configuration_distilbert.py): its keys and defaults, and where the normalised fields live.
import type { ArchConfig } from "../spec";

/** DistilBertConfig keys (configuration_distilbert.py); its LayerNorms use eps 1e-12, which is not a setting. */
export interface DistilBertConfigJson {
  model_type: "distilbert";
  vocab_size: number; dim: number; n_layers: number; n_heads: number; hidden_dim: number; activation: string;
  dropout: number; attention_dropout: number; max_position_embeddings: number; sinusoidal_pos_embds: boolean;
  initializer_range: number; qa_dropout: number; seq_classif_dropout: number;
}

export const distilbertConfig: ArchConfig<DistilBertConfigJson> = {
  parse: (r) => ({
    model_type: "distilbert",
    vocab_size: r.posInt("vocab_size", 30522),
    dim: r.posInt("dim", 768),
    n_layers: r.posInt("n_layers", 6),
    n_heads: r.posInt("n_heads", 12),
    hidden_dim: r.posInt("hidden_dim", 3072),
    activation: r.str("activation", "gelu"),
    dropout: r.prob("dropout", 0.1),
    attention_dropout: r.prob("attention_dropout", 0.1),
    max_position_embeddings: r.posInt("max_position_embeddings", 512),
    sinusoidal_pos_embds: r.bool("sinusoidal_pos_embds", false),
    initializer_range: r.posNum("initializer_range", 0.02),
    qa_dropout: r.prob("qa_dropout", 0.1),
    seq_classif_dropout: r.prob("seq_classif_dropout", 0.2),
  }),
  fields: (hf) => ({
    vocabSize: hf.vocab_size, hiddenSize: hf.dim, numLayers: hf.n_layers, numHeads: hf.n_heads,
    intermediateSize: hf.hidden_dim, maxPositions: hf.max_position_embeddings, typeVocabSize: 0, layerNormEps: 1e-12,
    hiddenAct: hf.activation, hiddenDropout: hf.dropout, attentionDropout: hf.attention_dropout, embeddingDropout: hf.dropout,
    classifierDropout: hf.seq_classif_dropout, qaDropout: hf.qa_dropout, initializerRange: hf.initializer_range,
  }),
  keys: {
    vocabSize: "vocab_size", hiddenSize: "dim", numLayers: "n_layers", numHeads: "n_heads", intermediateSize: "hidden_dim",
    maxPositions: "max_position_embeddings", hiddenAct: "activation", hiddenDropout: "dropout", embeddingDropout: "dropout",
    attentionDropout: "attention_dropout", classifierDropout: "seq_classif_dropout", qaDropout: "qa_dropout",
  },
  tokenIds: { pad: 0, bos: null, eos: null },
};
