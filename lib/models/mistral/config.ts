// MistralConfig (configuration_mistral.py): Llama's keys with Mistral's defaults, no biases, and
// sliding_window on every layer (null: full attention, as Mistral-7B-v0.2 and later).
import type { ArchConfig } from "../spec";
import { DecoderConfigJson, DecoderSettings, DECODER_KEYS, decoderFields, decoderSettings, parseDecoder } from "../llama/config";

/** MistralConfig keys. */
export interface MistralConfigJson extends DecoderConfigJson {
  model_type: "mistral";
  sliding_window: number | null;
}

export const mistralConfig: ArchConfig<MistralConfigJson> = {
  parse: (r) => ({
    model_type: "mistral",
    ...parseDecoder(r, {
      vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32,
      num_key_value_heads: 8, head_dim: null, max_position_embeddings: 4096 * 32,
    }),
    sliding_window: r.raw.sliding_window === undefined ? 4096 : r.optPosInt("sliding_window"),
  }),
  fields: decoderFields,
  keys: DECODER_KEYS,
  tokenIds: { pad: null, bos: 1, eos: 2 },
  tieWordEmbeddings: false,
};

/** Mistral: no biases; every layer attends within sliding_window tokens (masking_utils: 0 <= i − j < window). */
export const mistralSettings = (hf: MistralConfigJson): DecoderSettings =>
  decoderSettings(hf, { qkvBias: false, oBias: false, mlpBias: false, qkNorm: false, windows: new Array(hf.num_hidden_layers).fill(hf.sliding_window ?? 0) });
