// Dataset files → examples: the readers behind loadDataset("reviews.csv", { text, label, validation })
// and the CLI's --data. Formats: CSV/TSV, JSON lines, JSON, Parquet, CoNLL, SQuAD JSON, plain text.
// Malformed rows are named by file:line (skipped with a record, or an error, by onBadRow); splits are
// seeded and stratified by label.
export { detectFormat, readRecords, FILE_FORMATS } from "./files_records";
export type { FileFormat, ReadOptions } from "./files_records";
export type { BadRow } from "./files_read";
export { loadDataset } from "./files_dataset";
export type { LoadDatasetOptions, TextDataset } from "./files_dataset";
export { loadTokenDataset, loadQaDataset } from "./files_tokens";
export type { TokenDatasetOptions, TokenDataset, QaDatasetOptions, QaDataset } from "./files_tokens";
export { readTextCorpus } from "./files_corpus";
export type { TextCorpusOptions } from "./files_corpus";
