// config.json as a file, whatever the architecture: reading it (nesting bounded) and writing it back as HF
// does (atomic, sorted keys), reading its keys with Hugging Face's defaults (Reader), the label maps every
// config carries, and the names of the weights' dtype. What the keys mean per model_type is lib/models
// (<arch>/config.ts for each architecture's keys, config_json.ts for parseConfig / saveConfig).
import * as fs from "fs";
import * as path from "path";
import { ConfigError } from "../errors";
import { writeFileAtomicSync } from "./atomic";
import { readJson } from "./json_safe";

export const PROBLEM_TYPES = ["regression", "single_label_classification", "multi_label_classification"] as const;
export type ProblemType = (typeof PROBLEM_TYPES)[number];
export const CONFIG_NAME = "config.json";

/** The dtype of the weights file beside a config.json, as safetensors names it, and the torch name the config gives it. */
export const TORCH_DTYPE_NAMES = { F32: "float32", F16: "float16", BF16: "bfloat16" } as const;
export type WeightsDtype = keyof typeof TORCH_DTYPE_NAMES;

export interface ConfigWriteOptions {
  /**
   * What the weights file written beside this config.json holds. Given, the config says so under both keys that
   * name it: "dtype" (transformers 5 reads it first, and writes only it) and "torch_dtype" (all that 4.x reads),
   * whatever the loaded file said. Pass it whenever weights are written; without it the keys stay as they were read.
   */
  dtype?: WeightsDtype;
}

type Json = Record<string, unknown>;

/** Reads config.json keys: an absent key takes HF's default, a malformed one is a ConfigError naming it. */
export class Reader {
  constructor(readonly raw: Json, readonly source: string) {}
  fail(key: string, expected: string): ConfigError {
    return new ConfigError(`${this.source}: ${key} must be ${expected}, got ${JSON.stringify(this.raw[key])}`);
  }
  private get(key: string): unknown {
    return this.raw[key];
  }
  posInt(key: string, dflt: number): number {
    const v = this.get(key) ?? dflt;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) throw this.fail(key, "a positive integer");
    return v;
  }
  nonNegInt(key: string, dflt: number): number {
    const v = this.get(key) ?? dflt;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw this.fail(key, "a non-negative integer");
    return v;
  }
  optPosInt(key: string): number | null {
    const v = this.get(key) ?? null;
    if (v !== null && (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0)) throw this.fail(key, "a positive integer or null");
    return v;
  }
  tokenId(key: string, dflt: number | null): number | null {
    const v = key in this.raw ? this.get(key) : dflt;
    if (v !== null && (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)) throw this.fail(key, "a token id (non-negative integer) or null");
    return v as number | null;
  }
  prob(key: string, dflt: number): number {
    const v = this.get(key) ?? dflt;
    if (typeof v !== "number" || !(v >= 0 && v <= 1)) throw this.fail(key, "a probability in [0, 1]");
    return v;
  }
  optProb(key: string): number | null {
    const v = this.get(key) ?? null;
    if (v !== null && (typeof v !== "number" || !(v >= 0 && v <= 1))) throw this.fail(key, "a probability in [0, 1] or null");
    return v;
  }
  posNum(key: string, dflt: number): number {
    const v = this.get(key) ?? dflt;
    if (typeof v !== "number" || !(v > 0 && Number.isFinite(v))) throw this.fail(key, "a positive number");
    return v;
  }
  str(key: string, dflt: string): string {
    const v = this.get(key) ?? dflt;
    if (typeof v !== "string" || !v) throw this.fail(key, "a non-empty string");
    return v;
  }
  bool(key: string, dflt: boolean): boolean {
    const v = this.get(key) ?? dflt;
    if (typeof v !== "boolean") throw this.fail(key, "true or false");
    return v;
  }
}

/** More labels than this is a broken file, not a classifier (it would build a head and label maps that large). */
export const MAX_NUM_LABELS = 100_000;

export function parseLabels(r: Reader): { numLabels: number; id2label: Record<number, string>; label2id: Record<string, number> } {
  const { raw, source } = r;
  const id2label: Record<number, string> = {};
  if (raw.id2label !== undefined && raw.id2label !== null) {
    if (typeof raw.id2label !== "object" || Array.isArray(raw.id2label)) throw r.fail("id2label", "an object of label id → name");
    const entries = Object.entries(raw.id2label as Json);
    for (const [k, v] of entries) {
      if (!/^\d+$/.test(k)) throw new ConfigError(`${source}: id2label key ${JSON.stringify(k)} is not an integer`);
      if (typeof v !== "string") throw new ConfigError(`${source}: id2label[${k}] must be a string, got ${JSON.stringify(v)}`);
      id2label[Number(k)] = v;
    }
    for (let i = 0; i < entries.length; i++) {
      if (!(i in id2label)) throw new ConfigError(`${source}: id2label keys must be 0..${entries.length - 1}; ${i} is missing`);
    }
  } else {
    const n = r.posInt("num_labels", 2);
    if (n > MAX_NUM_LABELS) throw r.fail("num_labels", `at most ${MAX_NUM_LABELS}`);
    for (let i = 0; i < n; i++) id2label[i] = `LABEL_${i}`;
  }
  const numLabels = Object.keys(id2label).length;
  // Object.fromEntries defines own properties, so a label named "__proto__" stays a label.
  let label2id: Record<string, number>;
  if (raw.label2id !== undefined && raw.label2id !== null) {
    if (typeof raw.label2id !== "object" || Array.isArray(raw.label2id)) throw r.fail("label2id", "an object of label name → id");
    const entries = Object.entries(raw.label2id as Json);
    for (const [k, v] of entries) {
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v >= numLabels) throw new ConfigError(`${source}: label2id['${k}'] must be a label id in 0..${numLabels - 1}, got ${JSON.stringify(v)}`);
    }
    label2id = Object.fromEntries(entries) as Record<string, number>;
  } else {
    label2id = Object.fromEntries(Object.entries(id2label).map(([i, name]) => [name, Number(i)]));
  }
  return { numLabels, id2label, label2id };
}

export const configPath = (p: string) => (fs.existsSync(p) && fs.statSync(p).isDirectory() ? path.join(p, CONFIG_NAME) : p);

/** The JSON of `<dir>/config.json` (or the given .json file), and the file's path. */
export function readConfigJson(dirOrFile: string): { json: unknown; file: string } {
  const file = configPath(dirOrFile);
  return { json: readJson(file, file, ConfigError), file };
}

/** Writes config.json into `dirOrFile` (a directory, or a file path) atomically, as HF does: sorted keys, indent 2. */
export function writeConfigJson(dirOrFile: string, json: Json): void {
  const text = JSON.stringify(sortKeys(json), null, 2) + "\n";
  writeFileAtomicSync(configPath(dirOrFile), Buffer.from(text, "utf8"));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (typeof v !== "object" || v === null) return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Json)[k])]));
}
