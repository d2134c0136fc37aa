// Which modules LoRA adapts and which it trains in full, matched on full module names exactly as
// PEFT matches them (tuners/tuners_utils.py check_target_module_exists, ModulesToSaveWrapper), so a
// config written here selects the same layers in Python and back.
import { TunekitError } from "../errors";
import { Module } from "../nn/module";
import { Linear } from "../nn/layers";
import { SPECS } from "../models/registry";
import type { LinearLeafNames, ModelType } from "../models/registry";

export type { LinearLeafNames };

/**
 * A LoRA target of model type T as PEFT's list form takes it: a leaf name ("query") or any dotted
 * suffix of a full module name ("attention.self.query", "encoder.layer.0.attention.self.query").
 */
export type TargetModule<T extends ModelType = ModelType> = LinearLeafNames[T] | `${string}.${LinearLeafNames[T]}`;

/** PEFT's TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING (utils/constants.py), from each architecture's spec; distilbert has none. */
export const DEFAULT_TARGET_MODULES: Readonly<Partial<Record<ModelType, readonly string[]>>> = Object.fromEntries(
  SPECS.flatMap((spec) => (spec.lora.defaultTargets ? [[spec.modelType, spec.lora.defaultTargets]] : [])),
);

/** PEFT's task types (utils/peft_types.py); null is a plain PeftModel. */
export const TASK_TYPES = ["SEQ_CLS", "SEQ_2_SEQ_LM", "CAUSAL_LM", "TOKEN_CLS", "QUESTION_ANS", "FEATURE_EXTRACTION"] as const;
export type TaskType = (typeof TASK_TYPES)[number];

/** Modules PeftModelFor<task> adds to modules_to_save (peft_model.py): the randomly initialised task head. */
export const TASK_MODULES_TO_SAVE: Readonly<Partial<Record<TaskType, readonly string[]>>> = {
  SEQ_CLS: ["classifier", "score"],
  TOKEN_CLS: ["classifier", "score"],
  QUESTION_ANS: ["qa_outputs"],
};

/** Usual names of task heads: kept trainable and saved by default even when the task type is unknown. */
export const HEAD_MODULE_NAMES = ["classifier", "score", "qa_outputs"] as const;

/** Task type of a model from its HF class name, as one would pick it in PEFT. */
export function taskTypeOf(architecture: string): TaskType | null {
  if (/ForSequenceClassification$/.test(architecture)) return "SEQ_CLS";
  if (/ForTokenClassification$/.test(architecture)) return "TOKEN_CLS";
  if (/ForQuestionAnswering$/.test(architecture)) return "QUESTION_ANS";
  if (/(LMHeadModel|ForCausalLM)$/.test(architecture)) return "CAUSAL_LM";
  if (SPECS.some((spec) => spec.classes.base === architecture)) return "FEATURE_EXTRACTION";
  return null; // masked LM and anything else: PEFT's plain PeftModel
}

export interface ModuleEntry {
  /** Full name as HF's named_modules() gives it ("bert.encoder.layer.0.attention.self.query"). */
  name: string;
  module: Module;
  parent: Module | null;
  /** The key under which parent holds it. */
  childName: string;
}

/** Every module once, with its full name and parent (a base model's body has the empty name, like HF's). */
export function walkModules(root: Module): ModuleEntry[] {
  const out: ModuleEntry[] = [];
  const seen = new Set<Module>();
  const visit = (m: Module, name: string, parent: Module | null, childName: string) => {
    if (seen.has(m)) return;
    seen.add(m);
    out.push({ name, module: m, parent, childName });
    for (const [n, c] of m.namedChildren()) visit(c, name && n ? `${name}.${n}` : name || n, m, n);
  };
  visit(root, "", null, "");
  return out;
}

/** A PEFT regex: Python's re.fullmatch over the full name. */
function fullMatcher(pattern: string, what: string): RegExp {
  try {
    return new RegExp(`^(?:${pattern})$`);
  } catch (e) {
    throw new TunekitError(`${what}: '${pattern}' is not a valid regular expression (${(e as Error).message})`);
  }
}

/** PEFT's list rule: the exact full name, or a name ending in "." + entry. */
export const listMatches = (name: string, entry: string): boolean => name === entry || name.endsWith(`.${entry}`);

const kindOf = (m: Module) => m.constructor.name;

/** Sorted distinct leaf names of the Linear layers in `entries`, for error messages. */
export function linearLeafNames(entries: readonly ModuleEntry[]): string[] {
  const leaves = new Set<string>();
  for (const e of entries) if (e.module instanceof Linear) leaves.add(e.name.slice(e.name.lastIndexOf(".") + 1));
  return [...leaves].sort();
}

/**
 * The Linear layers selected by target_modules (minus exclude_modules), in model order. Stricter than
 * PEFT in one way, on purpose: every list entry must select at least one Linear, so a typo fails
 * here instead of silently adapting fewer layers.
 */
export function resolveTargets(entries: readonly ModuleEntry[], targets: string | readonly string[], exclude: string | readonly string[] | null, what: string): ModuleEntry[] {
  const valid = () => `valid Linear layer names in this model: ${linearLeafNames(entries).join(", ")} (or any dotted suffix of a full name, e.g. 'attention.self.query')`;
  const named = entries.filter((e) => e.name !== "");
  let selected: ModuleEntry[];
  if (typeof targets === "string") {
    const re = fullMatcher(targets, what);
    selected = named.filter((e) => re.test(e.name));
    if (!selected.length) throw new TunekitError(`${what}: the pattern '${targets}' (matched against full module names, as re.fullmatch) selects no module; ${valid()}`);
  } else {
    if (!Array.isArray(targets) || !targets.length || !targets.every((t) => typeof t === "string" && t.length > 0))
      throw new TunekitError(`${what}: targetModules must be a non-empty list of module names or one regular expression; ${valid()}`);
    for (const t of targets) {
      const hits = named.filter((e) => listMatches(e.name, t));
      if (!hits.length) throw new TunekitError(`${what}: target module '${t}' matches no module of this model; ${valid()}`);
      if (!hits.some((e) => e.module instanceof Linear)) {
        const e = hits[0];
        throw new TunekitError(`${what}: target module '${t}' matches '${e.name}', a ${kindOf(e.module)}; LoRA adapts Linear layers only; ${valid()}`);
      }
    }
    selected = named.filter((e) => targets.some((t) => listMatches(e.name, t)));
  }
  if (exclude != null) {
    const ex = typeof exclude === "string" ? ((re) => (n: string) => re.test(n))(fullMatcher(exclude, what)) : (n: string) => exclude.some((x) => listMatches(n, x));
    selected = selected.filter((e) => !ex(e.name));
  }
  const bad = selected.find((e) => !(e.module instanceof Linear));
  if (bad) throw new TunekitError(`${what}: target modules select '${bad.name}', a ${kindOf(bad.module)}; LoRA adapts Linear layers only; ${valid()}`);
  if (!selected.length) throw new TunekitError(`${what}: exclude_modules removes every target; nothing is left to adapt`);
  return selected;
}

/**
 * Modules trained in full and saved with the adapter: PEFT wraps every module whose full name ends
 * with an entry, with NO dot (so "classifier" also takes DistilBERT's "pre_classifier"). A module
 * inside another selected one is covered by it. With `strict`, each entry must match something.
 */
export function resolveModulesToSave(entries: readonly ModuleEntry[], names: readonly string[], strict: readonly string[], what: string): ModuleEntry[] {
  for (const n of names) if (typeof n !== "string" || !n) throw new TunekitError(`${what}: modulesToSave entries must be non-empty module names`);
  const hits = entries.filter((e) => e.name !== "" && names.some((n) => e.name.endsWith(n)));
  for (const n of strict)
    if (!hits.some((e) => e.name.endsWith(n)))
      throw new TunekitError(`${what}: modulesToSave entry '${n}' matches no module of this model (PEFT matches the end of the full name, e.g. 'classifier')`);
  return hits.filter((e) => !hits.some((o) => o !== e && e.name.startsWith(`${o.name}.`)));
}

/**
 * PEFT's rank_pattern / alpha_pattern lookup (get_pattern_key): the first key, in order, for which
 * re.match(rf"(.*\.)?({key})$", name) holds; else the default.
 */
export function patternValue(pattern: Readonly<Record<string, number>>, name: string, dflt: number, what: string): number {
  for (const [k, v] of Object.entries(pattern)) if (fullMatcher(`(?:.*\\.)?(?:${k})`, what).test(name)) return v;
  return dflt;
}
