// Qwen2Config (configuration_qwen2.py): Llama's keys with Qwen2's defaults, biases on q/k/v (not o_proj),
// and sliding windows only with use_sliding_window, on layers from max_window_layers on (or layer_types).
import type { ArchConfig } from "../spec";
import { DecoderConfigJson, DecoderSettings, DECODER_KEYS, decoderFields, decoderSettings, parseDecoder, parseQwenWindows, qwenWindows } from "../llama/config";

/** Qwen2Config keys. */
export interface Qwen2ConfigJson extends DecoderConfigJson {
  model_type: "qwen2";
  use_sliding_window: boolean;
  sliding_window: number | null;
  max_window_layers: number;
  layer_types: string[] | null;
}

export const qwen2Config: ArchConfig<Qwen2ConfigJson> = {
  parse: (r) => {
    const base = parseDecoder(r, {
      vocab_size: 151936, hidden_size: 4096, intermediate_size: 22016, num_hidden_layers: 32, num_attention_heads: 32,
      num_key_value_heads: 32, head_dim: null, max_position_embeddings: 32768,
    });
    return { model_type: "qwen2", ...base, ...parseQwenWindows(r, base.num_hidden_layers) };
  },
  fields: decoderFields,
  keys: DECODER_KEYS,
  tokenIds: { pad: null, bos: null, eos: null },
  tieWordEmbeddings: false,
};

/** Qwen2Attention: q_proj, k_proj, v_proj with bias, o_proj without; the MLP has none. */
export const qwen2Settings = (hf: Qwen2ConfigJson): DecoderSettings =>
  decoderSettings(hf, { qkvBias: true, oBias: false, mlpBias: false, qkNorm: false, windows: qwenWindows(hf) });
