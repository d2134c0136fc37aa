// Llama (modeling_llama.py, configuration_llama.py): Llama 2 and 3, and the body Mistral, Qwen2 and Qwen3 reuse.
import type { ArchSpec } from "../spec";
import { LlamaConfigJson, llamaConfig, llamaSettings } from "./config";
import { LlamaModel } from "./model";
import { DECODER_LORA, DECODER_SPEC, DecoderLinear } from "./heads";

export type { LlamaConfigJson };

export const llama: ArchSpec<LlamaConfigJson, LlamaModel, DecoderLinear> = {
  modelType: "llama",
  hfModule: "transformers.models.llama.modeling_llama",
  // No LlamaForQuestionAnswering in tunekit yet (its body sits under transformer., not model.).
  classes: {
    base: "LlamaModel", causalLM: "LlamaForCausalLM", sequenceClassification: "LlamaForSequenceClassification",
    tokenClassification: "LlamaForTokenClassification",
  },
  config: llamaConfig,
  body: (config, ctx) => new LlamaModel(config, llamaSettings(config.hf as LlamaConfigJson), "LlamaModel", ctx),
  ...DECODER_SPEC,
  lora: DECODER_LORA,
  tokenizerClass: "LlamaTokenizer",
};
