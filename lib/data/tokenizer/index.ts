// Tokenizers: AutoTokenizer / Tokenizer over the Rust `tokenizers` engine (tokenizer.ts), the checkpoint's
// tokenizer files (files.ts), truncation and overflow windows (truncation.ts), and trainWordPiece (trainer.ts).
export { AutoTokenizer, Tokenizer } from "./tokenizer";
export type { Encoding, BatchEncoding, EncodeOptions, BatchEncodeOptions, DecodeOptions, PadOptions, PaddingStrategy } from "./tokenizer";
export type { TokenizerFamily, TokenizerSource, SpecialTokenKey, TokenizerLoadOptions } from "./files";
export type { TruncationStrategy } from "./truncation";
export { trainWordPiece } from "./trainer";
export type { WordPieceTrainOptions } from "./trainer";
