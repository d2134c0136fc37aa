// PEFT's adapter directory (HF_FORMATS.md §3): adapter_config.json + adapter_model.safetensors.
// Written so peft 0.10 through today loads it (only the 24 keys v0.10 knows, Python's json layout);
// read so a file from any peft version loads (unknown keys tolerated, variants that change the math
// refused by name), with the tensor key set matched exactly: PEFT itself silently skips a missing or
// misnamed key, which leaves a layer un-adapted without a word.
import * as fs from "fs";
import * as path from "path";
import { CheckpointError, TunekitError } from "../errors";
import { writeFileAtomicSync } from "../io/atomic";
import { readJson } from "../io/json_safe";
import { readSafetensors, saveSafetensors } from "../io/safetensors";
import { readTorchBin } from "../io/torch_bin";
import type { FloatTensor, StateDict } from "../io/dtypes";
import type { Parameter } from "../nn/module";
import type { LoadTensor, PreTrainedModel } from "../models/pretrained";
import { isBuffer, isTransposed, switchLayout } from "../models/checkpoint_keys";
import { LoraOptions, LoraSummary, applyLoraWith, loraState, loraSummary, unloadAdapter } from "./lora";
import { TASK_TYPES, TaskType } from "./targets";

export const ADAPTER_CONFIG_NAME = "adapter_config.json";
export const ADAPTER_SAFETENSORS_NAME = "adapter_model.safetensors";
/** What peft < 0.6 saved by default (torch.save); read, never written. */
export const ADAPTER_BIN_NAME = "adapter_model.bin";
/** PeftModel → LoraModel → the transformers model: every key starts with this. */
export const PEFT_KEY_PREFIX = "base_model.model.";

interface AdapterKey {
  /** The parameter's name in the model (as namedParameters() gives it): the key map and layout go by it. */
  name: string;
  param: Parameter;
  /** A tied copy (the architecture's checkpoint.tied): may be absent from a file, and holds its parameter's values. */
  optional: boolean;
}

/** The adapter's tensors under PEFT's names (without PEFT_KEY_PREFIX), as get_peft_model_state_dict gives them. */
function adapterKeys(model: PreTrainedModel): Map<string, AdapterKey> {
  const s = loraState(model, "saveAdapter");
  const names = new Map<Parameter, string>();
  for (const [n, p] of model.namedParameters()) if (!names.has(p)) names.set(p, n);
  const keys = new Map<string, AdapterKey>();
  const put = (key: string, param: Parameter, optional = false) => {
    if (!keys.has(key)) keys.set(key, { name: names.get(param)!, param, optional });
  };
  const loraNames = new Set(s.layers.map((l) => l.name));
  for (const l of s.layers) {
    put(`${l.name}.lora_A.weight`, l.layer.lora_A.weight);
    put(`${l.name}.lora_B.weight`, l.layer.lora_B.weight);
    // The base layer sits under "base_layer" in PEFT (saved with bias="lora_only" since PEFT's fix of
    // issue #3306; older versions dropped it, losing the trained bias).
    if (s.config.bias === "lora_only" && l.layer.bias) put(`${l.name}.base_layer.bias`, l.layer.bias);
  }
  if (s.config.bias === "all") {
    for (const [n, p] of model.namedParameters()) {
      if (!n.includes("bias")) continue;
      const owner = n.endsWith(".bias") ? n.slice(0, -5) : "";
      put(loraNames.has(owner) ? `${owner}.base_layer.bias` : n, p);
    }
    // transformers' state_dict() also lists tied copies, and PEFT keeps every key with "bias" in it.
    for (const [alias, target] of Object.entries(model.spec.checkpoint.tied)) {
      const k = keys.get(target);
      if (k && alias.includes("bias")) put(alias, k.param, true);
    }
  }
  // modules_to_save: PEFT's "X.modules_to_save.default.W" is saved as "X.W".
  for (const m of s.savedModules) for (const [n, p] of m.module.namedParameters(m.name)) put(n, p);
  return keys;
}

// ---- adapter_config.json --------------------------------------------------------------------------

/** A number Python holds as a float (written 0.0, not 0). */
class PyFloat {
  constructor(readonly v: number) {}
}

function pyFloatRepr(x: number): string {
  if (!Number.isFinite(x)) throw new TunekitError(`adapter_config.json: cannot write the number ${x}`);
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return x.toFixed(1);
  const a = Math.abs(x);
  if (a < 1e-4 || a >= 1e16) return x.toExponential().replace(/e([+-])(\d)$/, "e$10$2");
  return String(x);
}

/** json.dumps(v, indent=2, sort_keys=True) as Python writes it (ensure_ascii, ", " / ": " separators). */
export function pythonJson(v: unknown, depth = 0): string {
  const pad = "  ".repeat(depth + 1), end = "  ".repeat(depth);
  if (v === null || v === undefined) return "null";
  if (v instanceof PyFloat) return pyFloatRepr(v.v);
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : pyFloatRepr(v);
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "string") return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  if (Array.isArray(v)) return v.length ? `[\n${v.map((x) => pad + pythonJson(x, depth + 1)).join(",\n")}\n${end}]` : "[]";
  const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return entries.length ? `{\n${entries.map(([k, x]) => `${pad}${pythonJson(k)}: ${pythonJson(x, depth + 1)}`).join(",\n")}\n${end}}` : "{}";
}

/** The directory the model's weights came from, when it was loaded from one. */
function sourceDir(model: PreTrainedModel): string | null {
  const f = model.loadReport?.files[0];
  return f ? path.dirname(f) : null;
}

/** adapter_config.json as peft v0.10's LoraConfig.save_pretrained writes it: exactly its 24 keys. */
export function adapterConfigJson(model: PreTrainedModel, baseModelNameOrPath: string | null): Record<string, unknown> {
  const s = loraState(model, "saveAdapter");
  const c = s.config;
  // Exclusions are not a v0.10 key: spell the adapted layers out instead (PEFT's list matches exact names).
  const targets = c.excludeModules != null ? s.layers.map((l) => l.name) : typeof c.targetModules === "string" ? c.targetModules : [...new Set(c.targetModules)].sort();
  return {
    alpha_pattern: c.alphaPattern,
    // PEFT records the class to rebuild only for a task-less PeftModel.
    auto_mapping: c.taskType === null ? { base_model_class: model.architecture, parent_library: model.spec.hfModule } : null,
    base_model_name_or_path: baseModelNameOrPath,
    bias: c.bias,
    // PEFT forces fan_in_fan_out to true on GPT-2's Conv1D layers and writes it back into the config.
    fan_in_fan_out: s.layers.some((l) => isTransposed(model.spec, `${l.name}.weight`)),
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: c.alpha,
    lora_dropout: new PyFloat(c.dropout),
    megatron_config: null,
    megatron_core: "megatron.core",
    modules_to_save: c.modulesToSave,
    peft_type: "LORA",
    r: c.r,
    rank_pattern: c.rankPattern,
    revision: null,
    target_modules: targets,
    task_type: c.taskType,
    use_dora: false,
    use_rslora: c.useRslora,
  };
}

export interface SaveAdapterOptions {
  /** Written as base_model_name_or_path. Default: the directory the model was loaded from (null if none). */
  baseModelNameOrPath?: string | null;
}

/**
 * Writes `dir`/adapter_model.safetensors (PEFT's key names, {format: "pt"}) and
 * `dir`/adapter_config.json, each atomically. Merged or not, the LoRA factors are what is saved.
 */
export function saveAdapter(model: PreTrainedModel, dir: string, options: SaveAdapterOptions = {}): string[] {
  const keys = adapterKeys(model);
  const config = adapterConfigJson(model, options.baseModelNameOrPath !== undefined ? options.baseModelNameOrPath : sourceDir(model));
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new TunekitError(`saveAdapter: '${dir}' exists and is not a directory`);
  fs.mkdirSync(dir, { recursive: true });
  const tensors: StateDict = new Map();
  for (const [k, { name, param }] of keys)
    tensors.set(PEFT_KEY_PREFIX + k, switchLayout(model.spec, name, { dtype: "F32", shape: [...param.shape], data: param.toHost() } as FloatTensor));
  const files = [path.join(dir, ADAPTER_SAFETENSORS_NAME), path.join(dir, ADAPTER_CONFIG_NAME)];
  saveSafetensors(files[0], tensors);
  writeFileAtomicSync(files[1], Buffer.from(pythonJson(config), "utf8"));
  return files;
}

// ---- loading --------------------------------------------------------------------------------------

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isStrList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === "string");
const unset = (v: unknown) => v === undefined || v === null || v === false || (Array.isArray(v) && !v.length) || (isObj(v) && !Object.keys(v).length);

/** Keys of newer peft versions whose non-default value changes what the adapter computes. */
const UNSUPPORTED: readonly [key: string, feature: string][] = [
  ["use_dora", "DoRA (use_dora)"],
  ["lora_bias", "a trainable bias on lora_B (lora_bias)"],
  ["layers_to_transform", "layers_to_transform"],
  ["layer_replication", "layer_replication"],
  ["target_parameters", "LoRA on parameters (target_parameters)"],
  ["trainable_token_indices", "trainable tokens (trainable_token_indices)"],
  ["use_qalora", "QALoRA (use_qalora)"],
  ["use_bdlora", "BD-LoRA (use_bdlora)"],
  ["alora_invocation_tokens", "activated LoRA (alora_invocation_tokens)"],
  ["arrow_config", "Arrow routing (arrow_config)"],
  ["megatron_config", "Megatron parallel layers (megatron_config)"],
];
/** *_config keys that only describe an initialisation, harmless once the trained weights are loaded. */
const INIT_ONLY_CONFIGS = new Set(["loftq_config", "eva_config", "corda_config", "lora_ga_config", "runtime_config"]);
/** init_lora_weights values that leave the base weights alone (others rewrite them, e.g. PiSSA, OLoRA, LoftQ). */
const PLAIN_INITS = new Set<unknown>([true, false, "gaussian", "orthogonal", "eva"]);

export interface ParsedAdapterConfig {
  options: LoraOptions;
  taskType: TaskType | null;
  baseModelNameOrPath: string | null;
}

/** Reads an adapter_config.json object of any peft version into applyLora's options. */
export function parseAdapterConfig(raw: unknown, source: string): ParsedAdapterConfig {
  const fail = (msg: string) => new CheckpointError(`${source}: ${msg}`);
  if (!isObj(raw)) throw fail("must hold a JSON object");
  if (!("peft_type" in raw)) throw fail("has no peft_type; not a PEFT adapter config");
  if (raw.peft_type !== "LORA") throw fail(`peft_type is ${JSON.stringify(raw.peft_type)}; tunekit loads LoRA adapters only (peft_type "LORA")`);
  for (const [key, feature] of UNSUPPORTED) if (!unset(raw[key])) throw fail(`uses ${feature} = ${JSON.stringify(raw[key])}, which tunekit does not implement`);
  for (const [key, v] of Object.entries(raw))
    if (key.endsWith("_config") && !INIT_ONLY_CONFIGS.has(key) && !UNSUPPORTED.some(([k]) => k === key) && !unset(v))
      throw fail(`uses ${key} (a LoRA variant tunekit does not implement)`);
  const init = raw.init_lora_weights ?? true;
  if (!PLAIN_INITS.has(init))
    throw fail(`init_lora_weights = ${JSON.stringify(init)} rewrites the base weights when the adapter is created, so the adapter only fits that modified base model; tunekit does not support it`);

  const num = (key: string, dflt: number, ok: (x: number) => boolean, expected: string): number => {
    const v = raw[key] ?? dflt;
    if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) throw fail(`${key} = ${JSON.stringify(raw[key])}, expected ${expected}`);
    return v;
  };
  const names = (key: string): string | string[] | null => {
    const v = raw[key] ?? null;
    if (v !== null && typeof v !== "string" && !isStrList(v)) throw fail(`${key} must be null, a regular expression or a list of module names`);
    return v as string | string[] | null;
  };
  const pattern = (key: string): Record<string, number> => {
    const v = raw[key] ?? {};
    if (!isObj(v) || !Object.values(v).every((x) => typeof x === "number" && Number.isFinite(x))) throw fail(`${key} must map module names to numbers`);
    return v as Record<string, number>;
  };
  const taskType = raw.task_type ?? null;
  if (taskType !== null && !TASK_TYPES.includes(taskType as TaskType)) throw fail(`task_type ${JSON.stringify(taskType)} is not one of ${TASK_TYPES.join(", ")} or null`);
  const bias = raw.bias ?? "none";
  if (bias !== "none" && bias !== "all" && bias !== "lora_only") throw fail(`bias = ${JSON.stringify(bias)}, expected "none", "all" or "lora_only"`);
  const modulesToSave = raw.modules_to_save ?? null;
  if (modulesToSave !== null && !isStrList(modulesToSave)) throw fail("modules_to_save must be null or a list of module names");
  const useRslora = raw.use_rslora ?? false;
  if (typeof useRslora !== "boolean") throw fail("use_rslora must be true or false");
  const base = raw.base_model_name_or_path;
  return {
    options: {
      r: num("r", 8, (x) => Number.isInteger(x) && x > 0, "a positive integer"),
      alpha: num("lora_alpha", 8, () => true, "a number"),
      dropout: num("lora_dropout", 0, (x) => x >= 0 && x < 1, "0 <= p < 1"),
      // Names from a file are checked at run time against the model (resolveTargets).
      targetModules: (names("target_modules") ?? undefined) as LoraOptions["targetModules"],
      excludeModules: names("exclude_modules"),
      bias,
      modulesToSave: modulesToSave as string[] | null,
      useRslora,
      rankPattern: pattern("rank_pattern"),
      alphaPattern: pattern("alpha_pattern"),
    },
    taskType: taskType as TaskType | null,
    baseModelNameOrPath: typeof base === "string" ? base : null,
  };
}

function readAdapterTensors(dir: string): { file: string; tensors: StateDict } {
  const st = path.join(dir, ADAPTER_SAFETENSORS_NAME), bin = path.join(dir, ADAPTER_BIN_NAME);
  if (fs.existsSync(st)) return { file: st, tensors: readSafetensors(st).tensors };
  if (fs.existsSync(bin)) return { file: bin, tensors: readTorchBin(bin) };
  throw new CheckpointError(`${dir}: no ${ADAPTER_SAFETENSORS_NAME} (or ${ADAPTER_BIN_NAME}) next to ${ADAPTER_CONFIG_NAME}`);
}

const list = (keys: string[], n = 8) => keys.slice(0, n).join(", ") + (keys.length > n ? `, … (${keys.length - n} more)` : "");

export interface LoadAdapterOptions {
  /** Leave the adapter trainable (to continue training). Default false: PEFT's inference mode, everything frozen. */
  trainable?: boolean;
}

/**
 * Applies the LoRA adapter saved in `dir` (by saveAdapter or by Python peft) to `model`, a plain
 * model of the class the adapter was trained on. On any error the model is left as it was.
 */
export function loadAdapter(model: PreTrainedModel, dir: string, options: LoadAdapterOptions = {}): LoraSummary {
  const cfgFile = path.join(dir, ADAPTER_CONFIG_NAME);
  if (!fs.existsSync(cfgFile)) throw new CheckpointError(`${dir}: no ${ADAPTER_CONFIG_NAME} (not a PEFT adapter directory?)`);
  const parsed = parseAdapterConfig(readJson(cfgFile, cfgFile, CheckpointError), cfgFile);
  const { file, tensors } = readAdapterTensors(dir);
  const bad = [...tensors.keys()].filter((k) => !k.startsWith(PEFT_KEY_PREFIX));
  if (bad.length) throw new CheckpointError(`${file}: keys must start with '${PEFT_KEY_PREFIX}' as PEFT saves them; found ${list(bad)}`);

  applyLoraWith(model, parsed.options, { taskType: parsed.taskType, lenientModulesToSave: true, what: `loadAdapter(${cfgFile})` });
  try {
    const s = loraState(model, "loadAdapter");
    const expected = adapterKeys(model);
    const saved = s.savedModules.map((m) => m.name);
    // Tolerated: the architecture's buffers (GPT-2's old attention masks, named *bias*, which bias="all" kept) and
    // the module copies peft 0.10's bias="all" also wrote for modules_to_save ("X.original_module.bias", "X.modules_to_save.bias").
    const tolerated = (k: string) => isBuffer(model.spec, k) || saved.some((m) => k.startsWith(`${m}.original_module.`) || k.startsWith(`${m}.modules_to_save.`));
    const inFile = new Set([...tensors.keys()].map((k) => k.slice(PEFT_KEY_PREFIX.length)));
    const missing = [...expected].filter(([k, e]) => !e.optional && !inFile.has(k)).map(([k]) => k);
    const unexpected = [...inFile].filter((k) => !expected.has(k) && !tolerated(k));
    if (missing.length || unexpected.length) {
      const parts = [`${file} does not fit this ${model.architecture} (adapter task_type ${parsed.taskType ?? "null"})`];
      if (missing.length) parts.push(`missing ${missing.length} adapter keys: ${list(missing.map((k) => PEFT_KEY_PREFIX + k))}`);
      if (unexpected.length) parts.push(`unexpected ${unexpected.length} keys: ${list(unexpected.map((k) => PEFT_KEY_PREFIX + k))}`);
      const prefix = `${model.prefix}.`;
      if (model.isBase && unexpected.some((k) => k.startsWith(prefix)))
        parts.push(`the adapter was saved on a model with a head (keys under '${prefix}'); load it into that class, not the bare body`);
      else if (!model.isBase && missing.some((k) => k.startsWith(prefix)) && unexpected.length && !unexpected.some((k) => k.startsWith(prefix)))
        parts.push(`the adapter was saved on the bare body (keys without '${prefix}'); load it into AutoModel`);
      throw new CheckpointError(parts.join("; "));
    }
    // The tensors by parameter name, through the model's one loader (layout, dtype and shape checks);
    // a tied copy holds the same values as its parameter.
    const byName = new Map<string, LoadTensor>(), keyOf = new Map<string, string>();
    for (const [k, e] of expected) {
      const t = tensors.get(PEFT_KEY_PREFIX + k);
      if (!t || e.optional) continue;
      byName.set(e.name, t);
      keyOf.set(e.name, PEFT_KEY_PREFIX + k);
    }
    model.loadStateDict(byName, file, { only: (n) => byName.has(n), fileKey: (n) => keyOf.get(n)! });
    if (!options.trainable) for (const p of model.parameters()) p.requiresGrad = false;
  } catch (err) {
    unloadAdapter(model);
    throw err;
  }
  return loraSummary(model);
}
