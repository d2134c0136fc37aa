// A model as Hugging Face lays it out on disk: a body (BertModel, GPT2Model, …) under its prefix
// (bert., roberta., distilbert., transformer.) and an optional head. Loading maps checkpoint keys onto
// parameters strictly — every body weight must be there with the right shape; a missing head weight is
// freshly initialised and reported, as transformers does — and saving writes what transformers loads.
import * as fs from "fs";
import * as path from "path";
import { CheckpointError, TunekitError } from "../errors";
import { Module, Parameter } from "../nn/module";
import { initWeights } from "../nn/init";
import { Generator } from "../tensor/ops";
import { loadStateDict } from "../io/state_dict";
import { readConfig, saveConfig, parseConfig, configToJson, overrideKeys, TORCH_DTYPE_NAMES } from "../io/config";
import type { WeightsDtype } from "../io/config";
import { saveSafetensors } from "../io/safetensors";
import { isFloat32Array } from "../io/dtypes";
import { assertFinite } from "../tensor/finite";
import type { StateDict, FloatTensor } from "../io/dtypes";
import type { ModelConfig } from "./config";
import { BertModel } from "./bert";
import { DistilBertModel } from "./distilbert";
import { GPT2Model, CONV1D_WEIGHTS } from "./gpt2";

export type Body = BertModel | DistilBertModel | GPT2Model;

/** Checkpoint keys that are buffers or tied copies, never parameters of their own. */
const IGNORED_KEYS = [
  /(^|\.)embeddings\.position_ids$/,
  /(^|\.)embeddings\.token_type_ids$/,
  /(^|\.)attn\.bias$/,
  /(^|\.)attn\.masked_bias$/,
  /^cls\.predictions\.decoder\.(weight|bias)$/,
  /^lm_head\.decoder\.(weight|bias)$/,
  /^lm_head\.weight$/,
  /^vocab_projector\.weight$/,
];

export interface LoadReport {
  /** Files the weights came from. */
  files: string[];
  /** Head weights absent from the checkpoint, freshly initialised (train them before use). */
  initialized: string[];
  /** Checkpoint weights this architecture does not use. */
  unexpected: string[];
  loadMs: number;
}

export interface FromPretrainedOptions {
  /** Seed for freshly initialised weights and dropout. Default 42. */
  seed?: number;
  /** Where load warnings go. Default console.warn; null silences them. */
  warn?: ((message: string) => void) | null;
  /** Config overrides (e.g. numLabels / id2label for a new head). */
  config?: Partial<ModelConfig>;
  /**
   * Storage of the body's weight matrices (HF's torch_dtype): "f32" (default), or "bf16" to keep every
   * Linear and Embedding weight of the body that the checkpoint holds at 2 bytes a parameter (values
   * rounded to nearest even; a BF16 checkpoint loads bit-exactly), for a frozen base: LoRA, a frozen
   * body, inference. The 1-D parameters (LayerNorm weights, biases), the task head and fresh weights (a
   * pooler the checkpoint lacks) stay float32: they are a tiny share of the memory, the kernels that read
   * the 1-D ones (LayerNorm, bias add) take float32 only, and the head and fresh weights are what trains
   * (modules_to_save under LoRA). A bf16 weight is never trained: AdamW refuses one that requires grad
   * (full fine-tuning needs "f32").
   */
  dtype?: "f32" | "bf16";
}

export function bodyPrefix(modelType: ModelConfig["modelType"]): string {
  return modelType === "gpt2" ? "transformer" : modelType;
}

export function makeBody(config: ModelConfig, gen: Generator, addPoolingLayer: boolean): Body {
  const ctx = { gen };
  switch (config.modelType) {
    case "bert":
    case "roberta":
      return new BertModel(config, addPoolingLayer, ctx);
    case "distilbert":
      return new DistilBertModel(config, ctx);
    case "gpt2":
      return new GPT2Model(config, ctx);
  }
}

const isConv1D = (name: string) => CONV1D_WEIGHTS.some((s) => name.endsWith(s));

function transpose2d(t: FloatTensor): FloatTensor {
  const [r, c] = t.shape;
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = t.data[i * c + j];
  return { dtype: t.dtype, shape: [c, r], data: out };
}

export abstract class PreTrainedModel extends Module {
  /** The architecture name written to config.json (HF's class name). */
  abstract readonly architecture: string;
  readonly body: Body;
  readonly gen: Generator;
  loadReport: LoadReport | null = null;
  /** The checkpoint directory this model was loaded from (PEFT's base_model_name_or_path). */
  sourceDir: string | null = null;

  /** isBase: the body's parameters carry no prefix (BertModel files). */
  constructor(public config: ModelConfig, readonly isBase: boolean, gen: Generator, addPoolingLayer: boolean) {
    super();
    this.gen = gen;
    this.body = this.child(isBase ? "" : bodyPrefix(config.modelType), makeBody(config, gen, addPoolingLayer));
  }

  get prefix(): string {
    return bodyPrefix(this.config.modelType);
  }

  /** Parameter names as they appear in a head-model checkpoint (body under its prefix). */
  fullName(name: string): string {
    return this.isBase ? `${this.prefix}.${name}` : name;
  }

  /** Random initialisation of every weight (training from scratch), as HF's _init_weights. */
  initAll(seed: number): this {
    initWeights(this, this.config.initializerRange, seed);
    return this;
  }

  loadWeights(dir: string, opts: FromPretrainedOptions = {}): LoadReport {
    const t0 = Date.now();
    if (opts.dtype !== undefined && opts.dtype !== "f32" && opts.dtype !== "bf16")
      throw new TunekitError(`fromPretrained: dtype must be "f32" or "bf16" (HF's torch_dtype float32 / bfloat16), got ${JSON.stringify(opts.dtype)}`);
    const loaded = loadStateDict(dir);
    const prefix = this.prefix;
    const file = new Map<string, StateDict extends Map<string, infer V> ? V : never>();
    const hasPrefix = [...loaded.tensors.keys()].some((k) => k.startsWith(`${prefix}.`));
    for (const [k, t] of loaded.tensors) {
      if (IGNORED_KEYS.some((re) => re.test(k))) continue;
      file.set(hasPrefix ? k : `${prefix}.${k}`, t);
    }
    // bf16 storage for the body matrices the checkpoint holds, before any value is copied in (a fresh
    // weight, such as the pooler an MLM checkpoint lacks, stays float32: it is random and trains).
    if (opts.dtype === "bf16") {
      const body = new Set(this.body.parameters());
      this.castParameters("bf16", (name, p) => body.has(p) && p.shape.length === 2 && file.has(this.fullName(name)));
    }
    const used = new Set<string>();
    const initialized: string[] = [];
    for (const [name, p] of this.namedParameters()) {
      const key = this.fullName(name);
      const t = file.get(key);
      if (!t) {
        // The pooler is not part of an MLM checkpoint (HF's BertForMaskedLM has none): like HF, a
        // classifier loading one gets a fresh pooler and a warning. Any other missing body weight is an error.
        if (key.startsWith(`${prefix}.`) && !key.startsWith(`${prefix}.pooler.`))
          throw new CheckpointError(`${loaded.files.join(", ")}: required weight '${key}' is missing; the checkpoint does not match a ${this.config.modelType} body of this config`);
        initialized.push(key);
        continue;
      }
      if (!isFloat32Array(t.data)) throw new CheckpointError(`weight '${key}' is stored as ${t.dtype}; expected a floating-point tensor`);
      this.loadParameter(name, p, t as FloatTensor, key);
      used.add(key);
    }
    if (initialized.length) initWeights(this, this.config.initializerRange, opts.seed ?? 42, new Set(initialized.map((k) => (this.isBase ? k.slice(prefix.length + 1) : k))));
    const unexpected = [...file.keys()].filter((k) => !used.has(k));
    const warn = opts.warn === undefined ? (m: string) => console.warn(m) : opts.warn;
    if (warn && initialized.length)
      warn(`Some weights of ${this.architecture} were not in ${dir} and are newly initialized: ${initialized.join(", ")}. Train the model on a downstream task before using it for predictions.`);
    if (warn && unexpected.length) warn(`Some weights in ${dir} were not used by ${this.architecture}: ${unexpected.join(", ")}.`);
    this.loadReport = { files: loaded.files, initialized, unexpected, loadMs: Date.now() - t0 };
    return this.loadReport;
  }

  /**
   * Copies a tensor in the checkpoint's layout (GPT-2's Conv1D weights [in, out]) into parameter `name`
   * of this model, wherever its storage lives: the one way weights, resumed checkpoints and adapters
   * enter a model. `key` names it in errors.
   */
  loadParameter(name: string, p: Parameter, t: FloatTensor, key = name): void {
    const ft = this.config.modelType === "gpt2" && isConv1D(name) && t.shape.length === 2 ? transpose2d(t) : t;
    if (ft.shape.length !== p.shape.length || ft.shape.some((d, i) => d !== p.shape[i]))
      throw new CheckpointError(`weight '${key}' has shape [${ft.shape.join(", ")}] in the checkpoint, expected [${p.shape.join(", ")}] for this config`);
    p.copyFrom(ft.data);
  }

  /**
   * Loads every parameter from `tensors` (names as stateDict() gives them, the checkpoint's layout);
   * a missing one is an error naming `source`. Resume and adapters use it.
   */
  loadStateDict(tensors: Map<string, { shape: number[]; data: Float32Array | Int32Array }>, source: string, only?: (name: string) => boolean): void {
    for (const [name, p] of this.namedParameters()) {
      if (only && !only(name)) continue;
      const t = tensors.get(name);
      if (!t) throw new CheckpointError(`${source} lacks '${name}'`);
      if (!isFloat32Array(t.data)) throw new CheckpointError(`${source}: '${name}' is not a float tensor`);
      this.loadParameter(name, p, { dtype: "F32", shape: t.shape, data: t.data }, `${source}: ${name}`);
    }
  }

  /**
   * The state dict as transformers saves it: HF names, Conv1D weights [in, out], tied copies omitted.
   * Values on the host (views of CPU parameters, copies of device ones).
   */
  stateDict(): StateDict {
    const out: StateDict = new Map();
    for (const [name, p] of this.namedParameters()) {
      const t: FloatTensor = { dtype: "F32", shape: [...p.shape], data: p.toHost() };
      out.set(name, this.config.modelType === "gpt2" && isConv1D(name) ? transpose2d(t) : t);
    }
    return out;
  }

  /**
   * Writes config.json and model.safetensors (each atomically), plus the tokenizer files if given. The weights are
   * F32, or F16 / BF16 with opts.dtype; config.json's "dtype" and "torch_dtype" both say which (as save_pretrained
   * sets config.dtype from the weights), whatever the checkpoint it was loaded from said. The default is F32, or
   * BF16 for a model holding bf16 weights (loaded with dtype "bf16"), as transformers saves a bf16 model in bf16:
   * its bf16 weights are written bit-exactly and its float32 ones (norms, biases, head) rounded; pass
   * dtype "F32" to keep those exact.
   */
  async savePretrained(dir: string, opts: { tokenizer?: { save(dir: string): unknown }; dtype?: WeightsDtype } = {}): Promise<void> {
    const dtype = opts.dtype ?? (this.parameters().some((p) => p.dtype === "bf16") ? "BF16" : "F32");
    if (!Object.prototype.hasOwnProperty.call(TORCH_DTYPE_NAMES, dtype)) throw new TunekitError(`savePretrained: dtype must be F32, F16 or BF16, got ${JSON.stringify(dtype)}`);
    for (const [name] of this.namedParameters())
      if (name.includes(".lora_A.") || name.includes(".lora_B."))
        throw new TunekitError(`savePretrained: the model carries an unmerged LoRA adapter ('${name}'); use saveAdapter(model, dir) for PEFT files, or mergeAndUnload(model) first for a plain checkpoint`);
    const sd = this.stateDict();
    assertFinite(`savePretrained(${dir})`, sd);  // before anything is written
    if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new TunekitError(`savePretrained: '${dir}' exists and is not a directory`);
    fs.mkdirSync(dir, { recursive: true });
    saveSafetensors(path.join(dir, "model.safetensors"), sd, { format: "pt" }, { dtype });
    saveConfig(dir, { ...this.config, architectures: [this.architecture] }, { dtype });
    await opts.tokenizer?.save(dir);
  }
}

/**
 * The config of `dir` with `overrides`, applied as HF's from_pretrained(dir, hidden_dropout_prob=…)
 * applies keyword arguments: to config.json's keys, then parsed again, so the fields derived from one
 * key move with it (BERT's hidden_dropout_prob is also its embedding and classifier dropout). Two
 * overrides on one key must agree; a field config.json has no key for (derived) is set as given.
 */
export function configFrom(dir: string, overrides?: Partial<ModelConfig>): ModelConfig {
  const base = readConfig(dir);
  if (!overrides) return base;
  const keyed = overrideKeys(base.modelType);
  const viaJson = Object.fromEntries(Object.entries(overrides).filter(([k]) => keyed.has(k)));
  const direct = Object.fromEntries(Object.entries(overrides).filter(([k]) => !keyed.has(k)));
  const reparsed = Object.keys(viaJson).length ? parseConfig(configToJson({ ...base, ...viaJson } as ModelConfig), `${dir} (with overrides)`) : base;
  return { ...reparsed, ...direct } as ModelConfig;
}
