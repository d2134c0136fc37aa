// config.json: parsed per model_type with Hugging Face's defaults (the `hf` view, HF key names),
// normalised to one model-independent view (hiddenSize, numLayers, ...), and the raw JSON kept so
// that saving writes back every key HF expects, changed only where the caller changed a field.
import * as fs from "fs";
import * as path from "path";
import { ConfigError } from "../errors";
import { writeFileAtomicSync } from "./atomic";
import { readJson } from "./json_safe";

export const SUPPORTED_MODEL_TYPES = ["bert", "distilbert", "roberta", "gpt2"] as const;
export type ModelType = (typeof SUPPORTED_MODEL_TYPES)[number];
export const PROBLEM_TYPES = ["regression", "single_label_classification", "multi_label_classification"] as const;
export type ProblemType = (typeof PROBLEM_TYPES)[number];
export const CONFIG_NAME = "config.json";

/** The dtype of the weights file beside a config.json, as safetensors names it, and the torch name the config gives it. */
export const TORCH_DTYPE_NAMES = { F32: "float32", F16: "float16", BF16: "bfloat16" } as const;
export type WeightsDtype = keyof typeof TORCH_DTYPE_NAMES;

export interface ConfigWriteOptions {
  /**
   * What the weights file written beside this config.json holds. Given, the config says so under both keys that
   * name it: "dtype" (transformers 5 reads it first, and writes only it) and "torch_dtype" (all that 4.x reads),
   * whatever the loaded file said. Pass it whenever weights are written; without it the keys stay as they were read.
   */
  dtype?: WeightsDtype;
}

type Json = Record<string, unknown>;

/** BertConfig / RobertaConfig keys (configuration_bert.py, configuration_roberta.py). */
export interface BertConfigJson {
  model_type: "bert" | "roberta";
  vocab_size: number; hidden_size: number; num_hidden_layers: number; num_attention_heads: number;
  intermediate_size: number; hidden_act: string; hidden_dropout_prob: number; attention_probs_dropout_prob: number;
  max_position_embeddings: number; type_vocab_size: number; initializer_range: number; layer_norm_eps: number;
  position_embedding_type: string; classifier_dropout: number | null;
}
/** DistilBertConfig keys (configuration_distilbert.py); its LayerNorms use eps 1e-12, which is not a setting. */
export interface DistilBertConfigJson {
  model_type: "distilbert";
  vocab_size: number; dim: number; n_layers: number; n_heads: number; hidden_dim: number; activation: string;
  dropout: number; attention_dropout: number; max_position_embeddings: number; sinusoidal_pos_embds: boolean;
  initializer_range: number; qa_dropout: number; seq_classif_dropout: number;
}
/** GPT2Config keys (configuration_gpt2.py). */
export interface GPT2ConfigJson {
  model_type: "gpt2";
  vocab_size: number; n_embd: number; n_layer: number; n_head: number; n_inner: number | null; n_positions: number;
  activation_function: string; resid_pdrop: number; embd_pdrop: number; attn_pdrop: number; layer_norm_epsilon: number;
  initializer_range: number; summary_first_dropout: number; scale_attn_weights: boolean;
  scale_attn_by_inverse_layer_idx: boolean; reorder_and_upcast_attn: boolean;
}
export type HfConfigJson = BertConfigJson | DistilBertConfigJson | GPT2ConfigJson;

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
  readonly eosTokenId: number | null;
  readonly tieWordEmbeddings: boolean;
  readonly numLabels: number;
  readonly id2label: Readonly<Record<number, string>>;
  readonly label2id: Readonly<Record<string, number>>;
  readonly problemType: ProblemType | null;
  readonly hf: Readonly<HfConfigJson>;
  readonly raw: Readonly<Json>;
}

// ---- field readers: HF default when absent, a ConfigError naming the key when malformed ----
class Reader {
  constructor(readonly raw: Json, readonly source: string) {}
  fail(key: string, expected: string): ConfigError {
    return new ConfigError(`${this.source}: ${key} must be ${expected}, got ${JSON.stringify(this.raw[key])}`);
  }
  private get(key: string): unknown {
    return this.raw[key];
  }
  posInt(key: string, dflt: number): number {
    const v = this.get(key) ?? dflt;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) throw this.fail(key, "a positive integer");
    return v;
  }
  nonNegInt(key: string, dflt: number): number {
    const v = this.get(key) ?? dflt;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw this.fail(key, "a non-negative integer");
    return v;
  }
  optPosInt(key: string): number | null {
    const v = this.get(key) ?? null;
    if (v !== null && (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0)) throw this.fail(key, "a positive integer or null");
    return v;
  }
  tokenId(key: string, dflt: number | null): number | null {
    const v = key in this.raw ? this.get(key) : dflt;
    if (v !== null && (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)) throw this.fail(key, "a token id (non-negative integer) or null");
    return v as number | null;
  }
  prob(key: string, dflt: number): number {
    const v = this.get(key) ?? dflt;
    if (typeof v !== "number" || !(v >= 0 && v <= 1)) throw this.fail(key, "a probability in [0, 1]");
    return v;
  }
  optProb(key: string): number | null {
    const v = this.get(key) ?? null;
    if (v !== null && (typeof v !== "number" || !(v >= 0 && v <= 1))) throw this.fail(key, "a probability in [0, 1] or null");
    return v;
  }
  posNum(key: string, dflt: number): number {
    const v = this.get(key) ?? dflt;
    if (typeof v !== "number" || !(v > 0 && Number.isFinite(v))) throw this.fail(key, "a positive number");
    return v;
  }
  str(key: string, dflt: string): string {
    const v = this.get(key) ?? dflt;
    if (typeof v !== "string" || !v) throw this.fail(key, "a non-empty string");
    return v;
  }
  bool(key: string, dflt: boolean): boolean {
    const v = this.get(key) ?? dflt;
    if (typeof v !== "boolean") throw this.fail(key, "true or false");
    return v;
  }
}

function parseHf(r: Reader, modelType: ModelType): HfConfigJson {
  switch (modelType) {
    case "bert":
    case "roberta":
      return {
        model_type: modelType,
        vocab_size: r.posInt("vocab_size", modelType === "bert" ? 30522 : 50265),
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
    case "distilbert":
      return {
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
      };
    case "gpt2":
      return {
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
      };
  }
}

/** Default special-token ids of each config class. */
const TOKEN_DEFAULTS: Record<ModelType, [pad: number | null, bos: number | null, eos: number | null]> = {
  bert: [0, null, null], roberta: [1, 0, 2], distilbert: [0, null, null], gpt2: [null, 50256, 50256],
};

type Normalised = Omit<ModelConfig, "hf" | "raw">;

/** More labels than this is a broken file, not a classifier (it would build a head and label maps that large). */
export const MAX_NUM_LABELS = 100_000;

function parseLabels(r: Reader): Pick<ModelConfig, "numLabels" | "id2label" | "label2id"> {
  const { raw, source } = r;
  const id2label: Record<number, string> = {};
  if (raw.id2label !== undefined && raw.id2label !== null) {
    if (typeof raw.id2label !== "object" || Array.isArray(raw.id2label)) throw r.fail("id2label", "an object of label id → name");
    const entries = Object.entries(raw.id2label as Json);
    for (const [k, v] of entries) {
      if (!/^\d+$/.test(k)) throw new ConfigError(`${source}: id2label key ${JSON.stringify(k)} is not an integer`);
      if (typeof v !== "string") throw new ConfigError(`${source}: id2label[${k}] must be a string, got ${JSON.stringify(v)}`);
      id2label[Number(k)] = v;
    }
    for (let i = 0; i < entries.length; i++) {
      if (!(i in id2label)) throw new ConfigError(`${source}: id2label keys must be 0..${entries.length - 1}; ${i} is missing`);
    }
  } else {
    const n = r.posInt("num_labels", 2);
    if (n > MAX_NUM_LABELS) throw r.fail("num_labels", `at most ${MAX_NUM_LABELS}`);
    for (let i = 0; i < n; i++) id2label[i] = `LABEL_${i}`;
  }
  const numLabels = Object.keys(id2label).length;
  // Object.fromEntries defines own properties, so a label named "__proto__" stays a label.
  let label2id: Record<string, number>;
  if (raw.label2id !== undefined && raw.label2id !== null) {
    if (typeof raw.label2id !== "object" || Array.isArray(raw.label2id)) throw r.fail("label2id", "an object of label name → id");
    const entries = Object.entries(raw.label2id as Json);
    for (const [k, v] of entries) {
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v >= numLabels) throw new ConfigError(`${source}: label2id['${k}'] must be a label id in 0..${numLabels - 1}, got ${JSON.stringify(v)}`);
    }
    label2id = Object.fromEntries(entries) as Record<string, number>;
  } else {
    label2id = Object.fromEntries(Object.entries(id2label).map(([i, name]) => [name, Number(i)]));
  }
  return { numLabels, id2label, label2id };
}

/** Parses a config.json object. `source` names it in errors. */
export function parseConfig(json: unknown, source = CONFIG_NAME): ModelConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new ConfigError(`${source}: must be a JSON object`);
  const raw = json as Json;
  const mt = raw.model_type;
  if (typeof mt !== "string") throw new ConfigError(`${source}: has no model_type; expected one of ${SUPPORTED_MODEL_TYPES.join(", ")}`);
  if (!(SUPPORTED_MODEL_TYPES as readonly string[]).includes(mt)) throw new ConfigError(`${source}: unsupported model_type '${mt}'; tunekit supports ${SUPPORTED_MODEL_TYPES.join(", ")}`);
  const modelType = mt as ModelType;
  const r = new Reader(raw, source);
  const hf = parseHf(r, modelType);

  const arch = raw.architectures ?? [];
  if (!Array.isArray(arch) || !arch.every((a) => typeof a === "string")) throw r.fail("architectures", "a list of class names");
  const pt = raw.problem_type ?? null;
  if (pt !== null && !(PROBLEM_TYPES as readonly unknown[]).includes(pt)) throw r.fail("problem_type", `null or one of ${PROBLEM_TYPES.join(", ")}`);
  const [pad, bos, eos] = TOKEN_DEFAULTS[modelType];
  const common = {
    modelType,
    architectures: arch as string[],
    padTokenId: r.tokenId("pad_token_id", pad),
    bosTokenId: r.tokenId("bos_token_id", bos),
    eosTokenId: r.tokenId("eos_token_id", eos),
    tieWordEmbeddings: r.bool("tie_word_embeddings", true),
    problemType: pt as ProblemType | null,
    ...parseLabels(r),
  };
  let view: Normalised;
  switch (hf.model_type) {
    case "bert":
    case "roberta":
      view = {
        ...common, vocabSize: hf.vocab_size, hiddenSize: hf.hidden_size, numLayers: hf.num_hidden_layers, numHeads: hf.num_attention_heads,
        intermediateSize: hf.intermediate_size, maxPositions: hf.max_position_embeddings, typeVocabSize: hf.type_vocab_size,
        layerNormEps: hf.layer_norm_eps, hiddenAct: hf.hidden_act, hiddenDropout: hf.hidden_dropout_prob,
        attentionDropout: hf.attention_probs_dropout_prob, embeddingDropout: hf.hidden_dropout_prob,
        classifierDropout: hf.classifier_dropout ?? hf.hidden_dropout_prob, qaDropout: 0, initializerRange: hf.initializer_range,
      };
      break;
    case "distilbert":
      view = {
        ...common, vocabSize: hf.vocab_size, hiddenSize: hf.dim, numLayers: hf.n_layers, numHeads: hf.n_heads,
        intermediateSize: hf.hidden_dim, maxPositions: hf.max_position_embeddings, typeVocabSize: 0, layerNormEps: 1e-12,
        hiddenAct: hf.activation, hiddenDropout: hf.dropout, attentionDropout: hf.attention_dropout, embeddingDropout: hf.dropout,
        classifierDropout: hf.seq_classif_dropout, qaDropout: hf.qa_dropout, initializerRange: hf.initializer_range,
      };
      break;
    case "gpt2":
      view = {
        ...common, vocabSize: hf.vocab_size, hiddenSize: hf.n_embd, numLayers: hf.n_layer, numHeads: hf.n_head,
        intermediateSize: hf.n_inner ?? 4 * hf.n_embd, maxPositions: hf.n_positions, typeVocabSize: 0,
        layerNormEps: hf.layer_norm_epsilon, hiddenAct: hf.activation_function, hiddenDropout: hf.resid_pdrop,
        attentionDropout: hf.attn_pdrop, embeddingDropout: hf.embd_pdrop,
        classifierDropout: r.optProb("classifier_dropout") ?? r.optProb("hidden_dropout") ?? 0.1, qaDropout: 0,
        initializerRange: hf.initializer_range,
      };
      break;
  }
  if (view.hiddenSize % view.numHeads !== 0) {
    throw new ConfigError(`${source}: hidden size ${view.hiddenSize} is not a multiple of the number of attention heads ${view.numHeads}`);
  }
  if (view.padTokenId !== null && view.padTokenId >= view.vocabSize) {
    throw new ConfigError(`${source}: pad_token_id ${view.padTokenId} is outside the vocabulary of ${view.vocabSize}`);
  }
  return { ...view, hf, raw };
}

/** Reads `<dir>/config.json` (or the given .json file). */
export function readConfig(dirOrFile: string): ModelConfig {
  const file = configPath(dirOrFile);
  return parseConfig(readJson(file, file, ConfigError), file);
}

const configPath = (p: string) => (fs.existsSync(p) && fs.statSync(p).isDirectory() ? path.join(p, CONFIG_NAME) : p);

// Where each normalised field lives in each model's config.json. A field with no key there (qaDropout of
// BERT, say) is derived, and changing it is an error; two fields on one key must agree.
const FIELD_KEYS: Record<ModelType, Partial<Record<keyof Normalised, string>>> = {
  bert: {
    vocabSize: "vocab_size", hiddenSize: "hidden_size", numLayers: "num_hidden_layers", numHeads: "num_attention_heads",
    intermediateSize: "intermediate_size", maxPositions: "max_position_embeddings", typeVocabSize: "type_vocab_size",
    layerNormEps: "layer_norm_eps", hiddenAct: "hidden_act", hiddenDropout: "hidden_dropout_prob",
    embeddingDropout: "hidden_dropout_prob", attentionDropout: "attention_probs_dropout_prob", classifierDropout: "classifier_dropout",
  },
  roberta: {},
  distilbert: {
    vocabSize: "vocab_size", hiddenSize: "dim", numLayers: "n_layers", numHeads: "n_heads", intermediateSize: "hidden_dim",
    maxPositions: "max_position_embeddings", hiddenAct: "activation", hiddenDropout: "dropout", embeddingDropout: "dropout",
    attentionDropout: "attention_dropout", classifierDropout: "seq_classif_dropout", qaDropout: "qa_dropout",
  },
  gpt2: {
    vocabSize: "vocab_size", hiddenSize: "n_embd", numLayers: "n_layer", numHeads: "n_head", intermediateSize: "n_inner",
    maxPositions: "n_positions", layerNormEps: "layer_norm_epsilon", hiddenAct: "activation_function",
    hiddenDropout: "resid_pdrop", embeddingDropout: "embd_pdrop", attentionDropout: "attn_pdrop", classifierDropout: "classifier_dropout",
  },
};
FIELD_KEYS.roberta = FIELD_KEYS.bert;
const COMMON_KEYS: Partial<Record<keyof Normalised, string>> = {
  initializerRange: "initializer_range", padTokenId: "pad_token_id", bosTokenId: "bos_token_id", eosTokenId: "eos_token_id",
  tieWordEmbeddings: "tie_word_embeddings", architectures: "architectures", problemType: "problem_type",
};

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The normalised fields that config.json of this model type stores under a key of their own. */
export function overrideKeys(modelType: ModelType): Set<string> {
  return new Set(Object.keys({ ...COMMON_KEYS, ...FIELD_KEYS[modelType] }));
}

/**
 * The config.json object for `config`: its raw JSON, with every field the caller changed (for
 * example `{...cfg, id2label, label2id, architectures}`, or a changed `hf` key) written under its
 * HF key, and the result checked by parsing it again.
 */
export function configToJson(config: ModelConfig, options: ConfigWriteOptions = {}): Json {
  const base = parseConfig(config.raw, "configToJson");
  const out: Json = { ...config.raw };
  if (options.dtype !== undefined) {
    const name = Object.prototype.hasOwnProperty.call(TORCH_DTYPE_NAMES, options.dtype) ? TORCH_DTYPE_NAMES[options.dtype] : undefined;
    if (!name) throw new ConfigError(`configToJson: dtype must be one of ${Object.keys(TORCH_DTYPE_NAMES).join(", ")} (the weights file's), got ${JSON.stringify(options.dtype)}`);
    out.dtype = name;
    out.torch_dtype = name;
  }
  for (const [k, v] of Object.entries(config.hf)) if (!same(v, (base.hf as unknown as Json)[k])) out[k] = v;

  const keys = { ...COMMON_KEYS, ...FIELD_KEYS[config.modelType] };
  const written = new Map<string, keyof Normalised>();
  const skip = new Set(["modelType", "numLabels", "id2label", "label2id"]);
  for (const field of Object.keys(base) as (keyof Normalised)[]) {
    if (skip.has(field) || field === ("hf" as string) || field === ("raw" as string)) continue;
    const now = config[field], was = base[field];
    if (same(now, was)) continue;
    const key = keys[field];
    if (!key) throw new ConfigError(`configToJson: ${config.modelType} config.json has no setting for ${field} (it is derived)`);
    const other = written.get(key);
    if (other && !same(config[other], now)) throw new ConfigError(`configToJson: ${field} and ${other} are both ${key} in a ${config.modelType} config.json and must be equal`);
    written.set(key, field);
    out[key] = now;
  }

  const labelsChanged = !same(config.id2label, base.id2label) || !same(config.label2id, base.label2id) || config.numLabels !== base.numLabels;
  if (labelsChanged) {
    let id2label = config.id2label;
    if (same(id2label, base.id2label) && config.numLabels !== base.numLabels) {
      id2label = Object.fromEntries(Array.from({ length: config.numLabels }, (_, i) => [i, `LABEL_${i}`]));
    }
    const n = Object.keys(id2label).length;
    if (config.numLabels !== base.numLabels && config.numLabels !== n) throw new ConfigError(`configToJson: numLabels ${config.numLabels} disagrees with id2label's ${n} labels`);
    const label2id = same(config.label2id, base.label2id) ? Object.fromEntries(Object.entries(id2label).map(([i, s]) => [s, Number(i)])) : config.label2id;
    out.id2label = Object.fromEntries(Object.entries(id2label).map(([i, s]) => [String(i), s]));
    out.label2id = { ...label2id };
    delete out.num_labels;
  }
  parseConfig(out, "configToJson"); // what is written must read back
  return out;
}

/** Writes config.json into `dirOrFile` (a directory, or a file path) atomically, as HF does: sorted keys, indent 2.
 *  options.dtype: the dtype of the weights written beside it (see ConfigWriteOptions). */
export function saveConfig(dirOrFile: string, config: ModelConfig, options: ConfigWriteOptions = {}): void {
  const text = JSON.stringify(sortKeys(configToJson(config, options)), null, 2) + "\n";
  writeFileAtomicSync(configPath(dirOrFile), Buffer.from(text, "utf8"));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (typeof v !== "object" || v === null) return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Json)[k])]));
}
