// Qwen3 (modeling_qwen3.py, configuration_qwen3.py): Llama's body with per-head q/k RMSNorm and Qwen2's windows.
import type { ArchSpec } from "../spec";
import { Qwen3ConfigJson, qwen3Config, qwen3Settings } from "./config";
import { LlamaModel } from "../llama/model";
import { DECODER_LORA, DECODER_SPEC, DecoderLinear } from "../llama/heads";

export type { Qwen3ConfigJson };

export const qwen3: ArchSpec<Qwen3ConfigJson, LlamaModel, DecoderLinear> = {
  modelType: "qwen3",
  hfModule: "transformers.models.qwen3.modeling_qwen3",
  // No Qwen3ForQuestionAnswering in tunekit yet.
  classes: {
    base: "Qwen3Model", causalLM: "Qwen3ForCausalLM", sequenceClassification: "Qwen3ForSequenceClassification",
    tokenClassification: "Qwen3ForTokenClassification",
  },
  config: qwen3Config,
  body: (config, ctx) => new LlamaModel(config, qwen3Settings(config.hf as Qwen3ConfigJson), "Qwen3Model", ctx),
  ...DECODER_SPEC,
  lora: DECODER_LORA,
  // TOKENIZER_MAPPING_NAMES: qwen3 → Qwen2Tokenizer(Fast).
  tokenizerClass: "Qwen2Tokenizer",
};
