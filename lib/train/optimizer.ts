// AdamW over parameter groups (torch.optim.AdamW semantics), one native call per step for all
// tensors. State (m, v) exists only for trainable parameters: frozen ones cost no memory here.
import { native } from "../native";
import { TunekitError } from "../errors";
import { Module, Parameter } from "../nn/module";
import { LayerNorm } from "../nn/layers";

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

/** Layer index of a parameter name: 0 for embeddings, 1..L for transformer layers, L+1 (full rate) otherwise. */
export function layerOf(name: string, numLayers: number): number {
  const m = /\.(?:layer|h)\.(\d+)\./.exec(name);
  if (m) return Number(m[1]) + 1;
  if (/(^|\.)(embeddings|wte|wpe)\./.test(name)) return 0;
  return numLayers + 1;
}

/**
 * HF's default grouping: weight decay on every weight except biases and LayerNorm parameters; with
 * layerDecay, one group per (layer, decay) pair. Only parameters that require grad are included.
 */
export function paramGroups(model: Module & { numLayers?: number }, o: GroupOptions): ParamGroup[] {
  const noDecay = new Set<Parameter>();
  for (const [, m] of model.namedModules()) if (m instanceof LayerNorm) m.parameters().forEach((p) => noDecay.add(p));
  const L = (model as { body?: { numLayers: number } }).body?.numLayers ?? 0;
  const groups = new Map<string, ParamGroup>();
  for (const [name, p] of model.namedParameters()) {
    if (!p.requiresGrad) continue;
    const decay = noDecay.has(p) || name.endsWith(".bias") || name === "bias" ? 0 : o.weightDecay ?? 0;
    const layer = o.layerDecay !== undefined ? Math.min(layerOf(name, L), L) : L;
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
  private readonly m = new Map<Parameter, Float32Array>();
  private readonly v = new Map<Parameter, Float32Array>();

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
  }

  /** Bytes of optimizer state held (m and v of trainable parameters that have stepped). */
  get stateBytes(): number {
    let n = 0;
    for (const a of this.m.values()) n += a.byteLength * 2;
    return n;
  }

  private state(p: Parameter): [Float32Array, Float32Array] {
    let m = this.m.get(p), v = this.v.get(p);
    if (!m || !v) {
      this.m.set(p, (m = native.alloc(p.size)));
      this.v.set(p, (v = native.alloc(p.size)));
    }
    return [m, v];
  }

  /** One update of every parameter that has a gradient; lrScale is the schedule's multiplier. */
  update(lrScale: number, gradScale = 1): void {
    this.step++;
    const params: Float32Array[] = [], grads: Float32Array[] = [], ms: Float32Array[] = [], vs: Float32Array[] = [];
    const lrs: number[] = [], weightDecays: number[] = [];
    for (const g of this.groups)
      for (const p of g.params) {
        if (!p.grad || !p.requiresGrad) continue;
        const [m, v] = this.state(p);
        params.push(p.data); grads.push(p.grad); ms.push(m); vs.push(v);
        lrs.push(g.lr * lrScale); weightDecays.push(g.weightDecay);
      }
    if (!params.length) return;
    native.adamwMulti({ params, grads, ms, vs, lrs, weightDecays, step: this.step, beta1: this.beta1, beta2: this.beta2, eps: this.eps, gradScale });
  }

  /** m and v by parameter name, for checkpoints. */
  stateTensors(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const g of this.groups)
      g.params.forEach((p, i) => {
        const m = this.m.get(p), v = this.v.get(p);
        if (m && v) {
          out.set(`${g.names[i]}.exp_avg`, m);
          out.set(`${g.names[i]}.exp_avg_sq`, v);
        }
      });
    return out;
  }

  loadStateTensors(t: Map<string, Float32Array>, step: number): void {
    this.step = step;
    for (const g of this.groups)
      g.params.forEach((p, i) => {
        const m = t.get(`${g.names[i]}.exp_avg`), v = t.get(`${g.names[i]}.exp_avg_sq`);
        if (!m || !v) return;
        if (m.length !== p.size || v.length !== p.size) throw new TunekitError(`optimizer state for '${g.names[i]}' has ${m.length} values, expected ${p.size}`);
        const [sm, sv] = this.state(p);
        sm.set(m);
        sv.set(v);
      });
  }

  dispose(): void {
    for (const a of [...this.m.values(), ...this.v.values()]) native.free(a);
    this.m.clear();
    this.v.clear();
  }
}

/** Global L2 norm of the gradients of these parameters (clip_grad_norm_'s total norm). */
export function gradNorm(params: Parameter[]): number {
  const tensors = params.filter((p) => p.grad).map((p) => p.grad!);
  return tensors.length ? native.gradNorm({ tensors }) : 0;
}
