// Differentiable ops over the native kernels. Each op checks shapes (naming the op and what it
// expected), runs the forward kernel, and — when a gradient is needed — records a Node whose backward
// calls the backward kernels. Parameter gradients accumulate in place; nothing is done per element in JS
// except for the few small ops on (B, C) tensors noted below.
import { native } from "../native";
import { TunekitError } from "../errors";
import { Tensor, Node, shapeStr } from "./tensor";
import { Storage, acquire, release, fromHost } from "./storage";
import { accumulateGrad, giveGrad, gradBuffer, needsGrad, record, writeGrad } from "./autograd";

/** The addon buffer of a tensor or storage: what ops pass as arguments. */
const h = (t: Tensor | Storage) => (t instanceof Tensor ? t.storage.handle : t.handle);

const last = (t: Tensor) => t.shape[t.shape.length - 1];
const rowsOf = (t: Tensor) => t.size / Math.max(1, last(t));

function check(cond: boolean, msg: () => string): void {
  if (!cond) throw new TunekitError(msg());
}

/**
 * The error for a bf16 weight asked to train. A weight stored as bf16 (fromPretrained(dir, { dtype: "bf16" }))
 * is frozen storage: the kernels read it (gemm's B, LoRA's W, the embedding table), none writes it, and no
 * gradient is ever formed for it, since AdamW updates float32 weights only.
 */
export function bf16TrainError(what: string): TunekitError {
  return new TunekitError(`${what} is stored as bf16 and requires grad; full fine-tuning needs fp32 weights: load with dtype f32, or train with LoRA / a frozen body`);
}

/** Philox stream position for dropout: every call takes a fresh range of counters. */
export class Generator {
  constructor(public seed: number, public offset = 0) {}
  take(n: number): number {
    const o = this.offset;
    this.offset += Math.ceil(n / 4) * 4;
    return o;
  }
}

/**
 * y = x·Wᵀ + b over the last dim of x. W is [out, in] (PyTorch layout), float32 or bf16 (the GEMM's B
 * operand reads either; a bf16 W gives what a float32 W holding the same values gives).
 */
export function linear(x: Tensor, W: Tensor, b: Tensor | null, name = "linear"): Tensor {
  const inF = W.shape[1], outF = W.shape[0];
  check(W.shape.length === 2 && last(x) === inF, () => `shape mismatch in Linear '${name}': got input ${shapeStr(x.shape)}, expected last dim ${inF}`);
  check(!b || (b.shape.length === 1 && b.shape[0] === outF), () => `Linear '${name}': bias has shape ${shapeStr(b!.shape)}, expected [${outF}]`);
  const M = rowsOf(x);
  const y = Tensor.empty([...x.shape.slice(0, -1), outF], x.device); // the GEMM (beta 0) writes all of it
  native.gemm({ M, N: outF, K: inF, A: h(x), B: h(W), C: h(y), transB: true, bias: b && h(b) }); // bias in the epilogue
  if (!needsGrad(x, W, b)) return y;
  return record(y, {
    op: "linear",
    inputs: b ? [x, W, b] : [x, W],
    backward(gy) {
      accumulateGrad(x, (dx, beta) => native.gemm({ M, N: inF, K: outF, A: h(gy), B: h(W), C: h(dx), beta })); // dX = dY·W: W is B again
      if (W.dtype !== "f32" && W.requiresGrad) throw bf16TrainError(`Linear '${name}': the weight`);
      const dW = gradBuffer(W);
      if (dW) native.gemm({ M: outF, N: inF, K: M, A: h(gy), B: h(x), C: h(dW), transA: true, beta: 1 });
      const db = b && gradBuffer(b);
      if (db) native.biasBackward({ rows: M, C: outF, dy: h(gy), dbias: h(db) });
    },
  });
}

/**
 * Host arrays an op needs on its device (ids, masks, targets): on the CPU the arrays themselves, on a
 * device one upload each, kept until the op's backward has run (node.saved) or released at once.
 */
// An array used by several ops of one graph (the attention mask of every layer, the ids of tied
// tables) is uploaded once: live uploads are shared by the host array they came from, counted, and
// released by their last user.
const live = new WeakMap<object, { storage: Storage; users: number }>();

class Uploads {
  private readonly held: object[] = [];
  constructor(readonly device: Tensor["device"]) {}
  of(a: Int32Array | Uint8Array | Float32Array | Storage): Storage {
    if (a instanceof Storage || this.device === "cpu") return a instanceof Storage ? a : fromHost(a, "cpu");
    let e = live.get(a);
    if (!e || e.storage.device !== this.device) live.set(a, (e = { storage: fromHost(a, this.device), users: 0 }));
    e.users++;
    this.held.push(a);
    return e.storage;
  }
  private drop(): void {
    for (const a of this.held) {
      const e = live.get(a)!;
      if (--e.users === 0) {
        live.delete(a);
        release(e.storage); // a device runs ops in order: a later op reusing it is safe
      }
    }
  }
  /** Without a node the uploads are dropped now; with one, after its backward ran. */
  finish(out: Tensor, node: Node | null): Tensor {
    if (!node) {
      this.drop();
      return out;
    }
    if (this.held.length) {
      const backward = node.backward;
      node.backward = (gy) => {
        try {
          backward(gy);
        } finally {
          this.drop();
        }
      };
    }
    return record(out, node);
  }
}

/**
 * out[i] = table[ids[i]]; ids has the leading shape. Rows of paddingIdx get no gradient (torch's padding_idx).
 * The table may be bf16 (rows widened to float32 exactly); then it must be frozen.
 */
export function embedding(ids: Int32Array | Storage, shape: number[], table: Tensor, paddingIdx = -1): Tensor {
  const [V, C] = table.shape;
  const up = new Uploads(table.device);
  const idx = up.of(ids), N = idx.length;
  check(N === shape.reduce((a, b) => a * b, 1), () => `embedding: ${N} ids for shape ${shapeStr(shape)}`);
  const out = Tensor.empty([...shape, C], table.device);
  native.embeddingForward({ N, C, V, ids: h(idx), table: h(table), out: h(out) });
  return up.finish(out, !needsGrad(table) ? null : {
    op: "embedding",
    inputs: [table],
    backward(gy) {
      if (table.dtype !== "f32") throw bf16TrainError(`embedding: the table ${shapeStr(table.shape)}`);
      const dt = gradBuffer(table);
      if (dt) native.embeddingBackward({ N, C, V, ids: h(idx), dout: h(gy), dtable: h(dt), paddingIdx });
    },
  });
}

/** Rows of x viewed as (rows, last dim): y[i] = x[rows[i]]; the gradient scatters back (the embedding kernels). */
export function gatherRows(x: Tensor, rows: Int32Array | Storage): Tensor {
  const C = last(x), R = x.size / C;
  const up = new Uploads(x.device);
  const idx = up.of(rows), N = idx.length;
  const y = Tensor.empty([N, C], x.device);
  native.embeddingForward({ N, C, V: R, ids: h(idx), table: h(x), out: h(y) });
  return up.finish(y, !needsGrad(x) ? null : {
    op: "gatherRows",
    inputs: [x],
    backward(gy) {
      const dx = gradBuffer(x);
      if (dx) native.embeddingBackward({ N, C, V: R, ids: h(idx), dout: h(gy), dtable: h(dx), paddingIdx: -1 });
    },
  });
}

export function add(a: Tensor, b: Tensor): Tensor {
  check(a.size === b.size, () => `add: shapes ${shapeStr(a.shape)} and ${shapeStr(b.shape)} differ`);
  const y = Tensor.empty(a.shape, a.device);
  native.add({ n: a.size, a: h(a), b: h(b), y: h(y) });
  if (!needsGrad(a, b)) return y;
  return record(y, {
    op: "add",
    inputs: [a, b],
    backward(gy) {
      for (const t of [a, b]) writeGrad(t, (g) => g.copyFromStorage(gy)); // a copy, not zero-fill + add
    },
  });
}

export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps: number, name = "LayerNorm"): Tensor {
  const C = last(x), rows = rowsOf(x);
  check(gamma.size === C && beta.size === C, () => `shape mismatch in LayerNorm '${name}': got input ${shapeStr(x.shape)}, expected last dim ${gamma.size}`);
  const y = Tensor.empty(x.shape, x.device);
  const mean = acquire(rows, x.device, "f32", false), rstd = acquire(rows, x.device, "f32", false);
  native.layerNormForward({ rows, C, eps, x: h(x), gamma: h(gamma), beta: h(beta), y: h(y), mean: h(mean), rstd: h(rstd) });
  if (!needsGrad(x, gamma, beta)) {
    release(mean);
    release(rstd);
    return y;
  }
  return record(y, {
    op: "layerNorm",
    inputs: [x, gamma, beta],
    saved: [mean, rstd],
    backward(gy) {
      const dg = gradBuffer(gamma), db = gradBuffer(beta);
      const dgamma = dg ? h(dg) : undefined, dbeta = db ? h(db) : undefined;
      const args = { rows, C, x: h(x), gamma: h(gamma), mean: h(mean), rstd: h(rstd), dy: h(gy), dgamma, dbeta };
      let wrote = false;
      writeGrad(x, (dx) => {
        native.layerNormBackward({ ...args, dx: h(dx) });
        wrote = true;
      });
      if (!wrote && (dgamma || dbeta)) native.layerNormBackward(args);
    },
  });
}

export type GeluApproximate = "none" | "tanh";

export function gelu(x: Tensor, approximate: GeluApproximate = "none"): Tensor {
  const y = Tensor.empty(x.shape, x.device);
  native.geluForward({ n: x.size, x: h(x), y: h(y), approximate });
  if (!needsGrad(x)) return y;
  return record(y, {
    op: "gelu",
    inputs: [x],
    backward(gy) {
      writeGrad(x, (dx) => native.geluBackward({ n: x.size, x: h(x), dy: h(gy), dx: h(dx), approximate }));
    },
  });
}

/** Inverted dropout with a Philox mask: identity when p = 0 or not training. */
export function dropout(x: Tensor, p: number, training: boolean, gen: Generator): Tensor {
  if (!training || p === 0) return x;
  check(p > 0 && p < 1, () => `dropout: p = ${p}, expected 0 <= p < 1`);
  const seed = gen.seed, offset = gen.take(x.size);
  const y = Tensor.empty(x.shape, x.device);
  native.dropout({ n: x.size, x: h(x), y: h(y), p, seed, offset });
  if (!needsGrad(x)) return y;
  return record(y, {
    op: "dropout",
    inputs: [x],
    backward(gy) {
      writeGrad(x, (dx) => native.dropout({ n: x.size, x: h(gy), y: h(dx), p, seed, offset }));
    },
  });
}

/** A (B, T, H·D) view into a tensor: columns [col, col + H·D) of rows with stride ld (packed qkv). */
export interface HeadsView {
  t: Tensor;
  col: number;
  ld: number;
}
export const heads = (t: Tensor, col = 0): HeadsView => ({ t, col, ld: last(t) });

export interface AttentionOptions {
  numHeads: number;
  /** Key/value heads (grouped-query attention: Llama's num_key_value_heads), a divisor of numHeads. Default numHeads. */
  numKvHeads?: number;
  /** With causal: key j is hidden from query i when i − j >= window (Mistral's sliding_window). 0 / absent: none. */
  window?: number;
  /** (B, Tk) bytes, 1 = attend; null for none. */
  keyMask: Uint8Array | Storage | null;
  causal: boolean;
  dropoutP: number;
  training: boolean;
  gen: Generator;
}

/** Fused multi-head attention: softmax(Q·Kᵀ/√D + masks)·V, output (B, T, H·D); k and v have numKvHeads heads. */
export function attention(q: HeadsView, k: HeadsView, v: HeadsView, B: number, T: number, width: number, o: AttentionOptions): Tensor {
  const H = o.numHeads, D = width / H, Hkv = o.numKvHeads ?? H;
  check(Number.isInteger(D), () => `attention: width ${width} is not divisible by ${H} heads`);
  check(Number.isInteger(Hkv) && Hkv > 0 && H % Hkv === 0, () => `attention: ${Hkv} key/value heads do not divide ${H} heads`);
  const p = o.training ? o.dropoutP : 0;
  const seed = o.gen.seed, offset = p > 0 ? o.gen.take(B * H * T * T) : 0;
  const dev = q.t.device;
  const out = Tensor.empty([B, T, width], dev);
  const lse = acquire(B * H * T, dev, "f32", false);
  const at = (v: HeadsView) => h(v.t.storage.view(v.col));
  const up = new Uploads(dev);
  const mask = o.keyMask ? up.of(o.keyMask) : null;
  const args = {
    B, H, Hkv, Tq: T, Tk: T, D,
    q: at(q), ldq: q.ld,
    k: at(k), ldk: k.ld,
    v: at(v), ldv: v.ld,
    o: h(out), ldo: width, lse: h(lse),
    keyMask: mask ? h(mask) : undefined, causal: o.causal, scale: 1 / Math.sqrt(D),
    window: o.window ?? 0,
    dropoutP: p, seed, offset,
  };
  native.attentionForward(args);
  const inputs = [...new Set([q.t, k.t, v.t])];
  if (!needsGrad(...inputs)) {
    release(lse);
    return up.finish(out, null);
  }
  return up.finish(out, {
    op: "attention",
    inputs,
    saved: [lse],
    backward(gy) {
      // q, k, v may live in one packed tensor: compute all three into one scratch of each source's
      // layout, then hand each source its gradient once.
      // The kernel overwrites dq, dk, dv: a source's scratch is zeroed only when the views leave some of
      // its columns uncovered.
      const cover = new Map<Tensor, number>();
      for (const [view, w] of [[q, width], [k, Hkv * D], [v, Hkv * D]] as [HeadsView, number][]) cover.set(view.t, (cover.get(view.t) ?? 0) + w);
      const scratch = new Map<Tensor, Storage>();
      const buf = (t: Tensor) => {
        let b = scratch.get(t);
        if (!b) scratch.set(t, (b = acquire(t.size, dev, "f32", cover.get(t) !== last(t))));
        return b;
      };
      const dq = buf(q.t), dk = buf(k.t), dv = buf(v.t);
      native.attentionBackward({
        ...args, dout: h(gy), lddo: width,
        dq: h(dq.view(q.col)), lddq: q.ld, dk: h(dk.view(k.col)), lddk: k.ld, dv: h(dv.view(v.col)), lddv: v.ld,
      });
      for (const [t, g] of scratch) giveGrad(t, g); // handed over, no copy, when t has no gradient yet
    },
  });
}

/** Rows of x (B, T, C) at one position per batch element → (B, C): a row gather (the embedding kernels). */
export function selectTokens(x: Tensor, positions: number[]): Tensor {
  const [B, T, C] = x.shape;
  check(x.shape.length === 3 && positions.length === B, () => `selectTokens: expected (B, T, C) and ${x.shape[0]} positions`);
  for (const t of positions) check(Number.isInteger(t) && t >= 0 && t < T, () => `selectTokens: position ${t} out of range 0..${T - 1}`);
  return gatherRows(x, Int32Array.from(positions, (t, b) => b * T + t));
}

type UnaryKind = "tanh" | "relu" | "sigmoid" | "silu";

/** y = f(x) element-wise; the backward reads y (tanh, relu, sigmoid) or x (silu). */
function unary(x: Tensor, kind: UnaryKind): Tensor {
  const y = Tensor.empty(x.shape, x.device);
  native.unaryForward({ n: x.size, kind, x: h(x), y: h(y) });
  if (!needsGrad(x)) return y;
  return record(y, {
    op: kind,
    inputs: [x],
    backward(gy) {
      writeGrad(x, (dx) => native.unaryBackward({ n: x.size, kind, x: h(x), y: h(y), dy: h(gy), dx: h(dx) }));
    },
  });
}
export const tanh = (x: Tensor) => unary(x, "tanh");
export const relu = (x: Tensor) => unary(x, "relu");
export const sigmoid = (x: Tensor) => unary(x, "sigmoid");
export const silu = (x: Tensor) => unary(x, "silu");

/** Mean (or sum / divisor) softmax cross-entropy over rows of logits; targets of ignoreIndex are skipped. */
export function crossEntropy(logits: Tensor, targets: Int32Array | Storage, opts: { ignoreIndex?: number; divisor?: number } = {}): Tensor {
  const V = last(logits), N = rowsOf(logits);
  check(targets.length === N, () => `crossEntropy: ${targets.length} targets for ${N} rows of logits ${shapeStr(logits.shape)}`);
  const grad = needsGrad(logits);
  const dlogits = grad ? acquire(logits.size, logits.device, "f32", false) : undefined;
  const up = new Uploads(logits.device);
  const tg = up.of(targets);
  const loss = Tensor.empty([1], logits.device); // written where the loss is computed: no round trip on a device
  native.crossEntropy({ N, V, logits: h(logits), targets: h(tg), ignoreIndex: opts.ignoreIndex ?? -100, divisor: opts.divisor ?? 0, dlogits: dlogits && h(dlogits), lossOut: h(loss) });
  up.finish(logits, null); // targets are not needed by the backward (dlogits holds the gradient)
  if (!grad) return loss;
  return record(loss, {
    op: "crossEntropy",
    inputs: [logits],
    saved: [dlogits!],
    backward(gy) {
      writeGrad(logits, (dst) => {
        dst.copyFromStorage(dlogits!);
        native.scale({ n: dst.length, x: h(dst), s: 1, sp: h(gy) });
      });
    },
  });
}

/** sum(x · w) for a constant w: a scalar probe loss (used by parity tests). */
export function weightedSum(x: Tensor, w: Float32Array): Tensor {
  check(w.length === x.size, () => `weightedSum: ${w.length} weights for ${x.size} elements`);
  const up = new Uploads(x.device);
  const ws = up.of(w);
  const y = Tensor.empty([1], x.device);
  native.dotForward({ n: x.size, x: h(x), w: h(ws), y: h(y) });
  return up.finish(y, !needsGrad(x) ? null : {
    op: "weightedSum",
    inputs: [x],
    backward(gy) {
      const g = gradBuffer(x)!;
      native.axpby({ n: x.size, a: h(ws), ap: h(gy), beta: 1, b: h(g), y: h(g) });
    },
  });
}

/** Column j of the last dim: x (..., K) → (...). Used to split QA's (B, T, 2) logits. */
export function selectColumn(x: Tensor, j: number): Tensor {
  const K = last(x), rows = rowsOf(x);
  check(Number.isInteger(j) && j >= 0 && j < K, () => `selectColumn: column ${j} out of range 0..${K - 1}`);
  const y = Tensor.empty(x.shape.slice(0, -1), x.device);
  native.copyStrided({ rows, cols: 1, src: h(x.storage.view(j)), srcLd: K, dst: h(y) });
  if (!needsGrad(x)) return y;
  return record(y, {
    op: "selectColumn",
    inputs: [x],
    backward(gy) {
      const g = gradBuffer(x)!;
      native.copyStrided({ rows, cols: 1, src: h(gy), dst: h(g.view(j)), dstLd: K, accumulate: true });
    },
  });
}

/** Mean of x (B, T, C) over the positions where mask (B·T) is 1 → (B, C): sentence-transformers' mean pooling. */
export function meanPool(x: Tensor, mask: Uint8Array | Storage): Tensor {
  const [B, T, C] = x.shape;
  check(x.shape.length === 3 && mask.length === B * T, () => `meanPool: expected (B, T, C) and a B·T mask`);
  const up = new Uploads(x.device);
  const m = up.of(mask);
  const y = Tensor.empty([B, C], x.device);
  native.maskedMeanForward({ B, T, C, x: h(x), mask: h(m), y: h(y) });
  return up.finish(y, !needsGrad(x) ? null : {
    op: "meanPool",
    inputs: [x],
    backward(gy) {
      writeGrad(x, (dx) => native.maskedMeanBackward({ B, T, C, mask: h(m), dy: h(gy), dx: h(dx) }));
    },
  });
}

/** Row-wise cosine similarity of a and b (N, C) → (N); each norm clamped at 1e-8. */
export function cosineSimilarity(a: Tensor, b: Tensor): Tensor {
  const C = last(a), N = rowsOf(a);
  check(a.size === b.size, () => `cosineSimilarity: shapes ${shapeStr(a.shape)} and ${shapeStr(b.shape)} differ`);
  const y = Tensor.empty([N], a.device);
  native.cosineForward({ N, C, a: h(a), b: h(b), y: h(y) });
  if (!needsGrad(a, b)) return y;
  return record(y, {
    op: "cosineSimilarity",
    inputs: [a, b],
    backward(gy) {
      // The kernel overwrites da and db: each through writeGrad (a and b may be one tensor).
      const both = (da: Storage | null, db: Storage | null) => native.cosineBackward({ N, C, a: h(a), b: h(b), dy: h(gy), da: da && h(da), db: db && h(db) });
      writeGrad(a, (da) => both(da, null));
      writeGrad(b, (db) => both(null, db));
    },
  });
}

/** Rows of x (N, C) scaled to unit L2 norm (clamped at 1e-8). */
export function l2Normalize(x: Tensor): Tensor {
  const C = last(x), N = rowsOf(x);
  const y = Tensor.empty(x.shape, x.device);
  const norm = acquire(N, x.device, "f32", false);
  native.l2NormForward({ N, C, x: h(x), y: h(y), norm: h(norm) });
  if (!needsGrad(x)) {
    release(norm);
    return y;
  }
  return record(y, {
    op: "l2Normalize",
    inputs: [x],
    saved: [norm],
    backward(gy) {
      writeGrad(x, (dx) => native.l2NormBackward({ N, C, y: h(y), norm: h(norm), dy: h(gy), dx: h(dx) }));
    },
  });
}

/** Scaled cosine similarities of every row of a with every row of b: (N, C) × (M, C) → (N, M). */
export function cosineMatrix(a: Tensor, b: Tensor, scale: number): Tensor {
  check(last(b) === last(a), () => `cosineMatrix: widths ${last(a)} and ${last(b)} differ`);
  return matmulT(l2Normalize(a), l2Normalize(b), scale);
}

/** scale · a · bᵀ for a (N, C), b (M, C) → (N, M). */
export function matmulT(a: Tensor, b: Tensor, scale = 1): Tensor {
  const C = last(a), N = rowsOf(a), M = rowsOf(b);
  check(last(b) === C, () => `matmulT: widths ${C} and ${last(b)} differ`);
  const y = Tensor.empty([N, M], a.device);
  native.gemm({ M: N, N: M, K: C, A: h(a), B: h(b), C: h(y), transB: true, alpha: scale });
  if (!needsGrad(a, b)) return y;
  return record(y, {
    op: "matmulT",
    inputs: [a, b],
    backward(gy) {
      writeGrad(a, (da) => native.gemm({ M: N, N: C, K: M, A: h(gy), B: h(b), C: h(da), alpha: scale }));
      writeGrad(b, (db) => native.gemm({ M, N: C, K: N, A: h(gy), B: h(a), C: h(db), transA: true, alpha: scale }));
    },
  });
}

/** A scalar loss over x and a constant target, by the mse or bce kernels. */
function pointLoss(kind: "mse" | "bce", x: Tensor, target: Float32Array, divisor: number): Tensor {
  const up = new Uploads(x.device);
  const t = up.of(target);
  const y = Tensor.empty([1], x.device);
  const fwd = kind === "mse" ? native.mseForward : native.bceForward, bwd = kind === "mse" ? native.mseBackward : native.bceBackward;
  fwd({ n: x.size, x: h(x), target: h(t), divisor, loss: h(y) });
  return up.finish(y, !needsGrad(x) ? null : {
    op: kind === "mse" ? "mseLoss" : "bceWithLogits",
    inputs: [x],
    backward(gy) {
      writeGrad(x, (dx) => bwd({ n: x.size, x: h(x), target: h(t), divisor, dy: h(gy), dx: h(dx) }));
    },
  });
}

/** sum((x − target)²) / divisor (divisor 0 → the number of elements): MSELoss. */
export function mseLoss(x: Tensor, target: Float32Array, divisor = 0): Tensor {
  check(target.length === x.size, () => `mseLoss: ${target.length} targets for ${x.size} predictions`);
  return pointLoss("mse", x, target, divisor);
}

/** Binary cross-entropy with logits, summed / divisor (0 → number of elements): BCEWithLogitsLoss. */
export function bceWithLogits(x: Tensor, target: Float32Array, divisor = 0): Tensor {
  check(target.length === x.size, () => `bceWithLogits: ${target.length} targets for ${x.size} logits`);
  return pointLoss("bce", x, target, divisor);
}

/** a·s + b·t for scalars (combining losses, e.g. QA start + end). */
export function combine(a: Tensor, s: number, b: Tensor, t: number): Tensor {
  check(a.size === 1 && b.size === 1, () => `combine: expected two scalars, got ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
  const y = Tensor.empty([1], a.device);
  native.axpby({ n: 1, alpha: s, a: h(a), beta: t, b: h(b), y: h(y) });
  if (!needsGrad(a, b)) return y;
  return record(y, {
    op: "combine",
    inputs: [a, b],
    backward(gy) {
      for (const [x, k] of [[a, s], [b, t]] as [Tensor, number][]) {
        const g = gradBuffer(x);
        if (g) native.axpby({ n: 1, alpha: k, a: h(gy), beta: 1, b: h(g), y: h(g) });
      }
    },
  });
}
