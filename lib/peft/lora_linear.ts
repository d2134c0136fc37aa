// LoraLinear: PEFT's lora.Linear. A frozen Linear plus a low-rank update,
//   y = x·Wᵀ + b + s·(dropout(x)·Aᵀ)·Bᵀ,   A [r, in], B [out, r], s = alpha/r (alpha/√r with rsLoRA),
// run by the fused native kernels: the base weight is only read, never given a gradient, and the
// dropout mask is recomputed from Philox in the backward instead of being stored. The base weight may be
// bf16 (a base loaded with dtype "bf16" keeps 2 bytes a parameter); lora_A and lora_B are always float32
// (PEFT's autocast_adapter_dtype), as are the products of the rank-r branch.
import { native } from "../native";
import { TunekitError } from "../errors";
import { Tensor, shapeStr } from "../tensor/tensor";
import { Storage, acquire, allocate, release } from "../tensor/storage";
import { Generator, linear } from "../tensor/ops";
import { gradBuffer, isGradEnabled, needsGrad, record, writeGrad } from "../tensor/autograd";
import { Module, Parameter } from "../nn/module";
import { Linear } from "../nn/layers";

export interface LoraOpOptions {
  scale: number;
  dropoutP: number;
  training: boolean;
  gen: Generator;
  name: string;
}

/** The differentiable LoRA linear: x (…, in) → (…, out). Gradients flow to x, A, B and b, never to W. */
export function loraLinear(x: Tensor, W: Tensor, b: Tensor | null, A: Tensor, B: Tensor, o: LoraOpOptions): Tensor {
  const [outF, inF] = W.shape, r = A.shape[0];
  const fail = (msg: string) => new TunekitError(`LoRA layer '${o.name}': ${msg}`);
  if (W.shape.length !== 2 || x.shape[x.shape.length - 1] !== inF) throw fail(`got input ${shapeStr(x.shape)}, expected last dim ${inF}`);
  if (A.shape.length !== 2 || A.shape[1] !== inF || B.shape.length !== 2 || B.shape[0] !== outF || B.shape[1] !== r)
    throw fail(`lora_A ${shapeStr(A.shape)} and lora_B ${shapeStr(B.shape)} do not fit the base weight ${shapeStr(W.shape)}; expected [r, ${inF}] and [${outF}, r]`);
  if (W.requiresGrad && isGradEnabled())
    throw fail("the base weight requires a gradient, but LoRA keeps it frozen (no dW is ever formed); set its requiresGrad to false, or mergeAndUnload() for full fine-tuning");
  const M = x.size / inF;
  const p = o.training ? o.dropoutP : 0;
  const seed = o.gen.seed, offset = p > 0 ? o.gen.take(M * inF) : 0;
  const dev = x.device;
  const y = Tensor.empty([...x.shape.slice(0, -1), outF], dev);
  const hs = acquire(M * r, dev, "f32", false);
  const h = hs.handle;
  const args = { M, in: inF, out: outF, r, x: x.storage.handle, W: W.storage.handle, A: A.storage.handle, B: B.storage.handle, scale: o.scale, dropoutP: p, seed, offset };
  native.loraForward({ ...args, bias: b ? b.storage.handle : null, y: y.storage.handle, h });
  if (!needsGrad(x, A, B, b)) {
    release(hs);
    return y;
  }
  return record(y, {
    op: "loraLinear",
    inputs: b ? [x, A, B, b] : [x, A, B],
    saved: [hs],
    backward(gy) {
      // The kernel always writes dA and dB; a frozen factor gets a scratch buffer.
      const gA = gradBuffer(A), gB = gradBuffer(B), dbias = b ? gradBuffer(b) : null;
      const dA = gA ?? acquire(A.size, dev), dB = gB ?? acquire(B.size, dev);
      const run = (dx: Storage | null) =>
        native.loraBackward({ ...args, h, dy: gy.handle, dx: dx?.handle ?? null, dA: dA.handle, dB: dB.handle, dbias: dbias?.handle ?? null });
      let ran = false;
      writeGrad(x, (dx) => {
        run(dx);
        ran = true;
      });
      if (!ran) run(null); // x needs no gradient (the first adapted layer of a frozen body): skip dx
      if (!gA) release(dA);
      if (!gB) release(dB);
    },
  });
}

/** lora_A / lora_B: a bare weight, so the parameters are named "<layer>.lora_A.weight" as in PEFT. */
export class LoraFactor extends Module {
  readonly weight: Parameter;
  constructor(shape: number[]) {
    super();
    this.weight = this.param("weight", shape);
  }
}

/** Seeded U(-bound, bound) (mulberry32 stream; reproducible across platforms). */
export function uniformFill(a: Float32Array, bound: number, seed: number): void {
  let s = seed >>> 0;
  for (let i = 0; i < a.length; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    a[i] = (2 * u - 1) * bound;
  }
}

export interface LoraLinearOptions {
  r: number;
  alpha: number;
  useRslora: boolean;
  dropout: number;
  gen: Generator;
  /** Full module name, for messages. */
  name: string;
  /** Seed of lora_A's initialisation. */
  seed: number;
}

/**
 * Wraps a Linear: shares its weight and bias Parameters (kept frozen by applyLora), adds lora_A
 * (kaiming-uniform with a = √5 as torch.nn.Linear, i.e. U(±1/√in)) and lora_B (zeros), so the layer
 * starts out computing exactly what the base layer did.
 */
export class LoraLinear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly lora_A: LoraFactor;
  readonly lora_B: LoraFactor;
  readonly r: number;
  readonly alpha: number;
  readonly scaling: number;
  readonly dropout: number;
  readonly name: string;
  private readonly gen: Generator;
  /** True while s·B·A is folded into the base weight (the plain Linear path runs). */
  merged = false;

  constructor(readonly base: Linear, o: LoraLinearOptions) {
    super();
    // The wrapped Linear is no child (its weight and bias are this layer's own parameters, under PEFT's names).
    this.borrow(base);
    if (!(Number.isInteger(o.r) && o.r > 0)) throw new TunekitError(`LoRA layer '${o.name}': r = ${o.r}, expected a positive integer`);
    this.weight = base.weight;
    this.bias = base.bias;
    this.params.set("weight", base.weight);
    if (base.bias) this.params.set("bias", base.bias);
    this.lora_A = this.child("lora_A", new LoraFactor([o.r, base.inFeatures]));
    this.lora_B = this.child("lora_B", new LoraFactor([base.outFeatures, o.r]));
    const a = new Float32Array(this.lora_A.weight.size);
    uniformFill(a, 1 / Math.sqrt(base.inFeatures), o.seed);
    this.lora_A.weight.copyFrom(a);
    this.r = o.r;
    this.alpha = o.alpha;
    this.scaling = o.useRslora ? o.alpha / Math.sqrt(o.r) : o.alpha / o.r;
    this.dropout = o.dropout;
    this.name = o.name;
    this.gen = o.gen;
    this.training = base.training;
  }

  get inFeatures(): number {
    return this.base.inFeatures;
  }
  get outFeatures(): number {
    return this.base.outFeatures;
  }

  forward(x: Tensor): Tensor {
    const A = this.lora_A.weight, B = this.lora_B.weight;
    if (this.merged) {
      if (this.training && needsGrad(A, B))
        throw new TunekitError(`LoRA layer '${this.name}' is merged into its base weight, so lora_A/lora_B would get no gradient; unmergeAdapter(model) before training`);
      return linear(x, this.weight, this.bias, this.name);
    }
    return loraLinear(x, this.weight, this.bias, A, B, { scale: this.scaling, dropoutP: this.dropout, training: this.training, gen: this.gen, name: this.name });
  }

  /**
   * W += s·B·A (in place; W is [out, in], whatever layout the checkpoint used). A bf16 W is merged in
   * float32 and rounded back to bf16 (nearest even) once, as PEFT merges into a bf16 base: the merged
   * weight is what a bf16 checkpoint of the merged model holds, and unmerge() is exact only up to that
   * rounding.
   */
  merge(): void {
    if (this.merged) return;
    this.addDelta(this.scaling);
    this.merged = true;
  }

  /** W -= s·B·A: the inverse of merge() up to float rounding. */
  unmerge(): void {
    if (!this.merged) return;
    this.addDelta(-this.scaling);
    this.merged = false;
  }

  private addDelta(s: number): void {
    const W = this.weight.storage;
    const wide = W.dtype === "f32" ? W : allocate(W.length, W.device, "f32").copyFromStorage(W);
    native.gemm({ M: this.outFeatures, N: this.inFeatures, K: this.r, A: this.lora_B.weight.storage.handle, B: this.lora_A.weight.storage.handle, C: wide.handle, alpha: s, beta: 1 });
    if (wide === W) return;
    W.copyFromStorage(wide);
    release(wide);
  }
}
