// config.json's model_type → its architecture (lib/models/<arch>/). A new architecture is its folder
// and one line here (lib/models/README.md).
import { ConfigError } from "../errors";
import type { ModelConfig } from "./config";
import type { ArchConfig, ArchSpec } from "./spec";
import { bert } from "./bert/index";
import { distilbert } from "./distilbert/index";
import { roberta } from "./roberta/index";
import { gpt2 } from "./gpt2/index";
import { llama } from "./llama/index";
import { mistral } from "./mistral/index";
import { qwen2 } from "./qwen2/index";
import { qwen3 } from "./qwen3/index";

/** In the order error messages list them. */
export const ARCHITECTURES = { bert, distilbert, roberta, gpt2, llama, mistral, qwen2, qwen3 } as const;

export type ModelType = keyof typeof ARCHITECTURES;
export const SUPPORTED_MODEL_TYPES = Object.keys(ARCHITECTURES) as readonly ModelType[];

type HfOf<S> = S extends { config: ArchConfig<infer Hf> } ? Hf : never;
type LinearOf<S> = S extends { lora: { linear: readonly (infer L)[] } } ? L : never;
/** Each architecture's config.json keys. */
export type HfConfigJson = { [T in ModelType]: HfOf<(typeof ARCHITECTURES)[T]> }[ModelType];
/** Leaf names of the Linear layers each architecture has (bodies, LM and task heads). */
export type LinearLeafNames = { [T in ModelType]: LinearOf<(typeof ARCHITECTURES)[T]> };

/** Every architecture. */
export const SPECS: readonly ArchSpec[] = Object.values(ARCHITECTURES);

export const isModelType = (t: unknown): t is ModelType => typeof t === "string" && Object.prototype.hasOwnProperty.call(ARCHITECTURES, t);

/** The architecture of a model type (a config's, or config.json's model_type). */
export function specFor(modelType: string): ArchSpec {
  if (!isModelType(modelType)) throw new ConfigError(`unsupported model_type '${modelType}'; tunekit supports ${SUPPORTED_MODEL_TYPES.join(", ")}`);
  return ARCHITECTURES[modelType];
}

/** transformers' tokenizer class for config.json's model_type; undefined for a type tunekit has no architecture for. */
export const tokenizerClassFor = (modelType: unknown): string | undefined => (isModelType(modelType) ? ARCHITECTURES[modelType].tokenizerClass : undefined);

/** Tokens one sequence may hold (RoBERTa: two fewer than its position table). */
export const maxTokens = (c: ModelConfig): number => specFor(c.modelType).maxTokens?.(c) ?? c.maxPositions;
