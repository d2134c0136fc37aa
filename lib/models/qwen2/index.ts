// Qwen2 (modeling_qwen2.py, configuration_qwen2.py): Llama's body with q/k/v biases and optional sliding windows.
import type { ArchSpec } from "../spec";
import { Qwen2ConfigJson, qwen2Config, qwen2Settings } from "./config";
import { LlamaModel } from "../llama/model";
import { DECODER_LORA, DECODER_SPEC, DecoderLinear } from "../llama/heads";

export type { Qwen2ConfigJson };

export const qwen2: ArchSpec<Qwen2ConfigJson, LlamaModel, DecoderLinear> = {
  modelType: "qwen2",
  hfModule: "transformers.models.qwen2.modeling_qwen2",
  // No Qwen2ForQuestionAnswering in tunekit yet.
  classes: {
    base: "Qwen2Model", causalLM: "Qwen2ForCausalLM", sequenceClassification: "Qwen2ForSequenceClassification",
    tokenClassification: "Qwen2ForTokenClassification",
  },
  config: qwen2Config,
  body: (config, ctx) => new LlamaModel(config, qwen2Settings(config.hf as Qwen2ConfigJson), "Qwen2Model", ctx),
  ...DECODER_SPEC,
  lora: DECODER_LORA,
  tokenizerClass: "Qwen2Tokenizer",
};
