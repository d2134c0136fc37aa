// ES module entry: re-exports the CommonJS build so `import { ... } from "tunekit"` works.
// Every named export of dist/index.js is listed here (test/module.test.ts checks none is missing).
import cjs from "../dist/index.js";
export const {
  TunekitError, CheckpointError, ConfigError, native,
  Tensor, tidy, noGrad, ops, Module, Parameter, Linear, Embedding, LayerNorm, RMSNorm, Dropout,
  AutoModel, AutoModelForMaskedLM, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoModelForTokenClassification,
  AutoModelForQuestionAnswering, AutoSentenceEncoder, ModelForSequenceClassification, ModelForTokenClassification,
  ModelForQuestionAnswering, SentenceEncoder, PreTrainedModel, BaseModel, ModelForMaskedLM, ModelForCausalLM,
  AutoTokenizer, Tokenizer, classify, extractEntities, answerQuestions, embed, similarity, cosine,
  applyLora, mergeAdapter, unmergeAdapter, mergeAndUnload, unloadAdapter, isLoraModel, loraSummary, LoraLinear, saveAdapter,
  loadAdapter, parseAdapterConfig, DEFAULT_TARGET_MODULES,
  collate, IGNORE_INDEX, DatasetError, readSst2, readRottenTomatoes, readConll, readSquad, readStsb, buildLabelMap, checkLabelMap,
  classificationFeatures, tokenClassificationFeatures, wordPredictions, qaFeatures, postprocessQa, squadMetrics,
  sentencePairFeatures, DataCollatorForLanguageModeling, maskTokens, causalLmLabels, groupTexts, languageModelingFeatures,
  batches, batchOrder, numBatches, stratifiedSplit, Rng, mixSeed,
  detectFormat, readRecords, loadDataset, loadTokenDataset, loadQaDataset, readTextCorpus, FILE_FORMATS,
  LossScaler, latestCheckpoint, listCheckpoints, checkpointProblem, firstNonFinite, assertFinite, NonFiniteError,
  Trainer, permutation, TrainerControl, CallbackHandler, DefaultFlowCallback, EarlyStoppingCallback, EventsCallback, TRAINER_EVENTS,
  ProgressCallback, JsonLinesCallback, AdamW, paramGroups, gradNorm, layerOf, freeze, unfreezeTop, trainableCount, parameterCount, withLabels,
  ClassificationMetric, MultiLabelMetric, EntityMetric, SquadMetric, RegressionMetric, MostConfidentErrors,
  mostConfidentErrors, argmax, getEntities, tagsFromIds, normalizeAnswer, squadScores, pearson, spearman, averageRanks,
  constantSchedule, constantWithWarmupSchedule, linearSchedule, cosineSchedule, slantedTriangularSchedule,
  getScheduler, warmupStepsFromRatio, SCHEDULE_NAMES,
  loadStateDict, loadStateDictAsync, readSafetensors, parseSafetensors, parseSafetensorsHeader, encodeSafetensors,
  saveSafetensors, saveSafetensorsAsync, readTorchBin, parseTorchBin, readConfig, parseConfig,
  configToJson, saveConfig, writeFileAtomic, writeFileAtomicSync, SUPPORTED_MODEL_TYPES,
  pretrain, trainWordPiece,
  generate, streamGenerate, readGenerationConfig, GENERATION_DEFAULTS, applyChatTemplate,
  EMBEDDED_MODEL, chooseMethod, applyMethod, defaultLearningRate, FROZEN_BELOW, LORA_BELOW, classificationEvaluator, regressionEvaluator,
  writeReport, readTrainingLog,
  ProcessGroup, initProcessGroup, getProcessGroup, destroyProcessGroup, isWorldProcessZero, distributedInfo, distributedFromEnv, launch,
} = cjs;
export default cjs;
