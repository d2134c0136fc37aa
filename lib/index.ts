export { TunekitError } from "./errors";
export { native } from "./native";
export type { NativeAddon, Isa, GemmArgs } from "./native";

// ---- data: tokenizers (lib/data/tokenizer*.ts) ----
export { AutoTokenizer, Tokenizer } from "./data/tokenizer";
export type {
  Encoding, BatchEncoding, EncodeOptions, BatchEncodeOptions, DecodeOptions, PadOptions,
  TruncationStrategy, PaddingStrategy, TokenizerFamily, TokenizerSource, SpecialTokenKey,
} from "./data/tokenizer";
// ---- end tokenizers ----
