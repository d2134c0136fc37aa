// The normalised config every model is built from (ModelConfig), and what the model code derives from it.
// config_json.ts parses config.json into it; each architecture's keys are its folder's config.ts.
import { ConfigError } from "../errors";
import type { ProblemType } from "../io/config";
import type { GeluApproximate } from "../tensor/ops";
import type { HfConfigJson, ModelType } from "./registry";

export type { ModelType, HfConfigJson };
export type { BertConfigJson } from "./bert/config";
export type { DistilBertConfigJson } from "./distilbert/config";
export type { GPT2ConfigJson } from "./gpt2/config";
export type { LlamaConfigJson } from "./llama/config";
export type { MistralConfigJson } from "./mistral/config";
export type { Qwen2ConfigJson } from "./qwen2/config";
export type { Qwen3ConfigJson } from "./qwen3/config";

type Json = Record<string, unknown>;

/** One view of every supported model; `hf` holds the model's own keys, `raw` the file as read. */
export interface ModelConfig {
  readonly modelType: ModelType;
  readonly architectures: readonly string[];
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  /** Feed-forward inner size (GPT-2: n_inner, or 4 × n_embd when null). */
  readonly intermediateSize: number;
  readonly maxPositions: number;
  /** 0 when the model has no token-type embeddings (DistilBERT, GPT-2). */
  readonly typeVocabSize: number;
  readonly layerNormEps: number;
  /** Activation name as HF spells it: "gelu", "gelu_new", "relu", ... */
  readonly hiddenAct: string;
  /** Dropout on sublayer outputs (BERT hidden_dropout_prob, DistilBERT dropout, GPT-2 resid_pdrop). */
  readonly hiddenDropout: number;
  /** Dropout on attention probabilities (attention_probs_dropout_prob / attention_dropout / attn_pdrop). */
  readonly attentionDropout: number;
  /** Dropout after the embeddings (BERT hidden_dropout_prob, DistilBERT dropout, GPT-2 embd_pdrop). */
  readonly embeddingDropout: number;
  /**
   * Dropout before a classification head as transformers applies it: BERT/RoBERTa classifier_dropout ??
   * hidden_dropout_prob (sequence and token heads), DistilBERT seq_classif_dropout (sequence head; its
   * token head uses `dropout`), GPT-2 classifier_dropout ?? hidden_dropout ?? 0.1 (GPT2ForTokenClassification
   * reads these extra keys; its sequence-classification head has no dropout).
   */
  readonly classifierDropout: number;
  /** Dropout before a question-answering head: DistilBERT qa_dropout, 0 for the others. */
  readonly qaDropout: number;
  readonly initializerRange: number;
  readonly padTokenId: number | null;
  readonly bosTokenId: number | null;
  /** The first of config.json's eos_token_id (a list in Llama 3.x Instruct configs). */
  readonly eosTokenId: number | null;
  /** Every id of eos_token_id (any of them ends a generation, as HF's generate). */
  readonly eosTokenIds: readonly number[];
  readonly tieWordEmbeddings: boolean;
  readonly numLabels: number;
  readonly id2label: Readonly<Record<number, string>>;
  readonly label2id: Readonly<Record<string, number>>;
  readonly problemType: ProblemType | null;
  readonly hf: Readonly<HfConfigJson>;
  readonly raw: Readonly<Json>;
}

/** HF's activation names → the GELU kernel's mode. Anything else is refused, not approximated. */
export function geluMode(c: ModelConfig): GeluApproximate {
  switch (c.hiddenAct) {
    case "gelu":
      return "none";
    case "gelu_new":
    case "gelu_pytorch_tanh":
    case "gelu_fast":
      return "tanh";
    default:
      throw new ConfigError(`config.json: activation '${c.hiddenAct}' is not supported; expected gelu, gelu_new or gelu_pytorch_tanh`);
  }
}
