// Differentiable ops over the native kernels. Each op checks shapes (naming the op and what it
// expected), runs the forward kernel, and — when a gradient is needed — records a Node whose backward
// calls the backward kernels. Parameter gradients accumulate in place; nothing is done per element in JS
// except for the few small ops on (B, C) tensors noted below.
import { native } from "../native";
import { TunekitError } from "../errors";
import { Tensor, shapeStr } from "./tensor";
import { Storage, acquire, release, fromHost } from "./storage";
import { gradBuffer, needsGrad, record, writeGrad } from "./autograd";

/** The addon buffer of a tensor or storage: what ops pass as arguments. */
const h = (t: Tensor | Storage) => (t instanceof Tensor ? t.storage.handle : t.handle);

const last = (t: Tensor) => t.shape[t.shape.length - 1];
const rowsOf = (t: Tensor) => t.size / Math.max(1, last(t));

function check(cond: boolean, msg: () => string): void {
  if (!cond) throw new TunekitError(msg());
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

/** y = x·Wᵀ + b over the last dim of x. W is [out, in] (PyTorch layout). */
export function linear(x: Tensor, W: Tensor, b: Tensor | null, name = "linear"): Tensor {
  const inF = W.shape[1], outF = W.shape[0];
  check(W.shape.length === 2 && last(x) === inF, () => `shape mismatch in Linear '${name}': got input ${shapeStr(x.shape)}, expected last dim ${inF}`);
  check(!b || (b.shape.length === 1 && b.shape[0] === outF), () => `Linear '${name}': bias has shape ${shapeStr(b!.shape)}, expected [${outF}]`);
  const M = rowsOf(x);
  const y = Tensor.empty([...x.shape.slice(0, -1), outF], x.device); // the GEMM (beta 0) writes all of it
  native.gemm({ M, N: outF, K: inF, A: h(x), B: h(W), C: h(y), transB: true });
  if (b) native.biasAdd({ rows: M, C: outF, x: h(y), bias: h(b), y: h(y) });
  if (!needsGrad(x, W, b)) return y;
  return record(y, {
    op: "linear",
    inputs: b ? [x, W, b] : [x, W],
    backward(gy) {
      writeGrad(x, (dx) => native.gemm({ M, N: inF, K: outF, A: h(gy), B: h(W), C: h(dx) }));
      const dW = gradBuffer(W);
      if (dW) native.gemm({ M: outF, N: inF, K: M, A: h(gy), B: h(x), C: h(dW), transA: true, beta: 1 });
      const db = b && gradBuffer(b);
      if (db) native.biasBackward({ rows: M, C: outF, dy: h(gy), dbias: h(db) });
    },
  });
}

/** Host int32 values (ids, row indices) as storage on the device of `like`. */
export function ints(a: Int32Array | Storage, like: Tensor): Storage {
  return a instanceof Storage ? a : fromHost(a, like.device);
}

/** out[i] = table[ids[i]]; ids has the leading shape. Rows of paddingIdx get no gradient (torch's padding_idx). */
export function embedding(ids: Int32Array | Storage, shape: number[], table: Tensor, paddingIdx = -1): Tensor {
  const [V, C] = table.shape;
  const idx = ints(ids, table), N = idx.length;
  check(N === shape.reduce((a, b) => a * b, 1), () => `embedding: ${N} ids for shape ${shapeStr(shape)}`);
  const out = Tensor.empty([...shape, C], table.device);
  native.embeddingForward({ N, C, V, ids: h(idx) as Int32Array, table: h(table), out: h(out) });
  if (!needsGrad(table)) return out;
  return record(out, {
    op: "embedding",
    inputs: [table],
    backward(gy) {
      const dt = gradBuffer(table);
      if (dt) native.embeddingBackward({ N, C, V, ids: h(idx) as Int32Array, dout: h(gy), dtable: h(dt), paddingIdx });
    },
  });
}

/** Rows of x viewed as (rows, last dim): y[i] = x[rows[i]]; the gradient scatters back (the embedding kernels). */
export function gatherRows(x: Tensor, rows: Int32Array | Storage): Tensor {
  const C = last(x), R = x.size / C;
  const idx = ints(rows, x), N = idx.length;
  const y = Tensor.empty([N, C], x.device);
  native.embeddingForward({ N, C, V: R, ids: h(idx) as Int32Array, table: h(x), out: h(y) });
  if (!needsGrad(x)) return y;
  return record(y, {
    op: "gatherRows",
    inputs: [x],
    backward(gy) {
      const dx = gradBuffer(x);
      if (dx) native.embeddingBackward({ N, C, V: R, ids: h(idx) as Int32Array, dout: h(gy), dtable: h(dx), paddingIdx: -1 });
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
      for (const t of [a, b]) {
        const g = gradBuffer(t);
        if (g) native.add({ n: t.size, a: h(g), b: h(gy), y: h(g) });
      }
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
  /** (B, Tk) bytes, 1 = attend; null for none. */
  keyMask: Uint8Array | Storage | null;
  causal: boolean;
  dropoutP: number;
  training: boolean;
  gen: Generator;
}

/** Fused multi-head attention: softmax(Q·Kᵀ/√D + masks)·V, output (B, T, H·D). */
export function attention(q: HeadsView, k: HeadsView, v: HeadsView, B: number, T: number, width: number, o: AttentionOptions): Tensor {
  const H = o.numHeads, D = width / H;
  check(Number.isInteger(D), () => `attention: width ${width} is not divisible by ${H} heads`);
  const p = o.training ? o.dropoutP : 0;
  const seed = o.gen.seed, offset = p > 0 ? o.gen.take(B * H * T * T) : 0;
  const dev = q.t.device;
  const out = Tensor.empty([B, T, width], dev);
  const lse = acquire(B * H * T, dev, "f32", false);
  const at = (v: HeadsView) => h(v.t.storage.view(v.col));
  const mask = o.keyMask ? (o.keyMask instanceof Storage ? o.keyMask : fromHost(o.keyMask, dev)) : null;
  const args = {
    B, H, Tq: T, Tk: T, D,
    q: at(q), ldq: q.ld,
    k: at(k), ldk: k.ld,
    v: at(v), ldv: v.ld,
    o: h(out), ldo: width, lse: h(lse),
    keyMask: mask ? (h(mask) as Uint8Array) : undefined, causal: o.causal, scale: 1 / Math.sqrt(D),
    dropoutP: p, seed, offset,
  };
  native.attentionForward(args);
  const inputs = [...new Set([q.t, k.t, v.t])];
  if (!needsGrad(...inputs)) {
    release(lse);
    return out;
  }
  return record(out, {
    op: "attention",
    inputs,
    saved: [lse],
    backward(gy) {
      // q, k, v may live in one packed tensor: compute all three into one scratch of each source's
      // layout, then hand each source its gradient once.
      const scratch = new Map<Tensor, Storage>();
      const buf = (t: Tensor) => {
        let b = scratch.get(t);
        if (!b) scratch.set(t, (b = acquire(t.size, dev)));
        return b;
      };
      const dq = buf(q.t), dk = buf(k.t), dv = buf(v.t);
      native.attentionBackward({
        ...args, dout: h(gy), lddo: width,
        dq: h(dq.view(q.col)), lddq: q.ld, dk: h(dk.view(k.col)), lddk: k.ld, dv: h(dv.view(v.col)), lddv: v.ld,
      });
      for (const [t, g] of scratch) {
        writeGrad(t, (dst) => dst.copyFromStorage(g));
        release(g);
      }
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

// Small elementwise ops used on (B, C) heads only (pooler tanh, classifier ReLU): plain loops.
function unary(x: Tensor, op: string, f: (v: number) => number, df: (v: number, y: number) => number): Tensor {
  const y = new Tensor(x.shape);
  for (let i = 0; i < x.size; i++) y.toHost()[i] = f(x.toHost()[i]);
  if (!needsGrad(x)) return y;
  return record(y, {
    op,
    inputs: [x],
    backward(gyS) {
      const gy = gyS.toHost();
      const gx = gradBuffer(x)!.toHost();
      for (let i = 0; i < x.size; i++) gx[i] += gy[i] * df(x.toHost()[i], y.toHost()[i]);
    },
  });
}
export const tanh = (x: Tensor) => unary(x, "tanh", Math.tanh, (_v, y) => 1 - y * y);
export const relu = (x: Tensor) => unary(x, "relu", (v) => (v > 0 ? v : 0), (v) => (v > 0 ? 1 : 0));

/** Mean (or sum / divisor) softmax cross-entropy over rows of logits; targets of ignoreIndex are skipped. */
export function crossEntropy(logits: Tensor, targets: Int32Array | Storage, opts: { ignoreIndex?: number; divisor?: number } = {}): Tensor {
  const V = last(logits), N = rowsOf(logits);
  check(targets.length === N, () => `crossEntropy: ${targets.length} targets for ${N} rows of logits ${shapeStr(logits.shape)}`);
  const grad = needsGrad(logits);
  const dlogits = grad ? acquire(logits.size, logits.device, "f32", false) : undefined;
  const tg = ints(targets, logits);
  const r = native.crossEntropy({ N, V, logits: h(logits), targets: h(tg) as Int32Array, ignoreIndex: opts.ignoreIndex ?? -100, divisor: opts.divisor ?? 0, dlogits: dlogits && h(dlogits) });
  const loss = Tensor.from([1], [r.loss], logits.device);
  if (!grad) return loss;
  return record(loss, {
    op: "crossEntropy",
    inputs: [logits],
    saved: [dlogits!],
    backward(gy) {
      writeGrad(logits, (dst) => {
        dst.copyFromStorage(dlogits!);
        const s = gy.toHost()[0];
        if (s !== 1) native.scale({ n: dst.length, x: h(dst), s });
      });
    },
  });
}

/** sum(x · w) for a constant w: a scalar probe loss (used by parity tests, and cosine losses). */
export function weightedSum(x: Tensor, w: Float32Array): Tensor {
  check(w.length === x.size, () => `weightedSum: ${w.length} weights for ${x.size} elements`);
  let s = 0;
  for (let i = 0; i < x.size; i++) s += x.toHost()[i] * w[i];
  const y = Tensor.from([1], [s]);
  if (!needsGrad(x)) return y;
  return record(y, {
    op: "weightedSum",
    inputs: [x],
    backward(gyS) {
      const gy = gyS.toHost();
      const g = gradBuffer(x)!.toHost();
      for (let i = 0; i < x.size; i++) g[i] += gy[0] * w[i];
    },
  });
}

/** Column j of the last dim: x (..., K) → (...). Used to split QA's (B, T, 2) logits. */
export function selectColumn(x: Tensor, j: number): Tensor {
  const K = last(x), rows = rowsOf(x);
  check(j >= 0 && j < K, () => `selectColumn: column ${j} out of range 0..${K - 1}`);
  const y = new Tensor(x.shape.slice(0, -1));
  for (let r = 0; r < rows; r++) y.toHost()[r] = x.toHost()[r * K + j];
  if (!needsGrad(x)) return y;
  return record(y, {
    op: "selectColumn",
    inputs: [x],
    backward(gyS) {
      const gy = gyS.toHost();
      const g = gradBuffer(x)!.toHost();
      for (let r = 0; r < rows; r++) g[r * K + j] += gy[r];
    },
  });
}

/** Mean of x (B, T, C) over the positions where mask (B·T) is 1 → (B, C): sentence-transformers' mean pooling. */
export function meanPool(x: Tensor, mask: Uint8Array): Tensor {
  const [B, T, C] = x.shape;
  check(x.shape.length === 3 && mask.length === B * T, () => `meanPool: expected (B, T, C) and a B·T mask`);
  const y = new Tensor([B, C]);
  const counts = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) if (mask[b * T + t]) counts[b]++;
    const n = Math.max(counts[b], 1e-9);
    for (let t = 0; t < T; t++) {
      if (!mask[b * T + t]) continue;
      for (let c = 0; c < C; c++) y.toHost()[b * C + c] += x.toHost()[(b * T + t) * C + c] / n;
    }
  }
  if (!needsGrad(x)) return y;
  return record(y, {
    op: "meanPool",
    inputs: [x],
    backward(gyS) {
      const gy = gyS.toHost();
      const g = gradBuffer(x)!.toHost();
      for (let b = 0; b < B; b++) {
        const n = Math.max(counts[b], 1e-9);
        for (let t = 0; t < T; t++) {
          if (!mask[b * T + t]) continue;
          for (let c = 0; c < C; c++) g[(b * T + t) * C + c] += gy[b * C + c] / n;
        }
      }
    },
  });
}

/** Row-wise cosine similarity of a and b (N, C) → (N). */
export function cosineSimilarity(a: Tensor, b: Tensor): Tensor {
  const C = last(a), N = rowsOf(a);
  check(a.size === b.size, () => `cosineSimilarity: shapes ${shapeStr(a.shape)} and ${shapeStr(b.shape)} differ`);
  const y = new Tensor([N]);
  const na = new Float64Array(N), nb = new Float64Array(N), dot = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    for (let c = 0; c < C; c++) {
      const u = a.toHost()[i * C + c], v = b.toHost()[i * C + c];
      dot[i] += u * v; na[i] += u * u; nb[i] += v * v;
    }
    na[i] = Math.max(Math.sqrt(na[i]), 1e-8); nb[i] = Math.max(Math.sqrt(nb[i]), 1e-8);
    y.toHost()[i] = dot[i] / (na[i] * nb[i]);
  }
  if (!needsGrad(a, b)) return y;
  return record(y, {
    op: "cosineSimilarity",
    inputs: [a, b],
    backward(gyS) {
      const gy = gyS.toHost();
      const ga = gradBuffer(a)?.toHost(), gb = gradBuffer(b)?.toHost();
      for (let i = 0; i < N; i++) {
        const cos = y.toHost()[i];
        for (let c = 0; c < C; c++) {
          const u = a.toHost()[i * C + c], v = b.toHost()[i * C + c];
          if (ga) ga[i * C + c] += gy[i] * (v / (na[i] * nb[i]) - (cos * u) / (na[i] * na[i]));
          if (gb) gb[i * C + c] += gy[i] * (u / (na[i] * nb[i]) - (cos * v) / (nb[i] * nb[i]));
        }
      }
    },
  });
}

/** Scaled cosine similarities of every row of a with every row of b: (N, C) × (M, C) → (N, M). */
export function cosineMatrix(a: Tensor, b: Tensor, scale: number): Tensor {
  const C = last(a), N = rowsOf(a), M = rowsOf(b);
  check(last(b) === C, () => `cosineMatrix: widths ${C} and ${last(b)} differ`);
  const norm = (t: Tensor, rows: number) => {
    const n = new Float64Array(rows);
    for (let i = 0; i < rows; i++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += t.toHost()[i * C + c] ** 2;
      n[i] = Math.max(Math.sqrt(s), 1e-8);
    }
    return n;
  };
  const na = norm(a, N), nb = norm(b, M);
  const y = new Tensor([N, M]);
  for (let i = 0; i < N; i++)
    for (let j = 0; j < M; j++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += a.toHost()[i * C + c] * b.toHost()[j * C + c];
      y.toHost()[i * M + j] = (scale * s) / (na[i] * nb[j]);
    }
  if (!needsGrad(a, b)) return y;
  return record(y, {
    op: "cosineMatrix",
    inputs: [a, b],
    backward(gyS) {
      const gy = gyS.toHost();
      const ga = gradBuffer(a)?.toHost(), gb = gradBuffer(b)?.toHost();
      for (let i = 0; i < N; i++)
        for (let j = 0; j < M; j++) {
          const g = gy[i * M + j];
          if (!g) continue;
          const cos = y.toHost()[i * M + j] / scale;
          for (let c = 0; c < C; c++) {
            const u = a.toHost()[i * C + c], v = b.toHost()[j * C + c];
            if (ga) ga[i * C + c] += g * scale * (v / (na[i] * nb[j]) - (cos * u) / (na[i] * na[i]));
            if (gb) gb[j * C + c] += g * scale * (u / (na[i] * nb[j]) - (cos * v) / (nb[j] * nb[j]));
          }
        }
    },
  });
}

/** sum((x − target)²) / divisor (divisor 0 → the number of elements): MSELoss. */
export function mseLoss(x: Tensor, target: Float32Array, divisor = 0): Tensor {
  check(target.length === x.size, () => `mseLoss: ${target.length} targets for ${x.size} predictions`);
  const n = divisor > 0 ? divisor : x.size;
  let s = 0;
  for (let i = 0; i < x.size; i++) s += (x.toHost()[i] - target[i]) ** 2;
  const y = Tensor.from([1], [s / n]);
  if (!needsGrad(x)) return y;
  return record(y, {
    op: "mseLoss",
    inputs: [x],
    backward(gyS) {
      const gy = gyS.toHost();
      const g = gradBuffer(x)!.toHost();
      for (let i = 0; i < x.size; i++) g[i] += (gy[0] * 2 * (x.toHost()[i] - target[i])) / n;
    },
  });
}

/** Binary cross-entropy with logits, summed / divisor (0 → number of elements): BCEWithLogitsLoss. */
export function bceWithLogits(x: Tensor, target: Float32Array, divisor = 0): Tensor {
  check(target.length === x.size, () => `bceWithLogits: ${target.length} targets for ${x.size} logits`);
  const n = divisor > 0 ? divisor : x.size;
  let s = 0;
  for (let i = 0; i < x.size; i++) {
    const z = x.toHost()[i];
    s += Math.max(z, 0) - z * target[i] + Math.log1p(Math.exp(-Math.abs(z)));
  }
  const y = Tensor.from([1], [s / n]);
  if (!needsGrad(x)) return y;
  return record(y, {
    op: "bceWithLogits",
    inputs: [x],
    backward(gyS) {
      const gy = gyS.toHost();
      const g = gradBuffer(x)!.toHost();
      for (let i = 0; i < x.size; i++) g[i] += (gy[0] * (1 / (1 + Math.exp(-x.toHost()[i])) - target[i])) / n;
    },
  });
}

/** a·s + b·t for scalars (combining losses, e.g. QA start + end). */
export function combine(a: Tensor, s: number, b: Tensor, t: number): Tensor {
  const y = Tensor.from([1], [a.toHost()[0] * s + b.toHost()[0] * t]);
  if (!needsGrad(a, b)) return y;
  return record(y, {
    op: "combine",
    inputs: [a, b],
    backward(gyS) {
      const gy = gyS.toHost();
      const ga = gradBuffer(a)?.toHost(), gb = gradBuffer(b)?.toHost();
      if (ga) ga[0] += gy[0] * s;
      if (gb) gb[0] += gy[0] * t;
    },
  });
}
