// Examples → features (the data side of each task), collation into batches, and features → predictions.
export { collate, IGNORE_INDEX } from "./collate";
export type { Feature, EncodedFeature, PairFeature, Batch, PairBatch, CollateOptions, LabelKind } from "./collate";
export { buildLabelMap, checkLabelMap } from "./labels";
export type { LabelMap } from "./labels";
export { classificationFeatures } from "./classification";
export type { ClassificationOptions as ClassificationFeatureOptions, ClassificationFeatures } from "./classification";
export { tokenClassificationFeatures, wordPredictions } from "./token_classification";
export type { TokenClassificationOptions, TokenClassificationFeatures, TokenFeature } from "./token_classification";
export { qaFeatures, postprocessQa, squadMetrics } from "./qa";
export type { QaOptions, QaFeature, QaPrediction, QaPostprocessOptions } from "./qa";
export { sentencePairFeatures } from "./pairs";
export type { SentencePairOptions } from "./pairs";
export { DataCollatorForLanguageModeling, maskTokens, causalLmLabels, groupTexts, languageModelingFeatures } from "./lm";
export type { LmTokenizerInfo, MaskOptions, LmCollatorOptions } from "./lm";
export { batches, batchOrder, numBatches } from "./batching";
export type { BatchesOptions } from "./batching";
