// The interface one architecture folder (lib/models/<arch>/) fills in: everything tunekit knows about
// that architecture, from config.json's keys to PEFT's target names. The generic machinery (PreTrainedModel,
// the Auto* classes, heads, Trainer, optimizer, strategies, LoRA, adapter files, config IO) asks it; no
// other file branches on a model type. lib/models/README.md says how to add an architecture.
import type { KVCache } from "./cache";
import type { Device } from "../tensor/storage";
import type { Tensor } from "../tensor/tensor";
import type { Generator } from "../tensor/ops";
import type { Module, Context } from "../nn/module";
import type { Reader } from "../io/config";
import type { ModelConfig } from "./config";
import type { ModelInputs } from "./inputs";

/** What a body returns. */
export interface EncoderOutput {
  lastHiddenState: Tensor;
  /** The pooling layer's output (BERT / RoBERTa bodies built with one). */
  poolerOutput?: Tensor;
  /** The key-padding mask the body used (B·T bytes). */
  mask: Uint8Array;
}

/** A body (BertModel, GPT2Model, …): HF's parameter names, the hidden states of a batch. */
export interface Body extends Module {
  readonly config: ModelConfig;
  /** How many transformer layers it stacks. */
  readonly numLayers: number;
  forward(x: ModelInputs): EncoderOutput;
  /** A key/value cache for generation (decoders): B rows of up to Tmax tokens on `device`. */
  newCache?(B: number, Tmax: number, device: Device): KVCache;
}

/** A head's modules, registered on the model under HF's names in this order, and its forward. */
export interface Head<F> {
  modules: readonly (readonly [name: string, module: Module])[];
  forward: F;
}

/** The config fields an architecture derives from its own keys; the rest (labels, token ids, …) are common. */
export type ArchFields = Pick<ModelConfig,
  | "vocabSize" | "hiddenSize" | "numLayers" | "numHeads" | "intermediateSize" | "maxPositions" | "typeVocabSize"
  | "layerNormEps" | "hiddenAct" | "hiddenDropout" | "attentionDropout" | "embeddingDropout" | "classifierDropout"
  | "qaDropout" | "initializerRange">;

/** config.json of this architecture (configuration_<arch>.py). */
export interface ArchConfig<Hf> {
  /** Its own keys with HF's defaults (`r` refuses a malformed value by key). */
  parse(r: Reader): Hf;
  /** The normalised fields; `r` reads keys HF's heads take beyond the config class's own (GPT-2's classifier_dropout). */
  fields(hf: Hf, r: Reader): ArchFields;
  /** Where each normalised field is stored (saving, overrides); a field without a key is derived and read-only. */
  keys: Readonly<Partial<Record<keyof ArchFields, string>>>;
  /** The config class's default special-token ids. */
  tokenIds: { pad: number | null; bos: number | null; eos: number | null };
  /** The config class's default tie_word_embeddings (PretrainedConfig's true when absent; Llama's is false). */
  tieWordEmbeddings?: boolean;
}

/** HF's class name per head; absent: HF (or tunekit, for the decoders' token and QA heads) has no such class. */
export interface ArchClasses {
  base: string;
  maskedLM?: string;
  causalLM?: string;
  sequenceClassification: string;
  tokenClassification?: string;
  questionAnswering?: string;
}

/** The architecture-specific heads; the token-classification and QA heads are generic (classifier / qa_outputs). */
export interface ArchHeads<B extends Body> {
  sequenceClassification: {
    /** The body keeps its pooling layer for this head (BertForSequenceClassification). */
    pooler: boolean;
    build(body: B, c: ModelConfig, gen: Generator): Head<(o: EncoderOutput, x: ModelInputs) => Tensor>;
  };
  /** Dropout before the token classifier: HF reads a different key per architecture (with classes.tokenClassification). */
  tokenClassifierDropout?(c: ModelConfig): number;
  /** Dropout before qa_outputs, or null where HF's class has none (with classes.questionAnswering). */
  qaDropout?(c: ModelConfig): number | null;
  /** Hidden states (N, H) → vocabulary logits. */
  maskedLM?(body: B, c: ModelConfig): Head<(h: Tensor) => Tensor>;
  causalLM?(body: B, c: ModelConfig): Head<(h: Tensor) => Tensor>;
}

/** How checkpoint files name and lay out the weights (modeling_<arch>.py's state_dict). */
export interface ArchCheckpoint {
  /** Buffers saved beside the weights, never parameters (matched as a dotted suffix: "attn.bias"). */
  buffers: readonly string[];
  /**
   * Tied copies some files also hold: key → the parameter key it equals (dropped on load, not written) —
   * unless the model holds that key as a parameter of its own (Llama's lm_head with tie_word_embeddings false).
   */
  tied: Readonly<Record<string, string>>;
  /** Weights stored [in, out] (HF's Conv1D; matched as a dotted suffix), kept [out, in] here. */
  transposed: readonly string[];
  /** Body modules a checkpoint may lack (BertForMaskedLM has no pooler): freshly initialised, not an error. */
  optional: readonly string[];
}

/** One architecture. `Hf`: its config.json keys; `B`: its body; `Leaf`: the leaf names of its Linear layers. */
export interface ArchSpec<Hf = unknown, B extends Body = Body, Leaf extends string = string> {
  /** config.json's model_type. */
  modelType: string;
  /** HF's modeling module (PEFT's auto_mapping.parent_library). */
  hfModule: string;
  classes: ArchClasses;
  config: ArchConfig<Hf>;
  /** The body's attribute in a model with a head ("bert", "transformer"): its keys' prefix. */
  prefix: string;
  body(config: ModelConfig, ctx: Context, addPoolingLayer: boolean): B;
  heads: ArchHeads<B>;
  checkpoint: ArchCheckpoint;
  /** Where the layers sit inside the body, for layer-wise LR, freezing and gradual unfreezing. */
  layers: {
    /** The layer list's path ("encoder.layer", "h"): its parameters are "<list>.<i>.…". */
    list: string;
    /** Embedding modules ("embeddings", or "wte" and "wpe"): layer 0. */
    embeddings: readonly string[];
  };
  /** Leaf names of its norm modules: no weight decay on them (HF's Trainer finds them by type and name pattern). */
  norms: readonly string[];
  lora: {
    /** Leaf names of every Linear layer in the body and heads (what targetModules may name). */
    linear: readonly Leaf[];
    /** PEFT's default target_modules for this model type, or null where PEFT has none. */
    defaultTargets: readonly Leaf[] | null;
    /** The attention query and value projections, suggested when there is no default. */
    queryValue: readonly Leaf[];
  };
  /** transformers' tokenizer class for this model type (TOKENIZER_MAPPING_NAMES). */
  tokenizerClass: string;
  /** Tokens a sequence may hold, when fewer than the position table (RoBERTa's start after the padding index). */
  maxTokens?(c: ModelConfig): number;
}
