// AdamW over parameter groups (torch.optim.AdamW semantics), one native call per step for all
// tensors. Gradients, m and v live in arenas (llm.c): zero-grad, the gradient norm, unscaling and
// the update are one call each. Only the parameters of its groups are covered: frozen ones cost no
// memory here.
import { native, NativeBuffer } from "../native";
import { Arena } from "../nn/arena";
import { release } from "../tensor/storage";
import { TunekitError } from "../errors";
import { Module, Parameter } from "../nn/module";
import { LayerNorm } from "../nn/layers";
import { bf16TrainError } from "../tensor/ops";
import { SPECS, isModelType, specFor } from "../models/registry";
import type { ModelType } from "../models/registry";
import { layerIndex, noWeightDecay } from "../models/param_rules";

export interface ParamGroup {
  params: Parameter[];
  names: string[];
  /** Learning rate of this group at schedule multiplier 1. */
  lr: number;
  weightDecay: number;
}

export interface GroupOptions {
  lr: number;
  weightDecay?: number;
  /**
   * Discriminative learning rates (ULMFiT / layer-wise decay): a parameter of layer l (1..L, embeddings 0)
   * trains at lr·ξ^(L−l); the head and anything above the layers at the full lr.
   */
  layerDecay?: number;
}

/**
 * Layer index of a parameter name: 0 for embeddings, 1..L for transformer layers, L+1 (full rate) otherwise,
 * by the layer pattern of `modelType`'s architecture (of any architecture tunekit knows when not given).
 */
export function layerOf(name: string, numLayers: number, modelType?: ModelType): number {
  const specs = modelType !== undefined ? [specFor(modelType)] : SPECS;
  for (const spec of specs) {
    const l = layerIndex(spec, name);
    if (l !== null) return l;
  }
  return numLayers + 1;
}

/**
 * HF's default grouping: weight decay on every weight except biases and norm weights (by name, as the
 * architecture's spec says; a model without one by HF's name patterns and LayerNorm modules); with
 * layerDecay, one group per (layer, decay) pair. Only parameters that require grad are included.
 */
export function paramGroups(model: Module & { numLayers?: number }, o: GroupOptions): ParamGroup[] {
  const modelType = (model as { config?: { modelType?: unknown } }).config?.modelType;
  const spec = isModelType(modelType) ? specFor(modelType) : null;
  const norms = new Set<Parameter>();
  if (!spec) for (const [, m] of model.namedModules()) if (m instanceof LayerNorm) m.parameters().forEach((p) => norms.add(p));
  const L = (model as { body?: { numLayers: number } }).body?.numLayers ?? 0;
  const groups = new Map<string, ParamGroup>();
  for (const [name, p] of model.namedParameters()) {
    if (!p.requiresGrad) continue;
    const decay = noWeightDecay(spec, name) || norms.has(p) ? 0 : o.weightDecay ?? 0;
    const layer = o.layerDecay !== undefined ? Math.min(layerOf(name, L, spec ? modelType as ModelType : undefined), L) : L;
    const lr = o.layerDecay !== undefined ? o.lr * Math.pow(o.layerDecay, L - layer) : o.lr;
    const key = `${lr}/${decay}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { params: [], names: [], lr, weightDecay: decay }));
    g.params.push(p);
    g.names.push(name);
  }
  return [...groups.values()];
}

export interface AdamWOptions {
  betas?: [number, number];
  eps?: number;
}

export class AdamW {
  readonly groups: ParamGroup[];
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  step = 0;
  /** Every parameter this optimizer updates, in group order, and its name. */
  private readonly params: Parameter[] = [];
  private readonly names: string[] = [];
  private readonly lrOf: number[] = [];
  private readonly decayOf: number[] = [];
  /** The gradients of `params`, one arena (each parameter's grad is a view of its slot). */
  readonly grads: Arena;
  /** m and v in the gradients' layout; allocated by the first update (or a loaded state). */
  private m: Arena | null = null;
  private v: Arena | null = null;
  /** Which parameters an update has reached (torch creates a parameter's state on its first step). */
  private readonly hasState: boolean[] = [];

  constructor(groups: ParamGroup[], o: AdamWOptions = {}) {
    if (!groups.some((g) => g.params.length)) throw new TunekitError("AdamW: no trainable parameters (is every parameter frozen?)");
    this.groups = groups;
    [this.beta1, this.beta2] = o.betas ?? [0.9, 0.999];
    this.eps = o.eps ?? 1e-8;
    // torch.optim.AdamW's checks; ε must also be > 0, as 0 makes 0/0 for a parameter whose gradient is still 0.
    [this.beta1, this.beta2].forEach((b, i) => {
      if (typeof b !== "number" || !(b >= 0 && b < 1)) throw new TunekitError(`AdamW: betas[${i}] must be in [0, 1), got ${b}`);
    });
    if (typeof this.eps !== "number" || !(this.eps > 0 && Number.isFinite(this.eps))) throw new TunekitError(`AdamW: eps must be a finite number > 0, got ${this.eps}`);
    for (const g of groups)
      g.params.forEach((p, i) => {
        if (p.dtype !== "f32") throw bf16TrainError(`AdamW: parameter '${g.names[i]}'`);
        this.params.push(p);
        this.names.push(g.names[i]);
        this.lrOf.push(g.lr);
        this.decayOf.push(g.weightDecay);
      });
    const device = this.params[0].device;
    const stray = this.params.find((p) => p.device !== device);
    if (stray) throw new TunekitError(`AdamW: parameters on ${device} and on ${stray.device}; move the whole model to one device first`);
    this.grads = new Arena(this.params.map((p) => p.size), device, "f32", "the gradients");
    this.params.forEach((p, i) => {
      const view = this.grads.view(i);
      if (p.grad) {
        view.copyFromStorage(p.grad);
        release(p.grad);
      }
      p.grad = view;
    });
  }

  /** Every parameter this optimizer updates, in the gradient arena's slot order. */
  get parameters(): readonly Parameter[] {
    return this.params;
  }

  /** Bytes of optimizer state held (m and v). */
  get stateBytes(): number {
    return this.m && this.v ? this.m.storage.bytes + this.v.storage.bytes : 0;
  }

  private moments(): [Arena, Arena] {
    if (!this.m || !this.v) {
      const lengths = this.params.map((p) => p.size), device = this.grads.storage.device;
      this.m = new Arena(lengths, device, "f32", "AdamW's first moments");
      this.v = new Arena(lengths, device, "f32", "AdamW's second moments");
    }
    return [this.m, this.v];
  }

  /** Zeroes every gradient: one fill over the arena. */
  zeroGrad(): void {
    this.grads.storage.fill(0);
    for (const p of this.params) p.gradTouched = false;
  }

  /**
   * The sum of squares of every gradient (one native pass over the arena; gradients a backward did
   * not reach are zero), for the global norm.
   */
  gradSumSquares(): number {
    const g = this.grads.storage;
    return native.sumSquares({ n: g.length, x: g.handle });
  }

  /** grads *= s: one pass over the arena (unscaling a loss-scaled backward). */
  scaleGrads(s: number): void {
    const g = this.grads.storage;
    native.scale({ n: g.length, x: g.handle, s });
  }

  /**
   * One update of every trainable parameter a backward reached since zeroGrad (torch skips a
   * parameter whose .grad is None); lrScale is the schedule's multiplier.
   */
  update(lrScale: number, gradScale = 1): void {
    this.step++;
    const [m, v] = this.moments();
    const params: NativeBuffer[] = [], grads: NativeBuffer[] = [], ms: NativeBuffer[] = [], vs: NativeBuffer[] = [];
    const lrs: number[] = [], weightDecays: number[] = [];
    this.params.forEach((p, i) => {
      if (!p.requiresGrad || !p.gradTouched) return;
      params.push(p.storage.handle); grads.push(p.grad!.handle); ms.push(m.view(i).handle); vs.push(v.view(i).handle);
      lrs.push(this.lrOf[i] * lrScale); weightDecays.push(this.decayOf[i]);
      this.hasState[i] = true;
    });
    if (!params.length) return;
    native.adamwMulti({ params, grads, ms, vs, lrs, weightDecays, step: this.step, beta1: this.beta1, beta2: this.beta2, eps: this.eps, gradScale });
  }

  /** m and v by parameter name (host copies), for checkpoints: those of parameters that have stepped. */
  stateTensors(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    if (!this.m || !this.v) return out;
    this.params.forEach((p, i) => {
      if (!this.hasState[i]) return;
      out.set(`${this.names[i]}.exp_avg`, Float32Array.from(this.m!.view(i).toHost()));
      out.set(`${this.names[i]}.exp_avg_sq`, Float32Array.from(this.v!.view(i).toHost()));
    });
    return out;
  }

  loadStateTensors(t: Map<string, Float32Array>, step: number): void {
    this.step = step;
    const [m, v] = this.moments();
    this.params.forEach((p, i) => {
      const sm = t.get(`${this.names[i]}.exp_avg`), sv = t.get(`${this.names[i]}.exp_avg_sq`);
      if (!sm || !sv) return;
      if (sm.length !== p.size || sv.length !== p.size) throw new TunekitError(`optimizer state for '${this.names[i]}' has ${sm.length} values, expected ${p.size}`);
      m.view(i).copyFrom(sm);
      v.view(i).copyFrom(sv);
      this.hasState[i] = true;
    });
  }

  dispose(): void {
    this.m?.free();
    this.v?.free();
    this.m = this.v = null;
  }
}

/** Global L2 norm of the gradients of these parameters (clip_grad_norm_'s total norm). */
export function gradNorm(params: Parameter[]): number {
  const tensors = params.filter((p) => p.grad).map((p) => p.grad!.handle);
  return tensors.length ? native.gradNorm({ tensors }) : 0;
}
