// Dataset files → examples: the readers behind loadDataset("reviews.csv", { text, label, validation })
// and the CLI's --data. Formats: CSV/TSV, JSON lines, JSON, Parquet, CoNLL, SQuAD JSON, plain text.
// Malformed rows are named by file:line (skipped with a record, or an error, by onBadRow); splits are
// seeded and stratified by label. readers.ts reads the evidence runs' datasets in their own layouts.
export { detectFormat, readRecords, FILE_FORMATS } from "./records";
export type { FileFormat, ReadOptions } from "./records";
export type { BadRow } from "./read";
export { loadDataset } from "./dataset";
export type { LoadDatasetOptions, TextDataset } from "./dataset";
export { loadTokenDataset, loadQaDataset } from "./tokens";
export type { TokenDatasetOptions, TokenDataset, QaDatasetOptions, QaDataset } from "./tokens";
export { readTextCorpus } from "./corpus";
export type { TextCorpusOptions } from "./corpus";
export { readSst2, readRottenTomatoes, readConll, readSquad, readStsb } from "./readers";
export { stratifiedSplit } from "./split";
export type { SplitOptions } from "./split";
export type {
  LabelValue, TextExample, NerSentence, QaAnswer, QaExample, SentencePairExample, ClassificationExample, TokenClassificationExample,
} from "./examples";
