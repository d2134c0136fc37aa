// The Llama family's config.json as HF's config classes read it: their defaults, the settings the body
// derives (GQA, head_dim, biases, q/k norms, sliding windows, rope), the keys saved back, and clear errors
// for what tunekit (or HF) refuses.
import { parseConfig, configToJson } from "../lib/models/config_json";
import { AutoModelForCausalLM } from "../lib/models/auto";
import { ConfigError } from "../lib/errors";
import { LlamaModel } from "../lib/models/llama/model";
import type { DecoderSettings } from "../lib/models/llama/config";

// Qwen2/3 default to 32 key/value heads: small configs name theirs.
const settings = (json: Record<string, unknown>): DecoderSettings => {
  const m = AutoModelForCausalLM.fromConfig(parseConfig({ vocab_size: 50, hidden_size: 32, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 4, intermediate_size: 16, ...json }));
  return (m.body as LlamaModel).settings;
};

test("HF's defaults: LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config", () => {
  const pick = (t: string) => {
    const c = parseConfig({ model_type: t });
    return [c.vocabSize, c.hiddenSize, c.intermediateSize, c.numLayers, c.numHeads, c.maxPositions, c.layerNormEps, c.tieWordEmbeddings, c.bosTokenId, c.eosTokenId, c.padTokenId];
  };
  expect(pick("llama")).toEqual([32000, 4096, 11008, 32, 32, 2048, 1e-6, false, 1, 2, null]);
  expect(pick("mistral")).toEqual([32000, 4096, 14336, 32, 32, 131072, 1e-6, false, 1, 2, null]);
  expect(pick("qwen2")).toEqual([151936, 4096, 22016, 32, 32, 32768, 1e-6, false, null, null, null]);
  expect(pick("qwen3")).toEqual([151936, 4096, 22016, 32, 32, 32768, 1e-6, false, null, null, null]);
  const hf = (t: string) => parseConfig({ model_type: t }).hf as unknown as Record<string, unknown>;
  expect([hf("llama").num_key_value_heads, hf("mistral").num_key_value_heads, hf("qwen2").num_key_value_heads, hf("qwen3").head_dim]).toEqual([32, 8, 32, 128]);
  expect([hf("mistral").sliding_window, hf("qwen2").sliding_window, hf("qwen2").use_sliding_window, hf("qwen2").max_window_layers]).toEqual([4096, 4096, false, 28]);
});

test("the settings each modeling file derives: biases, q/k norms, windows per layer, head_dim, rope", () => {
  const pick = (s: DecoderSettings) => [s.numKvHeads, s.headDim, s.qkvBias, s.oBias, s.mlpBias, s.qkNorm, s.windows];
  expect(pick(settings({ model_type: "llama" }))).toEqual([4, 8, false, false, false, false, [0, 0, 0]]);
  expect(pick(settings({ model_type: "llama", num_key_value_heads: 2, head_dim: 16, attention_bias: true, mlp_bias: true }))).toEqual([2, 16, true, true, true, false, [0, 0, 0]]);
  expect(pick(settings({ model_type: "mistral", num_key_value_heads: 1, sliding_window: 5 }))).toEqual([1, 8, false, false, false, false, [5, 5, 5]]);
  expect(pick(settings({ model_type: "mistral", num_key_value_heads: 4, sliding_window: null }))).toEqual([4, 8, false, false, false, false, [0, 0, 0]]);
  expect(pick(settings({ model_type: "qwen2", num_key_value_heads: 2 }))).toEqual([2, 8, true, false, false, false, [0, 0, 0]]);
  // sliding_window applies only with use_sliding_window, and only from layer max_window_layers on.
  expect(settings({ model_type: "qwen2", sliding_window: 6, max_window_layers: 1 }).windows).toEqual([0, 0, 0]);
  expect(settings({ model_type: "qwen2", use_sliding_window: true, sliding_window: 6, max_window_layers: 1 }).windows).toEqual([0, 6, 6]);
  expect(settings({ model_type: "qwen3", use_sliding_window: true, sliding_window: 6, layer_types: ["sliding_attention", "full_attention", "sliding_attention"] }).windows).toEqual([6, 0, 6]);
  expect(pick(settings({ model_type: "qwen3", num_key_value_heads: 2, attention_bias: true }))).toEqual([2, 128, true, true, false, true, [0, 0, 0]]);
  // llama3 rope scaling, also as transformers 5's rope_parameters.
  const llama3 = { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
  const want = { ropeType: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };
  expect(settings({ model_type: "llama", rope_theta: 500000, rope_scaling: llama3 })).toMatchObject({ ropeTheta: 500000, ropeScaling: want });
  expect(settings({ model_type: "llama", rope_parameters: { ...llama3, rope_theta: 500000 } })).toMatchObject({ ropeTheta: 500000, ropeScaling: want });
  expect(settings({ model_type: "llama", rope_scaling: { type: "default" } }).ropeScaling).toBeNull();
});

test("bad configs are ConfigErrors naming the key and what is expected", () => {
  const base = { model_type: "llama", hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 4 };
  const bad: [Record<string, unknown>, string][] = [
    [{ ...base, num_key_value_heads: 3 }, "num_key_value_heads 3 must divide num_attention_heads 4"],
    [{ model_type: "qwen2", hidden_size: 32, num_attention_heads: 4 }, "num_key_value_heads 32 must divide num_attention_heads 4"],
    [{ ...base, hidden_act: "gelu" }, "hidden_act"],
    [{ ...base, head_dim: 7 }, "head_dim 7 must be even"],
    [{ ...base, rope_scaling: { rope_type: "yarn", factor: 4 } }, `rope_scaling type "yarn" is not supported; tunekit supports "default" and "llama3"`],
    [{ ...base, rope_scaling: { rope_type: "llama3", factor: 8 } }, "rope_scaling.low_freq_factor must be a positive number for rope type llama3"],
    [{ ...base, rope_scaling: [1] }, "rope_scaling"],
    [{ ...base, model_type: "qwen2", layer_types: ["full_attention"] }, "layer_types has 1 entries for 32 layers"],
    [{ ...base, model_type: "qwen2", num_hidden_layers: 1, layer_types: ["sliding_attention"] }, `layer_types[0] is "sliding_attention" but there is no sliding window`],
    [{ ...base, model_type: "qwen3", num_hidden_layers: 1, use_sliding_window: true, layer_types: ["local"] }, `layer_types[0] must be "full_attention" or "sliding_attention", got "local"`],
    [{ ...base, model_type: "mistral", sliding_window: 0 }, "sliding_window"],
  ];
  for (const [json, msg] of bad) {
    let err: unknown = null;
    try {
      parseConfig(json);
    } catch (e) {
      err = e;
    }
    expect([json, err instanceof ConfigError, String(err)]).toEqual([json, true, expect.stringContaining(msg)]);
  }
});

test("eos_token_id may be a list (Llama 3.x Instruct): eosTokenId is its first id, eosTokenIds all of them, saved back as it was", () => {
  const c = parseConfig({ model_type: "llama", vocab_size: 200000, bos_token_id: 128000, eos_token_id: [128001, 128008, 128009] });
  expect([c.eosTokenId, c.eosTokenIds]).toEqual([128001, [128001, 128008, 128009]]);
  expect(configToJson(c).eos_token_id).toEqual([128001, 128008, 128009]);
  expect(configToJson({ ...c, eosTokenId: 5 }).eos_token_id).toBe(5);
  expect(parseConfig({ model_type: "llama", eos_token_id: 7 }).eosTokenIds).toEqual([7]);
  expect(() => parseConfig({ model_type: "llama", eos_token_id: [] })).toThrow("eos_token_id must be a token id, null, or a non-empty list of token ids, got []");
  expect(() => parseConfig({ model_type: "llama", eos_token_id: [1, -2] })).toThrow(ConfigError);
});

test("configToJson keeps the decoder keys and writes a changed field under HF's key", () => {
  const c = parseConfig({ model_type: "qwen2", hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, use_sliding_window: true, sliding_window: 6, max_window_layers: 1, tie_word_embeddings: true, rope_theta: 1e6 });
  const j = configToJson({ ...c, attentionDropout: 0.1, tieWordEmbeddings: false });
  expect(j).toMatchObject({ model_type: "qwen2", num_key_value_heads: 2, use_sliding_window: true, sliding_window: 6, max_window_layers: 1, rope_theta: 1e6, attention_dropout: 0.1, tie_word_embeddings: false });
});
