// The data side of each task: dataset readers, raw examples → features, and features → predictions.
export { DatasetError, readSst2, readRottenTomatoes, readConll, readSquad, readStsb } from "./readers";
export type { TextExample, NerSentence, QaAnswer, QaExample, SentencePairExample } from "./readers";
export { buildLabelMap, checkLabelMap } from "./labels";
export type { LabelMap, LabelValue } from "./labels";
export { classificationFeatures } from "./classification";
export type { ClassificationExample, ClassificationOptions as ClassificationFeatureOptions, ClassificationFeatures } from "./classification";
export { tokenClassificationFeatures, wordPredictions } from "./token_classification";
export type { TokenClassificationExample, TokenClassificationOptions, TokenClassificationFeatures, TokenFeature } from "./token_classification";
export { qaFeatures, postprocessQa, squadMetrics } from "./qa";
export type { QaOptions, QaFeature, QaPrediction, QaPostprocessOptions } from "./qa";
export { sentencePairFeatures } from "./pairs";
export type { SentencePairOptions } from "./pairs";
export { DataCollatorForLanguageModeling, maskTokens, causalLmLabels, groupTexts, languageModelingFeatures } from "./lm";
export type { LmTokenizerInfo, MaskOptions, LmCollatorOptions } from "./lm";
export { batches, batchOrder, numBatches, stratifiedSplit } from "./batching";
export type { BatchesOptions, SplitOptions } from "./batching";
export { Rng, mixSeed } from "./rng";
