// config.json ↔ ModelConfig: parsed by its model_type's architecture (lib/models/<arch>/config.ts) with
// Hugging Face's defaults (the `hf` view, HF key names), normalised to one model-independent view
// (hiddenSize, numLayers, ...), and the raw JSON kept so that saving writes back every key HF expects,
// changed only where the caller changed a field.
import { ConfigError } from "../errors";
import { CONFIG_NAME, ConfigWriteOptions, PROBLEM_TYPES, ProblemType, Reader, TORCH_DTYPE_NAMES, parseLabels, readConfigJson, writeConfigJson } from "../io/config";
import { SUPPORTED_MODEL_TYPES, isModelType, specFor } from "./registry";
import type { HfConfigJson, ModelType } from "./registry";
import type { ModelConfig } from "./config";

export { SUPPORTED_MODEL_TYPES };

type Json = Record<string, unknown>;
type Normalised = Omit<ModelConfig, "hf" | "raw">;

/** Parses a config.json object. `source` names it in errors. */
export function parseConfig(json: unknown, source = CONFIG_NAME): ModelConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new ConfigError(`${source}: must be a JSON object`);
  const raw = json as Json;
  const mt = raw.model_type;
  if (typeof mt !== "string") throw new ConfigError(`${source}: has no model_type; expected one of ${SUPPORTED_MODEL_TYPES.join(", ")}`);
  if (!isModelType(mt)) throw new ConfigError(`${source}: unsupported model_type '${mt}'; tunekit supports ${SUPPORTED_MODEL_TYPES.join(", ")}`);
  const modelType = mt;
  const spec = specFor(modelType);
  const r = new Reader(raw, source);
  const hf = spec.config.parse(r) as HfConfigJson;

  const arch = raw.architectures ?? [];
  if (!Array.isArray(arch) || !arch.every((a) => typeof a === "string")) throw r.fail("architectures", "a list of class names");
  const pt = raw.problem_type ?? null;
  if (pt !== null && !(PROBLEM_TYPES as readonly unknown[]).includes(pt)) throw r.fail("problem_type", `null or one of ${PROBLEM_TYPES.join(", ")}`);
  const { pad, bos, eos } = spec.config.tokenIds;
  const common = {
    modelType,
    architectures: arch as string[],
    padTokenId: r.tokenId("pad_token_id", pad),
    bosTokenId: r.tokenId("bos_token_id", bos),
    ...eosTokens(r, eos),
    tieWordEmbeddings: r.bool("tie_word_embeddings", spec.config.tieWordEmbeddings ?? true),
    problemType: pt as ProblemType | null,
    ...parseLabels(r),
  };
  const view: Normalised = { ...common, ...spec.config.fields(hf, r) };
  if (view.hiddenSize % view.numHeads !== 0) {
    throw new ConfigError(`${source}: hidden size ${view.hiddenSize} is not a multiple of the number of attention heads ${view.numHeads}`);
  }
  if (view.padTokenId !== null && view.padTokenId >= view.vocabSize) {
    throw new ConfigError(`${source}: pad_token_id ${view.padTokenId} is outside the vocabulary of ${view.vocabSize}`);
  }
  return { ...view, hf, raw };
}

/** eos_token_id: one id, null, or a list (Llama 3.x Instruct's [128001, 128008, 128009]): eosTokenId is the first. */
function eosTokens(r: Reader, dflt: number | null): { eosTokenId: number | null; eosTokenIds: readonly number[] } {
  const v = r.raw.eos_token_id;
  if (!Array.isArray(v)) {
    const id = r.tokenId("eos_token_id", dflt);
    return { eosTokenId: id, eosTokenIds: id === null ? [] : [id] };
  }
  if (!v.length || !v.every((x) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0)) throw r.fail("eos_token_id", "a token id, null, or a non-empty list of token ids");
  return { eosTokenId: v[0] as number, eosTokenIds: v as number[] };
}

/** Reads `<dir>/config.json` (or the given .json file). */
export function readConfig(dirOrFile: string): ModelConfig {
  const { json, file } = readConfigJson(dirOrFile);
  return parseConfig(json, file);
}

// Where the fields every model shares live in config.json; each architecture's own are its spec's
// config.keys. A field with no key there (qaDropout of BERT, say) is derived, and changing it is an
// error; two fields on one key must agree.
const COMMON_KEYS: Partial<Record<keyof Normalised, string>> = {
  initializerRange: "initializer_range", padTokenId: "pad_token_id", bosTokenId: "bos_token_id", eosTokenId: "eos_token_id",
  tieWordEmbeddings: "tie_word_embeddings", architectures: "architectures", problemType: "problem_type",
};

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The normalised fields that config.json of this model type stores under a key of their own. */
export function overrideKeys(modelType: ModelType): Set<string> {
  return new Set(Object.keys({ ...COMMON_KEYS, ...specFor(modelType).config.keys }));
}

/**
 * The config.json object for `config`: its raw JSON, with every field the caller changed (for
 * example `{...cfg, id2label, label2id, architectures}`, or a changed `hf` key) written under its
 * HF key, and the result checked by parsing it again.
 */
export function configToJson(config: ModelConfig, options: ConfigWriteOptions = {}): Json {
  const base = parseConfig(config.raw, "configToJson");
  const out: Json = { ...config.raw };
  if (options.dtype !== undefined) {
    const name = Object.prototype.hasOwnProperty.call(TORCH_DTYPE_NAMES, options.dtype) ? TORCH_DTYPE_NAMES[options.dtype] : undefined;
    if (!name) throw new ConfigError(`configToJson: dtype must be one of ${Object.keys(TORCH_DTYPE_NAMES).join(", ")} (the weights file's), got ${JSON.stringify(options.dtype)}`);
    out.dtype = name;
    out.torch_dtype = name;
  }
  for (const [k, v] of Object.entries(config.hf)) if (!same(v, (base.hf as unknown as Json)[k])) out[k] = v;

  const keys: Partial<Record<keyof Normalised, string>> = { ...COMMON_KEYS, ...specFor(config.modelType).config.keys };
  const written = new Map<string, keyof Normalised>();
  // eosTokenIds is eos_token_id as read (a list stays in raw); setting eosTokenId writes that one id.
  const skip = new Set(["modelType", "numLabels", "id2label", "label2id", "eosTokenIds"]);
  for (const field of Object.keys(base) as (keyof Normalised)[]) {
    if (skip.has(field) || field === ("hf" as string) || field === ("raw" as string)) continue;
    const now = config[field], was = base[field];
    if (same(now, was)) continue;
    const key = keys[field];
    if (!key) throw new ConfigError(`configToJson: ${config.modelType} config.json has no setting for ${field} (it is derived)`);
    const other = written.get(key);
    if (other && !same(config[other], now)) throw new ConfigError(`configToJson: ${field} and ${other} are both ${key} in a ${config.modelType} config.json and must be equal`);
    written.set(key, field);
    out[key] = now;
  }

  const labelsChanged = !same(config.id2label, base.id2label) || !same(config.label2id, base.label2id) || config.numLabels !== base.numLabels;
  if (labelsChanged) {
    let id2label = config.id2label;
    if (same(id2label, base.id2label) && config.numLabels !== base.numLabels) {
      id2label = Object.fromEntries(Array.from({ length: config.numLabels }, (_, i) => [i, `LABEL_${i}`]));
    }
    const n = Object.keys(id2label).length;
    if (config.numLabels !== base.numLabels && config.numLabels !== n) throw new ConfigError(`configToJson: numLabels ${config.numLabels} disagrees with id2label's ${n} labels`);
    const label2id = same(config.label2id, base.label2id) ? Object.fromEntries(Object.entries(id2label).map(([i, s]) => [s, Number(i)])) : config.label2id;
    out.id2label = Object.fromEntries(Object.entries(id2label).map(([i, s]) => [String(i), s]));
    out.label2id = { ...label2id };
    delete out.num_labels;
  }
  parseConfig(out, "configToJson"); // what is written must read back
  return out;
}

/** Writes config.json into `dirOrFile` (a directory, or a file path) atomically, as HF does: sorted keys, indent 2.
 *  options.dtype: the dtype of the weights written beside it (see ConfigWriteOptions). */
export function saveConfig(dirOrFile: string, config: ModelConfig, options: ConfigWriteOptions = {}): void {
  writeConfigJson(dirOrFile, configToJson(config, options));
}
