// LlamaConfig (configuration_llama.py) and what the Llama family's configs share: Mistral, Qwen2 and Qwen3
// parse the same keys with their own defaults (their folders' config.ts) and add their own. The body reads
// DecoderSettings, derived here from each config's keys as that architecture's modeling file reads them.
import { ConfigError } from "../../errors";
import { Reader } from "../../io/config";
import type { ArchConfig, ArchFields } from "../spec";
import type { RopeScaling } from "../rope";

type Json = Record<string, unknown>;

/** The keys every Llama-family config.json has (HF's names). */
export interface DecoderConfigJson {
  vocab_size: number; hidden_size: number; intermediate_size: number; num_hidden_layers: number;
  num_attention_heads: number; num_key_value_heads: number; head_dim: number | null; hidden_act: string;
  max_position_embeddings: number; initializer_range: number; rms_norm_eps: number;
  rope_theta: number;
  /** As config.json has it ({"rope_type": "llama3", "factor": 8, …}); ropeScaling() reads it. */
  rope_scaling: Json | null;
  attention_dropout: number;
}

/** LlamaConfig keys. */
export interface LlamaConfigJson extends DecoderConfigJson {
  model_type: "llama";
  attention_bias: boolean;
  mlp_bias: boolean;
  pretraining_tp: number;
}

/** The config class's defaults of the shared keys (null head_dim / num_key_value_heads: derived). */
export interface DecoderDefaults {
  vocab_size: number; hidden_size: number; intermediate_size: number; num_hidden_layers: number;
  num_attention_heads: number; num_key_value_heads: number | null; head_dim: number | null;
  max_position_embeddings: number;
}

/** What the decoder body needs beyond ModelConfig's common fields. */
export interface DecoderSettings {
  numKvHeads: number;
  headDim: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  /** Biases of q_proj, k_proj, v_proj (attention_bias; always on Qwen2). */
  qkvBias: boolean;
  /** Bias of o_proj (attention_bias; never on Qwen2). */
  oBias: boolean;
  /** Biases of gate_proj, up_proj, down_proj (Llama's mlp_bias). */
  mlpBias: boolean;
  /** Qwen3's per-head RMSNorm of q and k before the rotary embedding. */
  qkNorm: boolean;
  /** Per layer: its sliding window (0: full causal attention). */
  windows: number[];
}

const has = (r: Reader, key: string) => Object.prototype.hasOwnProperty.call(r.raw, key) && r.raw[key] !== undefined;

/** transformers 5 writes rope_parameters ({rope_type, rope_theta, …}) in place of rope_theta / rope_scaling. */
function ropeParameters(r: Reader): Json | null {
  const p = r.raw.rope_parameters;
  if (p === undefined || p === null) return null;
  if (typeof p !== "object" || Array.isArray(p)) throw r.fail("rope_parameters", "an object");
  return p as Json;
}

/** The keys every Llama-family config has, with this architecture's defaults. */
export function parseDecoder(r: Reader, d: DecoderDefaults): DecoderConfigJson {
  const heads = r.posInt("num_attention_heads", d.num_attention_heads);
  const hidden = r.posInt("hidden_size", d.hidden_size);
  // An explicit null means "as many as the query heads", as the config classes do with None.
  const kv = has(r, "num_key_value_heads") ? r.optPosInt("num_key_value_heads") ?? heads : d.num_key_value_heads ?? heads;
  if (heads % kv !== 0) throw new ConfigError(`${r.source}: num_key_value_heads ${kv} must divide num_attention_heads ${heads}`);
  const headDim = has(r, "head_dim") ? r.optPosInt("head_dim") : d.head_dim;
  const params = ropeParameters(r);
  const theta = has(r, "rope_theta") || !params ? r.posNum("rope_theta", 10000) : new Reader(params, `${r.source}: rope_parameters`).posNum("rope_theta", 10000);
  let scaling = r.raw.rope_scaling ?? null;
  if (scaling === null && params) scaling = params;
  if (scaling !== null && (typeof scaling !== "object" || Array.isArray(scaling))) throw r.fail("rope_scaling", "null or an object");
  const hf: DecoderConfigJson = {
    vocab_size: r.posInt("vocab_size", d.vocab_size),
    hidden_size: hidden,
    intermediate_size: r.posInt("intermediate_size", d.intermediate_size),
    num_hidden_layers: r.posInt("num_hidden_layers", d.num_hidden_layers),
    num_attention_heads: heads,
    num_key_value_heads: kv,
    head_dim: headDim,
    hidden_act: r.str("hidden_act", "silu"),
    max_position_embeddings: r.posInt("max_position_embeddings", d.max_position_embeddings),
    initializer_range: r.posNum("initializer_range", 0.02),
    rms_norm_eps: r.posNum("rms_norm_eps", 1e-6),
    rope_theta: theta,
    rope_scaling: scaling as Json | null,
    attention_dropout: r.prob("attention_dropout", 0),
  };
  // SwiGLU is the only MLP these bodies have: ACT2FN's "silu" (alias "swish").
  if (hf.hidden_act !== "silu" && hf.hidden_act !== "swish") throw r.fail("hidden_act", `"silu" (the SwiGLU MLP)`);
  const D = headDimOf(hf);
  if (D % 2 !== 0) throw new ConfigError(`${r.source}: head_dim ${D} must be even (rotary embeddings rotate pairs)`);
  ropeScaling(hf, r.source); // refuse an unsupported rope type while parsing
  return hf;
}

/** head_dim, or hidden_size / num_attention_heads when the config leaves it out. */
export const headDimOf = (hf: DecoderConfigJson): number => hf.head_dim ?? Math.floor(hf.hidden_size / hf.num_attention_heads);

/**
 * rope_scaling as modeling_rope_utils reads it: absent or type "default" → none; "llama3" with its four
 * parameters (original_max_position_embeddings from the dict, as HF's _compute_llama3_parameters). Other
 * types (linear, dynamic, yarn, longrope) are refused by name.
 */
export function ropeScaling(hf: DecoderConfigJson, source = "config.json"): RopeScaling | null {
  const s = hf.rope_scaling;
  if (!s) return null;
  const type = s.rope_type ?? s.type ?? "default";
  if (type === "default") return null;
  if (type !== "llama3") throw new ConfigError(`${source}: rope_scaling type ${JSON.stringify(type)} is not supported; tunekit supports "default" and "llama3"`);
  const num = (k: string) => {
    const v = s[k];
    if (typeof v !== "number" || !(v > 0 && Number.isFinite(v))) throw new ConfigError(`${source}: rope_scaling.${k} must be a positive number for rope type llama3, got ${JSON.stringify(v)}`);
    return v;
  };
  const out: RopeScaling = {
    ropeType: "llama3", factor: num("factor"), lowFreqFactor: num("low_freq_factor"), highFreqFactor: num("high_freq_factor"),
    originalMaxPositionEmbeddings: num("original_max_position_embeddings"),
  };
  if (!(out.highFreqFactor > out.lowFreqFactor)) throw new ConfigError(`${source}: rope_scaling.high_freq_factor ${out.highFreqFactor} must exceed low_freq_factor ${out.lowFreqFactor}`);
  return out;
}

/** The settings every family member derives the same way; the flags are the caller's. */
export function decoderSettings(hf: DecoderConfigJson, flags: Omit<DecoderSettings, "numKvHeads" | "headDim" | "ropeTheta" | "ropeScaling">): DecoderSettings {
  return { numKvHeads: hf.num_key_value_heads, headDim: headDimOf(hf), ropeTheta: hf.rope_theta, ropeScaling: ropeScaling(hf), ...flags };
}

/**
 * The normalised fields of a Llama-family config: no dropout in the body but attention_dropout, RMSNorm's
 * eps; the token-classification head's dropout as GenericForTokenClassification reads it (classifier_dropout,
 * then hidden_dropout, keys the config classes do not define, else 0.1).
 */
export function decoderFields(hf: DecoderConfigJson, r: Reader): ArchFields {
  return {
    vocabSize: hf.vocab_size, hiddenSize: hf.hidden_size, numLayers: hf.num_hidden_layers, numHeads: hf.num_attention_heads,
    intermediateSize: hf.intermediate_size, maxPositions: hf.max_position_embeddings, typeVocabSize: 0,
    layerNormEps: hf.rms_norm_eps, hiddenAct: hf.hidden_act, hiddenDropout: 0, attentionDropout: hf.attention_dropout,
    embeddingDropout: 0, classifierDropout: r.optProb("classifier_dropout") ?? r.optProb("hidden_dropout") ?? 0.1, qaDropout: 0,
    initializerRange: hf.initializer_range,
  };
}

/** Where the normalised fields live in every Llama-family config.json. */
export const DECODER_KEYS: ArchConfig<unknown>["keys"] = {
  vocabSize: "vocab_size", hiddenSize: "hidden_size", numLayers: "num_hidden_layers", numHeads: "num_attention_heads",
  intermediateSize: "intermediate_size", maxPositions: "max_position_embeddings", layerNormEps: "rms_norm_eps",
  hiddenAct: "hidden_act", attentionDropout: "attention_dropout", classifierDropout: "classifier_dropout",
};

/**
 * Qwen2 / Qwen3 sliding windows as their configs derive layer_types: sliding_window applies only with
 * use_sliding_window, to layers i >= max_window_layers; an explicit layer_types list wins.
 */
export function qwenWindows(hf: { num_hidden_layers: number; use_sliding_window: boolean; sliding_window: number | null; max_window_layers: number; layer_types: string[] | null }, source = "config.json"): number[] {
  const sw = hf.use_sliding_window ? hf.sliding_window : null;
  const types = hf.layer_types ?? Array.from({ length: hf.num_hidden_layers }, (_, i) => (sw !== null && i >= hf.max_window_layers ? "sliding_attention" : "full_attention"));
  if (types.length !== hf.num_hidden_layers) throw new ConfigError(`${source}: layer_types has ${types.length} entries for ${hf.num_hidden_layers} layers`);
  return types.map((t, i) => {
    if (t === "full_attention") return 0;
    if (t !== "sliding_attention") throw new ConfigError(`${source}: layer_types[${i}] must be "full_attention" or "sliding_attention", got ${JSON.stringify(t)}`);
    if (sw === null) throw new ConfigError(`${source}: layer_types[${i}] is "sliding_attention" but there is no sliding window (use_sliding_window false or sliding_window null)`);
    return sw;
  });
}

/** Qwen2 / Qwen3's sliding-window keys. */
export function parseQwenWindows(r: Reader, layers: number) {
  const lt = r.raw.layer_types ?? null;
  if (lt !== null && !(Array.isArray(lt) && lt.every((t) => typeof t === "string"))) throw r.fail("layer_types", "null or a list of layer type names");
  const hf = {
    use_sliding_window: r.bool("use_sliding_window", false),
    sliding_window: has(r, "sliding_window") ? r.optPosInt("sliding_window") : 4096,
    max_window_layers: r.nonNegInt("max_window_layers", 28),
    layer_types: lt as string[] | null,
  };
  qwenWindows({ ...hf, num_hidden_layers: layers }, r.source);
  return hf;
}

export const llamaConfig: ArchConfig<LlamaConfigJson> = {
  parse: (r) => ({
    model_type: "llama",
    ...parseDecoder(r, {
      vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32,
      num_key_value_heads: null, head_dim: null, max_position_embeddings: 2048,
    }),
    attention_bias: r.bool("attention_bias", false),
    mlp_bias: r.bool("mlp_bias", false),
    // Tensor-parallel slices of the pre-training run: the same math in another summation order.
    pretraining_tp: r.posInt("pretraining_tp", 1),
  }),
  fields: decoderFields,
  keys: DECODER_KEYS,
  tokenIds: { pad: null, bos: 1, eos: 2 },
  tieWordEmbeddings: false,
};

/** Llama's settings: attention_bias on all four projections, mlp_bias, full attention. */
export const llamaSettings = (hf: LlamaConfigJson): DecoderSettings =>
  decoderSettings(hf, { qkvBias: hf.attention_bias, oBias: hf.attention_bias, mlpBias: hf.mlp_bias, qkNorm: false, windows: new Array(hf.num_hidden_layers).fill(0) });
