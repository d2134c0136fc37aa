// Qwen3Config (configuration_qwen3.py): Llama's keys with Qwen3's defaults (head_dim 128), attention_bias,
// per-head q_norm / k_norm, and Qwen2's sliding-window keys.
import type { ArchConfig } from "../spec";
import { DecoderConfigJson, DecoderSettings, DECODER_KEYS, decoderFields, decoderSettings, parseDecoder, parseQwenWindows, qwenWindows } from "../llama/config";

/** Qwen3Config keys. */
export interface Qwen3ConfigJson extends DecoderConfigJson {
  model_type: "qwen3";
  attention_bias: boolean;
  use_sliding_window: boolean;
  sliding_window: number | null;
  max_window_layers: number;
  layer_types: string[] | null;
}

export const qwen3Config: ArchConfig<Qwen3ConfigJson> = {
  parse: (r) => {
    const base = parseDecoder(r, {
      vocab_size: 151936, hidden_size: 4096, intermediate_size: 22016, num_hidden_layers: 32, num_attention_heads: 32,
      num_key_value_heads: 32, head_dim: 128, max_position_embeddings: 32768,
    });
    return { model_type: "qwen3", ...base, attention_bias: r.bool("attention_bias", false), ...parseQwenWindows(r, base.num_hidden_layers) };
  },
  fields: decoderFields,
  keys: DECODER_KEYS,
  tokenIds: { pad: null, bos: null, eos: null },
  tieWordEmbeddings: false,
};

/** Qwen3Attention: attention_bias on all four projections, RMSNorm of each head of q and k before rope. */
export const qwen3Settings = (hf: Qwen3ConfigJson): DecoderSettings =>
  decoderSettings(hf, { qkvBias: hf.attention_bias, oBias: hf.attention_bias, mlpBias: false, qkNorm: true, windows: qwenWindows(hf) });
