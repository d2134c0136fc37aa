// Mistral (modeling_mistral.py, configuration_mistral.py): Llama's body with a sliding window on every layer.
import type { ArchSpec } from "../spec";
import { MistralConfigJson, mistralConfig, mistralSettings } from "./config";
import { LlamaModel } from "../llama/model";
import { DECODER_LORA, DECODER_SPEC, DecoderLinear } from "../llama/heads";

export type { MistralConfigJson };

export const mistral: ArchSpec<MistralConfigJson, LlamaModel, DecoderLinear> = {
  modelType: "mistral",
  hfModule: "transformers.models.mistral.modeling_mistral",
  // No MistralForQuestionAnswering in tunekit yet.
  classes: {
    base: "MistralModel", causalLM: "MistralForCausalLM", sequenceClassification: "MistralForSequenceClassification",
    tokenClassification: "MistralForTokenClassification",
  },
  config: mistralConfig,
  body: (config, ctx) => new LlamaModel(config, mistralSettings(config.hf as MistralConfigJson), "MistralModel", ctx),
  ...DECODER_SPEC,
  lora: DECODER_LORA,
  // TOKENIZER_MAPPING_NAMES: mistral → LlamaTokenizer(Fast).
  tokenizerClass: "LlamaTokenizer",
};
