// The LoRA strategy (PEFT's LoraModel): adapt the targeted Linear layers, freeze everything else
// except the biases `bias` asks for and the modules_to_save (the task head), and merge / unmerge /
// unload the adapters (PEFT's merge_adapter, unmerge_adapter, merge_and_unload, unload). The model
// keeps its class and its HF parameter names; LoRA adds "<layer>.lora_A.weight" / "<layer>.lora_B.weight".
import { TunekitError } from "../errors";
import type { ModelType } from "../models/registry";
import { Module, Parameter } from "../nn/module";
import { Linear } from "../nn/layers";
import type { PreTrainedModel } from "../models/pretrained";
import { LoraLinear } from "./lora_linear";
import {
  DEFAULT_TARGET_MODULES, HEAD_MODULE_NAMES, ModuleEntry, TASK_MODULES_TO_SAVE, TargetModule, TaskType,
  patternValue, resolveModulesToSave, resolveTargets, taskTypeOf, walkModules,
} from "./targets";

export type LoraBias = "none" | "all" | "lora_only";

export interface LoraOptions<T extends ModelType = ModelType> {
  /** Checked against the model's config; pins T so target names are type-checked for that architecture. */
  modelType?: T;
  /** Rank. Default 8 (PEFT's). */
  r?: number;
  /** Scaling numerator: s = alpha / r. Default 8 (PEFT's). */
  alpha?: number;
  /** Dropout on the LoRA branch's input while training. Default 0. */
  dropout?: number;
  /**
   * Layers to adapt: a list of names (exact full name, or a dotted suffix such as "query"), or one
   * regular expression matched against the whole full name. Default per architecture as PEFT (its spec's
   * lora.defaultTargets): bert/roberta ["query", "value"], gpt2 ["c_attn"]; distilbert has none (pass e.g. ["q_lin", "v_lin"]).
   */
  targetModules?: string | readonly TargetModule<T>[];
  /** Layers left out of the targets (PEFT ≥ 0.14's exclude_modules; same matching rules). */
  excludeModules?: string | readonly string[] | null;
  /** Biases trained too: "none" (default), "all" (every parameter named *bias*), "lora_only" (those of adapted layers). */
  bias?: LoraBias;
  /**
   * Modules trained in full and saved with the adapter, matched by the end of their full name (no dot,
   * as PEFT). The task head is always added, as PEFT does: "classifier" and "score" for sequence and
   * token classification, "qa_outputs" for question answering, and any module with one of those names
   * when the model's task is not one PEFT knows.
   */
  modulesToSave?: readonly string[] | null;
  /** Rank-stabilised scaling s = alpha / √r. Default false. */
  useRslora?: boolean;
  /** Per-layer rank / alpha (PEFT's rank_pattern / alpha_pattern: full name or a regex on a dotted suffix). */
  rankPattern?: Readonly<Record<string, number>>;
  alphaPattern?: Readonly<Record<string, number>>;
  /** Seed of the lora_A initialisation. Default: the model's generator seed. */
  seed?: number;
}

/** The LoRA setup of a model, in the terms adapter_config.json records. */
export interface LoraConfig {
  r: number;
  alpha: number;
  dropout: number;
  /** As given (a regex string or a list), or the architecture's default list. */
  targetModules: string | string[];
  excludeModules: string | string[] | null;
  bias: LoraBias;
  /** The names written as modules_to_save: the caller's, then the task head's. Null when none. */
  modulesToSave: string[] | null;
  useRslora: boolean;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  taskType: TaskType | null;
}

export interface LoraLayerInfo {
  name: string;
  layer: LoraLinear;
  parent: Module;
  childName: string;
}

interface LoraState {
  config: LoraConfig;
  layers: LoraLayerInfo[];
  /** Full names of the modules trained in full and saved. */
  savedModules: ModuleEntry[];
  /** Every parameter's requiresGrad before applyLora (mergeAndUnload restores them). */
  before: Map<Parameter, boolean>;
}

const states = new WeakMap<Module, LoraState>();

/** What applyLora / loadAdapter did, PEFT's print_trainable_parameters included. */
export interface LoraSummary {
  config: LoraConfig;
  /** Full names of the adapted layers. */
  layers: string[];
  /** Full names of the modules trained in full (the head). */
  modulesToSave: string[];
  trainableParameters: number;
  totalParameters: number;
}

export function isLoraModel(model: Module): boolean {
  return states.has(model);
}

/** The LoRA state of a model; throws a clear error when there is none. */
export function loraState(model: Module, what: string): Readonly<LoraState> {
  const s = states.get(model);
  if (!s) throw new TunekitError(`${what}: the model has no LoRA adapters; call applyLora(model, …) or loadAdapter(model, dir) first`);
  return s;
}

export function loraSummary(model: Module): LoraSummary {
  const s = loraState(model, "loraSummary");
  let trainable = 0, total = 0;
  for (const p of model.parameters()) {
    total += p.size;
    if (p.requiresGrad) trainable += p.size;
  }
  return { config: s.config, layers: s.layers.map((l) => l.name), modulesToSave: s.savedModules.map((e) => e.name), trainableParameters: trainable, totalParameters: total };
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function checkNumber(what: string, name: string, v: unknown, ok: (x: number) => boolean, expected: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) throw new TunekitError(`${what}: ${name} = ${JSON.stringify(v)}, expected ${expected}`);
  return v;
}

function checkPattern(what: string, name: string, v: unknown, ok: (x: number) => boolean, expected: string): Record<string, number> {
  if (v == null) return {};
  if (!isObj(v)) throw new TunekitError(`${what}: ${name} must be an object of module name → number`);
  for (const [k, x] of Object.entries(v)) checkNumber(what, `${name}['${k}']`, x, ok, expected);
  return { ...(v as Record<string, number>) };
}

/** loadAdapter's knobs: the file's task type, and modules_to_save names that need not all match (PEFT writes "score" for BERT too). */
export interface ApplyInternals {
  taskType?: TaskType | null;
  lenientModulesToSave?: boolean;
  what?: string;
}

/**
 * Adds LoRA adapters to `model` in place and freezes what LoRA does not train. Every name is checked
 * before anything changes, so a bad option leaves the model untouched.
 */
export function applyLora<T extends ModelType = ModelType>(model: PreTrainedModel, options: LoraOptions<T> = {}): LoraSummary {
  return applyLoraWith(model, options, {});
}

/** applyLora with loadAdapter's knobs (not part of the public API). */
export function applyLoraWith(model: PreTrainedModel, options: LoraOptions, internals: ApplyInternals): LoraSummary {
  const what = internals.what ?? "applyLora";
  if (states.has(model)) throw new TunekitError(`${what}: the model already has LoRA adapters; tunekit keeps one adapter per model (mergeAndUnload() first to stack another)`);
  const modelType = model.config.modelType;
  if (options.modelType !== undefined && options.modelType !== modelType)
    throw new TunekitError(`${what}: options.modelType is '${options.modelType}' but the model is a ${modelType} model`);
  const r = checkNumber(what, "r", options.r ?? 8, (x) => Number.isInteger(x) && x > 0, "a positive integer");
  const alpha = checkNumber(what, "alpha", options.alpha ?? 8, () => true, "a finite number");
  const dropout = checkNumber(what, "dropout", options.dropout ?? 0, (x) => x >= 0 && x < 1, "0 <= dropout < 1");
  const bias = options.bias ?? "none";
  if (!["none", "all", "lora_only"].includes(bias)) throw new TunekitError(`${what}: bias = ${JSON.stringify(bias)}, expected "none", "all" or "lora_only"`);
  const useRslora = options.useRslora ?? false;
  if (typeof useRslora !== "boolean") throw new TunekitError(`${what}: useRslora must be a boolean`);
  const rankPattern = checkPattern(what, "rankPattern", options.rankPattern, (x) => Number.isInteger(x) && x > 0, "a positive integer");
  const alphaPattern = checkPattern(what, "alphaPattern", options.alphaPattern, () => true, "a finite number");
  const seed = options.seed ?? model.gen.seed;
  checkNumber(what, "seed", seed, (x) => Number.isInteger(x), "an integer");

  let targetModules: string | string[];
  if (options.targetModules === undefined || options.targetModules === null) {
    const d = DEFAULT_TARGET_MODULES[modelType];
    if (!d) throw new TunekitError(`${what}: PEFT has no default target modules for ${modelType}; pass targetModules, e.g. [${model.spec.lora.queryValue.map((n) => JSON.stringify(n)).join(", ")}] (the attention query and value projections)`);
    targetModules = [...d];
  } else {
    targetModules = typeof options.targetModules === "string" ? options.targetModules : [...options.targetModules];
  }
  const excludeModules = options.excludeModules == null ? null : typeof options.excludeModules === "string" ? options.excludeModules : [...options.excludeModules];

  const entries = walkModules(model);
  const targets = resolveTargets(entries, targetModules, excludeModules, what);
  const taskType = internals.taskType !== undefined ? internals.taskType : taskTypeOf(model.architecture);
  const userSave = options.modulesToSave ?? [];
  if (!Array.isArray(userSave)) throw new TunekitError(`${what}: modulesToSave must be a list of module names`);
  const saveNames = [...new Set([...userSave, ...(taskType ? TASK_MODULES_TO_SAVE[taskType] ?? [] : [])])];
  // A fresh adapter also keeps any head under its usual name trainable (a task PEFT has no class for);
  // a loaded one saves exactly what its config says.
  if (internals.taskType === undefined)
    for (const n of HEAD_MODULE_NAMES) if (!saveNames.some((s) => n.endsWith(s)) && entries.some((e) => e.name.endsWith(n))) saveNames.push(n);
  const saved = resolveModulesToSave(entries, saveNames, internals.lenientModulesToSave ? [] : userSave, what);
  for (const t of targets) {
    const owner = saved.find((m) => t.name === m.name || t.name.startsWith(`${m.name}.`));
    if (owner) throw new TunekitError(`${what}: '${t.name}' is both a LoRA target and part of '${owner.name}', which modulesToSave trains in full; narrow targetModules or modulesToSave`);
  }

  const shapes = targets.map((t) => ({ r: patternValue(rankPattern, t.name, r, what), alpha: patternValue(alphaPattern, t.name, alpha, what) }));

  // Everything is valid: change the model.
  const before = new Map<Parameter, boolean>();
  for (const p of model.parameters()) {
    before.set(p, p.requiresGrad);
    p.requiresGrad = false;
  }
  const layers: LoraLayerInfo[] = targets.map((t, i) => {
    const base = t.module as Linear;
    const layer = new LoraLinear(base, {
      ...shapes[i], useRslora, dropout, gen: model.gen, name: t.name, seed: (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b)) >>> 0,
    });
    t.parent!.replaceChild(t.childName, layer);
    base.adapter = layer; // code holding the Linear itself routes through the adapter too
    layer.lora_A.weight.requiresGrad = true;
    layer.lora_B.weight.requiresGrad = true;
    if (bias === "lora_only" && layer.bias) layer.bias.requiresGrad = true;
    return { name: t.name, layer, parent: t.parent!, childName: t.childName };
  });
  if (bias === "all") for (const [n, p] of model.namedParameters()) if (n.includes("bias")) p.requiresGrad = true;
  for (const m of saved) for (const p of m.module.parameters()) p.requiresGrad = true;

  const config: LoraConfig = {
    r, alpha, dropout, targetModules, excludeModules, bias, modulesToSave: saveNames.length ? saveNames : null,
    useRslora, rankPattern, alphaPattern, taskType,
  };
  states.set(model, { config, layers, savedModules: saved, before });
  return loraSummary(model);
}

/** Folds s·B·A into every adapted layer's base weight: inference then runs the plain Linear path. */
export function mergeAdapter<M extends PreTrainedModel>(model: M): M {
  for (const l of loraState(model, "mergeAdapter").layers) l.layer.merge();
  return model;
}

/** Takes s·B·A back out of the base weights (the exact inverse of mergeAdapter up to float rounding). */
export function unmergeAdapter<M extends PreTrainedModel>(model: M): M {
  for (const l of loraState(model, "unmergeAdapter").layers) l.layer.unmerge();
  return model;
}

/** Puts the original Linear layers back and restores requiresGrad; with `merged`, after folding the adapters in. */
function restore(model: PreTrainedModel, s: LoraState, merged: boolean): void {
  for (const l of s.layers) {
    if (merged) l.layer.merge();
    else l.layer.unmerge();
    l.layer.base.adapter = null;
    l.parent.replaceChild(l.childName, l.layer.base);
  }
  for (const [p, rg] of s.before) p.requiresGrad = rg;
  states.delete(model);
}

/** Removes the adapters without merging (PEFT's unload()): the base model as it was (a merged adapter is taken out first, exact up to float rounding), factors dropped. */
export function unloadAdapter<M extends PreTrainedModel>(model: M): M {
  restore(model, loraState(model, "unloadAdapter") as LoraState, false);
  return model;
}

/**
 * Merges the adapters and puts the original Linear layers back: the model is a plain one again
 * (its savePretrained() writes an ordinary HF checkpoint), with every parameter's requiresGrad as
 * before applyLora. The LoRA factors are dropped.
 */
export function mergeAndUnload<M extends PreTrainedModel>(model: M): M {
  restore(model, loraState(model, "mergeAndUnload") as LoraState, true);
  return model;
}
