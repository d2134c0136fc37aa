// LoRA fine-tuning, compatible with Hugging Face PEFT's adapter files.
export { applyLora, mergeAdapter, unmergeAdapter, mergeAndUnload, unloadAdapter, isLoraModel, loraSummary } from "./lora";
export type { LoraOptions, LoraConfig, LoraBias, LoraSummary } from "./lora";
export { LoraLinear, loraLinear } from "./lora_linear";
export {
  saveAdapter, loadAdapter, parseAdapterConfig, adapterConfigJson,
  ADAPTER_CONFIG_NAME, ADAPTER_SAFETENSORS_NAME, ADAPTER_BIN_NAME, PEFT_KEY_PREFIX,
} from "./adapter_files";
export type { SaveAdapterOptions, LoadAdapterOptions, ParsedAdapterConfig } from "./adapter_files";
export { DEFAULT_TARGET_MODULES, TASK_TYPES } from "./targets";
export type { TargetModule, LinearLeafNames, TaskType } from "./targets";
