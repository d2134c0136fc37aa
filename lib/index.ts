export { TunekitError } from "./errors";
export { native } from "./native";
export type { NativeAddon, Isa, GemmArgs, MatmulPrecision } from "./native";

// ---- tensors, modules, models ----
export { Tensor, tidy } from "./tensor/tensor";
export { noGrad } from "./tensor/autograd";
export * as ops from "./tensor/ops";
export { Module, Parameter } from "./nn/module";
export { Linear, Embedding, LayerNorm, RMSNorm, Dropout } from "./nn/layers";
export {
  AutoModel, AutoModelForMaskedLM, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoModelForTokenClassification,
  AutoModelForQuestionAnswering, AutoSentenceEncoder,
} from "./models/auto";
export { ModelForSequenceClassification, ModelForTokenClassification, ModelForQuestionAnswering, SentenceEncoder } from "./models/heads";
export type { TaskBatch, TaskOutput, ForwardOptions, Pooling } from "./models/heads";
export { PreTrainedModel } from "./models/pretrained";
export type { LoadReport, FromPretrainedOptions } from "./models/pretrained";
export { BaseModel, ModelForMaskedLM, ModelForCausalLM } from "./models/lm";
export type { ModelInputs } from "./models/inputs";
// ---- training ----
export { Trainer, permutation } from "./train/trainer";
export type { TrainerOptions, TrainResult, Evaluator, TrainableModel, Metrics } from "./train/trainer";
export { TrainerControl, CallbackHandler, DefaultFlowCallback, EarlyStoppingCallback, EventsCallback, TRAINER_EVENTS } from "./train/callbacks";
export type { TrainerCallback, TrainerEvent, TrainerEvents, CallbackFunction, CallbackKwargs, CallbackOrClass, TrainerArgs, LogRecord } from "./train/callbacks";
export { ProgressCallback, JsonLinesCallback } from "./train/progress";
export type { TrainerState, SavedTrainerState, TrainingArgsRecord } from "./train/trainer_state";
export { AdamW, paramGroups, gradNorm, layerOf } from "./train/optimizer";
export type { ParamGroup } from "./train/optimizer";
export { freeze, unfreezeTop, trainableCount, parameterCount } from "./train/strategies";
export type { FreezeOptions } from "./train/strategies";
// ---- reliability: loss scaling, checkpoint directories, finite checks ----
export { LossScaler } from "./train/loss_scaler";
export type { LossScalerOptions, LossScalerState } from "./train/loss_scaler";
export { latestCheckpoint, listCheckpoints, checkpointProblem } from "./train/checkpoints";
export { firstNonFinite, assertFinite } from "./tensor/finite";
// ---- end reliability ----
export { withLabels } from "./models/auto";
export { classify, extractEntities, answerQuestions, embed, similarity, cosine } from "./pipeline";
export type { ClassificationResult, Entity as PipelineEntity, Answer, PipelineOptions } from "./pipeline";
// ---- end models ----

// ---- io (lib/io): checkpoints and config.json ----
export { CheckpointError, ConfigError, NonFiniteError } from "./errors";
export {
  loadStateDict, loadStateDictAsync, readSafetensors, parseSafetensors, parseSafetensorsHeader, encodeSafetensors,
  saveSafetensors, saveSafetensorsAsync, readTorchBin, parseTorchBin, writeFileAtomic, writeFileAtomicSync,
} from "./io";
export type {
  DType, FloatDType, IntDType, FloatTensor, IntTensor, StateTensor, StateDict, LoadedStateDict,
  LoadStateDictOptions, CheckpointFormat, SafetensorsFile, SafetensorsHeader, SaveSafetensorsOptions,
  TorchBinOptions, ProblemType, ConfigWriteOptions, WeightsDtype,
} from "./io";
// config.json's meaning per model_type is the architectures' (lib/models/<arch>/, lib/models/config_json.ts).
export { readConfig, parseConfig, configToJson, saveConfig, SUPPORTED_MODEL_TYPES } from "./models/config_json";
export type { ModelConfig, ModelType, HfConfigJson, BertConfigJson, DistilBertConfigJson, GPT2ConfigJson,
  LlamaConfigJson, MistralConfigJson, Qwen2ConfigJson, Qwen3ConfigJson } from "./models/config";
// ---- end io ----
// ---- data: tokenizers (lib/data/tokenizer) ----
export { AutoTokenizer, Tokenizer } from "./data/tokenizer";
export type {
  Encoding, BatchEncoding, EncodeOptions, BatchEncodeOptions, DecodeOptions, PadOptions,
  TruncationStrategy, PaddingStrategy, TokenizerFamily, TokenizerSource, SpecialTokenKey, TokenizerLoadOptions,
} from "./data/tokenizer";
// ---- end tokenizers ----
// ---- metrics and lr schedules (lib/metrics, lib/train/schedules.ts) ----
export {
  ClassificationMetric, MultiLabelMetric, EntityMetric, SquadMetric, RegressionMetric, MostConfidentErrors,
  mostConfidentErrors, argmax, getEntities, tagsFromIds, normalizeAnswer, squadScores, pearson, spearman, averageRanks,
} from "./metrics";
export type {
  Metric, MetricValues, ClassificationOptions, MultiLabelOptions, Entity, ConfidentError,
} from "./metrics";
export {
  constantSchedule, constantWithWarmupSchedule, linearSchedule, cosineSchedule, slantedTriangularSchedule,
  getScheduler, warmupStepsFromRatio, SCHEDULE_NAMES,
} from "./train/schedules";
export type { LrSchedule, ScheduleName, ScheduleOptions } from "./train/schedules";
// ---- end train metrics/schedules ----
// ---- data: features and collation (lib/data/features) ----
export {
  collate, IGNORE_INDEX, buildLabelMap, checkLabelMap, classificationFeatures, tokenClassificationFeatures,
  wordPredictions, qaFeatures, postprocessQa, squadMetrics, sentencePairFeatures, DataCollatorForLanguageModeling,
  maskTokens, causalLmLabels, groupTexts, languageModelingFeatures, batches, batchOrder, numBatches,
} from "./data/features";
export type {
  Feature, EncodedFeature, PairFeature, Batch, PairBatch, CollateOptions, LabelKind, LabelMap,
  ClassificationFeatureOptions, ClassificationFeatures, TokenClassificationOptions, TokenClassificationFeatures,
  TokenFeature, QaOptions, QaFeature, QaPrediction, QaPostprocessOptions, SentencePairOptions, LmTokenizerInfo,
  MaskOptions, LmCollatorOptions, BatchesOptions,
} from "./data/features";
export { Rng, mixSeed } from "./data/rng";
// ---- end features ----
// ---- data: dataset files → examples (lib/data/files) ----
export { DatasetError } from "./errors";
export {
  detectFormat, readRecords, loadDataset, loadTokenDataset, loadQaDataset, readTextCorpus, FILE_FORMATS,
  readSst2, readRottenTomatoes, readConll, readSquad, readStsb, stratifiedSplit,
} from "./data/files";
export type {
  FileFormat, ReadOptions, BadRow, LoadDatasetOptions, TextDataset, TokenDatasetOptions, TokenDataset, QaDatasetOptions,
  QaDataset, TextCorpusOptions, SplitOptions, LabelValue, TextExample, NerSentence, QaAnswer, QaExample,
  SentencePairExample, ClassificationExample, TokenClassificationExample,
} from "./data/files";
// ---- end dataset files ----
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
// ---- pretraining ----
export { pretrain } from "./train/pretrain";
export type { PretrainOptions, PretrainResult } from "./train/pretrain";
export { trainWordPiece } from "./data/tokenizer";
export type { WordPieceTrainOptions } from "./data/tokenizer";
// ---- end pretraining ----
// ---- generation (lib/generation): generate / streamGenerate through the key/value cache, chat templates ----
export { generate, streamGenerate, readGenerationConfig, GENERATION_DEFAULTS, applyChatTemplate } from "./generation";
export type { Prompt, FinishReason, GenerationChunk, GenerationOutput, GenerationOptions, GenerationConfig, ChatMessage, ChatTemplateOptions } from "./generation";
// ---- end generation ----
// ---- instruction fine-tuning (lib/data/sft.ts, lib/train/sft.ts): TRL's SFT formats, masks, packing ----
export { sft, sftExactMatch, allLinearTargets, chatRenderer, sftMaxLength, SFT_MAX_LENGTH } from "./train/sft";
export type { SftOptions, SftResult, ExactMatchResult } from "./train/sft";
export { readSftJsonl, parseSftExample, sftFeatures, packSftFeatures, tokenizeSftExample } from "./data/sft";
export type { SftExample, SftMessage, SftFeature, SftFeatures, SftFeatureOptions, ChatRenderer } from "./data/sft";
// ---- end instruction fine-tuning ----
// ---- report (lib/report): report.html + SVG charts from training logs ----
export { writeReport, readTrainingLog } from "./report";
export type { ReportInput, ReportFiles, ConfusionInput, CurvePoint, ExampleRow, TrainingLog, StepRecord, EvalRecord } from "./report";
// ---- end report ----
// ---- newcomer's path: embedded model, methods, evaluators, CLI ----
export { EMBEDDED_MODEL } from "./models/embedded";
export { chooseMethod, applyMethod, defaultLearningRate, FROZEN_BELOW, LORA_BELOW } from "./train/method";
export type { FineTuneMethod, MethodChoice, MethodOptions } from "./train/method";
export { classificationEvaluator, regressionEvaluator } from "./train/evaluators";
// ---- end newcomer's path ----
// ---- distributed (lib/distributed): data-parallel training over Gloo ----
export { ProcessGroup, initProcessGroup, getProcessGroup, destroyProcessGroup, isWorldProcessZero, distributedInfo, distributedFromEnv, launch } from "./distributed";
export type { DistributedOptions, LaunchedAs, CommBackendName, LaunchOptions, LaunchResult } from "./distributed";
// ---- end distributed ----
