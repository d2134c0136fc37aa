// HF's GenerationConfig, camelCased: the options of generate(), filled in as transformers fills them —
// the call's options, else the model folder's generation_config.json, else config.json's token ids
// (GenerationConfig.from_model_config), else GenerationConfig's defaults (max_length 20, greedy,
// temperature 1, top_k 50, top_p 1).
import * as fs from "fs";
import * as path from "path";
import { TunekitError } from "../errors";
import { parseJson } from "../io/json_safe";
import type { ModelConfig } from "../models/config";

export interface GenerationOptions {
  /** New tokens to generate at most (max_new_tokens); takes precedence over maxLength. */
  maxNewTokens?: number;
  /** Prompt (padded) plus new tokens at most (max_length, default 20), used when maxNewTokens is not set. */
  maxLength?: number;
  /** EOS is not allowed before this many new tokens (min_new_tokens). */
  minNewTokens?: number;
  /** Sample from the processed distribution (do_sample); false = greedy. Default false. */
  doSample?: boolean;
  /** Sampling only: logits are divided by it (> 0). Default 1. */
  temperature?: number;
  /** Sampling only: keep the k most likely tokens (ties with the k-th included); 0 = off. Default 50. */
  topK?: number;
  /** Sampling only: keep the smallest set of most likely tokens whose probability reaches topP (nucleus). Default 1 (off). */
  topP?: number;
  /** > 1 discourages tokens already in the row (prompt and new tokens): a logit is divided by it when positive, multiplied when negative. Default 1. */
  repetitionPenalty?: number;
  /** Seed of the sampling generator: the same seed gives the same text. Default: a random seed. */
  seed?: number;
  /** Token(s) that end a row. Default: generation_config.json's, else config.json's, else the tokenizer's eos token. */
  eosTokenId?: number | number[];
  /** Fills finished rows and the left padding of the prompts. Default: pad token, else the first EOS (as HF does). */
  padTokenId?: number;
  /** A row stops once its new text contains one of these (ending within the latest token); the text keeps it, as HF's does. */
  stopStrings?: string | string[];
  /** Encode string prompts with the tokenizer's special tokens (BOS for Llama / Mistral). Default true; a rendered chat template already holds them: pass false. */
  addSpecialTokens?: boolean;
}

export interface GenerationConfig {
  maxNewTokens: number | null;
  maxLength: number;
  minNewTokens: number;
  doSample: boolean;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  seed: number | null;
  eosTokenId: number[];
  padTokenId: number | null;
  bosTokenId: number | null;
  stopStrings: string[];
  addSpecialTokens: boolean;
}

/** generation_config.json's keys (snake_case) → the options'. */
const JSON_KEYS: Record<string, keyof GenerationOptions | "bosTokenId"> = {
  max_new_tokens: "maxNewTokens", max_length: "maxLength", min_new_tokens: "minNewTokens", do_sample: "doSample",
  temperature: "temperature", top_k: "topK", top_p: "topP", repetition_penalty: "repetitionPenalty",
  eos_token_id: "eosTokenId", pad_token_id: "padTokenId", bos_token_id: "bosTokenId", stop_strings: "stopStrings",
};

export const GENERATION_DEFAULTS = { maxLength: 20, minNewTokens: 0, doSample: false, temperature: 1, topK: 50, topP: 1, repetitionPenalty: 1 };

/** The generation_config.json of a model folder as options (null values and unknown keys left out); {} without one. */
export function readGenerationConfig(dir: string | null): Partial<GenerationOptions> & { bosTokenId?: number } {
  if (!dir) return {};
  const file = path.join(dir, "generation_config.json");
  if (!fs.existsSync(file)) return {};
  const raw = parseJson(fs.readFileSync(file, "utf8"), file);
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new TunekitError(`${file}: expected a JSON object`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) if (JSON_KEYS[k] && v !== null) out[JSON_KEYS[k]] = v;
  return out;
}

const isInt = (v: unknown, min: number): v is number => typeof v === "number" && Number.isInteger(v) && v >= min;

function idList(v: unknown, what: string, V: number): number[] {
  const list = Array.isArray(v) ? v : [v];
  for (const id of list) if (!isInt(id, 0) || id >= V) throw new TunekitError(`generate: ${what} must be token ids in [0, ${V}), got ${JSON.stringify(v)}`);
  return list as number[];
}

/**
 * Resolves the options against the folder's generation_config.json and config.json, with the tokenizer's
 * eos / pad / bos tokens as the last resort; checks every value (a TunekitError naming the option).
 */
export function resolveGenerationConfig(options: GenerationOptions, model: { config: ModelConfig; sourceDir: string | null },
                                        tokenizer: { eosTokenId: number | null; padTokenId: number | null; bosTokenId: number | null }): GenerationConfig {
  const fromFile = readGenerationConfig(model.sourceDir);
  const o = { ...fromFile, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as GenerationOptions & { bosTokenId?: number };
  const c = model.config;
  const V = c.vocabSize;
  const bad = (name: string, expected: string, v: unknown) => new TunekitError(`generate: ${name} must be ${expected}, got ${JSON.stringify(v)}`);

  const eosRaw = o.eosTokenId ?? c.eosTokenId ?? tokenizer.eosTokenId;
  const eosTokenId = eosRaw === null || eosRaw === undefined ? [] : idList(eosRaw, "eosTokenId", V);
  const padRaw = o.padTokenId ?? c.padTokenId ?? tokenizer.padTokenId ?? eosTokenId[0] ?? null;
  if (padRaw !== null && (!isInt(padRaw, 0) || padRaw >= V)) throw bad("padTokenId", `a token id in [0, ${V})`, padRaw);
  const bosRaw = o.bosTokenId ?? c.bosTokenId ?? tokenizer.bosTokenId;
  const bosTokenId = isInt(bosRaw, 0) && bosRaw < V ? bosRaw : null;

  const doSample = o.doSample ?? GENERATION_DEFAULTS.doSample;
  if (typeof doSample !== "boolean") throw bad("doSample", "true or false", doSample);
  const temperature = o.temperature ?? GENERATION_DEFAULTS.temperature;
  if (typeof temperature !== "number" || !(temperature > 0) || !Number.isFinite(temperature))
    throw new TunekitError(`generate: temperature must be a number > 0, got ${JSON.stringify(temperature)}; for greedy decoding set doSample: false`);
  const topK = o.topK ?? GENERATION_DEFAULTS.topK;
  if (!isInt(topK, 0)) throw bad("topK", "an integer >= 0 (0 = off)", topK);
  const topP = o.topP ?? GENERATION_DEFAULTS.topP;
  if (typeof topP !== "number" || !(topP > 0 && topP <= 1)) throw bad("topP", "a number in (0, 1]", topP);
  const repetitionPenalty = o.repetitionPenalty ?? GENERATION_DEFAULTS.repetitionPenalty;
  if (typeof repetitionPenalty !== "number" || !(repetitionPenalty > 0) || !Number.isFinite(repetitionPenalty))
    throw bad("repetitionPenalty", "a number > 0 (1 = off)", repetitionPenalty);
  const maxNewTokens = o.maxNewTokens ?? null;
  if (maxNewTokens !== null && !isInt(maxNewTokens, 1)) throw bad("maxNewTokens", "an integer >= 1", maxNewTokens);
  const maxLength = o.maxLength ?? GENERATION_DEFAULTS.maxLength;
  if (!isInt(maxLength, 1)) throw bad("maxLength", "an integer >= 1", maxLength);
  const minNewTokens = o.minNewTokens ?? GENERATION_DEFAULTS.minNewTokens;
  if (!isInt(minNewTokens, 0)) throw bad("minNewTokens", "an integer >= 0", minNewTokens);
  const seed = o.seed ?? null;
  if (seed !== null && !(typeof seed === "number" && Number.isSafeInteger(seed))) throw bad("seed", "a safe integer", seed);
  const stopRaw = o.stopStrings ?? [];
  const stopStrings = typeof stopRaw === "string" ? [stopRaw] : stopRaw;
  if (!Array.isArray(stopStrings) || !stopStrings.every((s) => typeof s === "string" && s !== ""))
    throw bad("stopStrings", "a non-empty string or a list of them", stopRaw);
  const addSpecialTokens = o.addSpecialTokens ?? true;
  if (typeof addSpecialTokens !== "boolean") throw bad("addSpecialTokens", "true or false", addSpecialTokens);
  return {
    maxNewTokens, maxLength, minNewTokens, doSample, temperature, topK, topP, repetitionPenalty, seed,
    eosTokenId, padTokenId: padRaw, bosTokenId, stopStrings, addSpecialTokens,
  };
}
