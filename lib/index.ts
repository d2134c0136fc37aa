export { TunekitError } from "./errors";
export { native } from "./native";
export type { NativeAddon, Isa, GemmArgs } from "./native";

// ---- tensors, modules, models ----
export { Tensor, tidy } from "./tensor/tensor";
export { noGrad } from "./tensor/autograd";
export * as ops from "./tensor/ops";
export { Module, Parameter } from "./nn/module";
export { Linear, Embedding, LayerNorm, Dropout } from "./nn/layers";
export { AutoModel, AutoModelForMaskedLM, AutoModelForCausalLM } from "./models/auto";
export { PreTrainedModel } from "./models/pretrained";
export type { LoadReport, FromPretrainedOptions } from "./models/pretrained";
export { BaseModel, ModelForMaskedLM, ModelForCausalLM } from "./models/lm";
export type { ModelInputs } from "./models/inputs";
// ---- end models ----

// ---- io (lib/io): checkpoints and config.json ----
export { CheckpointError, ConfigError } from "./errors";
export {
  loadStateDict, loadStateDictAsync, readSafetensors, parseSafetensors, parseSafetensorsHeader, encodeSafetensors,
  saveSafetensors, saveSafetensorsAsync, readTorchBin, parseTorchBin, readConfig, parseConfig,
  configToJson, saveConfig, writeFileAtomic, writeFileAtomicSync, SUPPORTED_MODEL_TYPES,
} from "./io";
export type {
  DType, FloatDType, IntDType, FloatTensor, IntTensor, StateTensor, StateDict, LoadedStateDict,
  LoadStateDictOptions, CheckpointFormat, SafetensorsFile, SafetensorsHeader, SaveSafetensorsOptions,
  TorchBinOptions, ModelConfig, ModelType, ProblemType, HfConfigJson, BertConfigJson,
  DistilBertConfigJson, GPT2ConfigJson,
} from "./io";
// ---- end io ----
// ---- data: tokenizers (lib/data/tokenizer*.ts) ----
export { AutoTokenizer, Tokenizer } from "./data/tokenizer";
export type {
  Encoding, BatchEncoding, EncodeOptions, BatchEncodeOptions, DecodeOptions, PadOptions,
  TruncationStrategy, PaddingStrategy, TokenizerFamily, TokenizerSource, SpecialTokenKey,
} from "./data/tokenizer";
// ---- end tokenizers ----
// ---- peft (lib/peft): LoRA and PEFT adapter files ----
export {
  applyLora, mergeAdapter, unmergeAdapter, mergeAndUnload, unloadAdapter, isLoraModel, loraSummary, LoraLinear,
  saveAdapter, loadAdapter, parseAdapterConfig, DEFAULT_TARGET_MODULES,
} from "./peft";
export type {
  LoraOptions, LoraConfig, LoraBias, LoraSummary, SaveAdapterOptions, LoadAdapterOptions, ParsedAdapterConfig,
  TargetModule, LinearLeafNames, TaskType,
} from "./peft";
// ---- end peft ----
