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
import { loadStateDict as readStateDict } from "../io/state_dict";
import { TORCH_DTYPE_NAMES } from "../io/config";
import type { WeightsDtype } from "../io/config";
import { readConfig, saveConfig, parseConfig, configToJson, overrideKeys } from "./config_json";
import { saveSafetensors } from "../io/safetensors";
import { isFloat32Array } from "../io/dtypes";
import { assertFinite } from "../tensor/finite";
import type { StateDict, FloatTensor } from "../io/dtypes";
import type { ModelConfig } from "./config";
import type { ArchSpec, Body, Head } from "./spec";
import { specFor } from "./registry";
import { isTransposed, parameterKeys, switchLayout } from "./checkpoint_keys";

export type { Body };

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

/** A tensor as a checkpoint or a state dict holds it. */
export interface LoadTensor {
  dtype?: string;
  shape: number[];
  data: ArrayLike<number>;
}

export interface ParameterLoadOptions {
  /** Load only the parameters this accepts (names as namedParameters() gives them). */
  only?: (name: string) => boolean;
  /** Parameter keys (the body under its prefix) that may be absent: left as they are and listed as missing. */
  optional?: (key: string) => boolean;
  /** How the file names parameter `name`, in messages (an adapter file's PEFT key). Default: its key. */
  fileKey?: (name: string) => string;
}

export interface ParameterLoadResult {
  /** Parameter keys that were absent (and optional). */
  missing: string[];
  /** Keys of the file no parameter took (buffers and tied copies aside). */
  unexpected: string[];
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
    this.body = this.child(isBase ? "" : this.spec.prefix, this.spec.body(config, { gen }, addPoolingLayer));
  }

  /** Everything about this model's architecture (lib/models/<arch>/). */
  get spec(): ArchSpec {
    return specFor(this.config.modelType);
  }

  /** The body's attribute in a model with a head: its keys' prefix ("bert", "transformer"). */
  get prefix(): string {
    return this.spec.prefix;
  }

  /** Registers an architecture's head (its modules are children under HF's names, so train() reaches its dropouts); returns its forward. */
  protected addHead<F>(head: Head<F>): F {
    for (const [name, m] of head.modules) this.child(name, m);
    return head.forward;
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
    const loaded = readStateDict(dir);
    const prefix = `${this.prefix}.`;
    // As transformers: a head weight the checkpoint lacks is freshly initialised with a warning, and so is
    // a body module it may lack (BertForMaskedLM has no pooler, a classifier needs one); any other
    // missing body weight is an error.
    const optional = (key: string) => !key.startsWith(prefix) || this.spec.checkpoint.optional.some((m) => key.startsWith(`${prefix}${m}.`));
    const { missing: initialized, unexpected } = this.loadStateDict(loaded.tensors, loaded.files.join(", "), { optional });
    if (initialized.length) initWeights(this, this.config.initializerRange, opts.seed ?? 42, new Set(initialized.map((k) => (this.isBase ? k.slice(prefix.length) : k))));
    // bf16 storage for the body matrices the checkpoint held (a fresh weight, such as the pooler an MLM
    // checkpoint lacks, stays float32: it is random and trains).
    if (opts.dtype === "bf16") {
      const body = new Set(this.body.parameters()), fresh = new Set(initialized);
      this.castParameters("bf16", (name, p) => body.has(p) && p.shape.length === 2 && !fresh.has(this.fullName(name)));
    }
    const warn = opts.warn === undefined ? (m: string) => console.warn(m) : opts.warn;
    if (warn && initialized.length)
      warn(`Some weights of ${this.architecture} were not in ${dir} and are newly initialized: ${initialized.join(", ")}. Train the model on a downstream task before using it for predictions.`);
    if (warn && unexpected.length) warn(`Some weights in ${dir} were not used by ${this.architecture}: ${unexpected.join(", ")}.`);
    this.loadReport = { files: loaded.files, initialized, unexpected, loadMs: Date.now() - t0 };
    return this.loadReport;
  }

  /**
   * The one way weights enter a model — from_pretrained, a resumed checkpoint, an adapter file: `tensors`
   * by the file's keys and in its layout go through the architecture's key map (buffers and tied copies
   * dropped, the body's prefix matched, Conv1D weights transposed) into the parameters, wherever their
   * storage lives. Every tensor is checked before any is copied, so a bad file leaves the model as it was.
   * `source` names the file in errors; `options` (or just an `only` filter) narrows what is loaded.
   */
  loadStateDict(tensors: ReadonlyMap<string, LoadTensor>, source: string, options: ParameterLoadOptions | ((name: string) => boolean) = {}): ParameterLoadResult {
    const o = typeof options === "function" ? { only: options } : options;
    const params = [...this.namedParameters()].filter(([name]) => !o.only || o.only(name));
    const file = parameterKeys(this.spec, tensors, params.map(([name]) => this.fullName(name)));
    const ready: [Parameter, FloatTensor][] = [];
    const missing: string[] = [];
    const used = new Set<string>();
    for (const [name, p] of params) {
      const key = this.fullName(name);
      const t = file.get(key);
      const shown = o.fileKey?.(name) ?? key;
      if (!t) {
        if (o.optional?.(key)) missing.push(key);
        else throw new CheckpointError(`${source}: required weight '${shown}' is missing; the checkpoint does not match this ${this.architecture} of this config`);
        continue;
      }
      ready.push([p, this.checkedTensor(name, p, t, `${source}: weight '${shown}'`)]);
      used.add(key);
    }
    for (const [p, t] of ready) p.copyFrom(t.data);
    return { missing, unexpected: [...file.keys()].filter((k) => !used.has(k)) };
  }

  /**
   * Copies a tensor in the checkpoint's layout into parameter `name` (see loadStateDict, which loads a
   * whole file this way). `key` names it in errors.
   */
  loadParameter(name: string, p: Parameter, t: FloatTensor, key = name): void {
    p.copyFrom(this.checkedTensor(name, p, t, `weight '${key}'`).data);
  }

  /** `t` (file layout) in the model's layout, after checking its dtype and its shape against `p`. */
  private checkedTensor(name: string, p: Parameter, t: LoadTensor, what: string): FloatTensor {
    if (!isFloat32Array(t.data)) throw new CheckpointError(`${what} is stored as ${t.dtype ?? t.data.constructor.name}; expected a floating-point tensor`);
    const want = isTransposed(this.spec, name) && p.shape.length === 2 ? [p.shape[1], p.shape[0]] : p.shape;
    if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i]))
      throw new CheckpointError(`${what} has shape [${t.shape.join(", ")}], expected [${want.join(", ")}] for this model`);
    return switchLayout(this.spec, name, { dtype: "F32", shape: t.shape, data: t.data });
  }

  /**
   * The state dict as transformers saves it: HF names, Conv1D weights [in, out], tied copies omitted.
   * Values on the host (views of CPU parameters, copies of device ones).
   */
  stateDict(): StateDict {
    const out: StateDict = new Map();
    for (const [name, p] of this.namedParameters()) {
      const t: FloatTensor = { dtype: "F32", shape: [...p.shape], data: p.toHost() };
      out.set(name, switchLayout(this.spec, name, t));
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
