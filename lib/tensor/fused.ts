// Fused ops: what BERT's body runs as one kernel instead of several. Each computes exactly what the
// unfused sequence in ops.ts computes (the same float operations in the same order), with one pass
// over memory fewer per fused step.
//   linearFused:       x·Wᵀ + b (+ residual) (→ GELU), all in the GEMM's epilogue while C is in registers.
//   residualLayerNorm: LayerNorm(x + residual), the sum formed row by row inside the LayerNorm kernel.
import { native } from "../native";
import { TunekitError } from "../errors";
import { Tensor, shapeStr } from "./tensor";
import { Storage, acquire, release } from "./storage";
import { accumulateGrad, gradBuffer, giveGrad, needsGrad, record, writeGrad } from "./autograd";
import { bf16TrainError, type GeluApproximate } from "./ops";

const h = (t: Tensor | Storage) => (t instanceof Tensor ? t.storage.handle : t.handle);
const last = (t: Tensor) => t.shape[t.shape.length - 1];

function check(cond: boolean, msg: () => string): void {
  if (!cond) throw new TunekitError(msg());
}

/** What the GEMM epilogue adds to a Linear: a residual (y's shape) and/or a GELU after it. */
export interface LinearEpilogue {
  residual?: Tensor | null;
  /** GELU's form ("none" = erf, "tanh"), or null / absent for no activation. */
  activation?: GeluApproximate | null;
}

/**
 * act(x·Wᵀ + b + residual) in one GEMM. GELU's backward needs its input: when a gradient is wanted the
 * epilogue also writes the pre-activation (kept until the backward), rather than recomputing it, which
 * would take a second GEMM; it is the tensor the unfused path kept anyway (the Linear's output).
 */
export function linearFused(x: Tensor, W: Tensor, b: Tensor | null, ep: LinearEpilogue, name = "linear"): Tensor {
  const inF = W.shape[1], outF = W.shape[0];
  check(W.shape.length === 2 && last(x) === inF, () => `shape mismatch in Linear '${name}': got input ${shapeStr(x.shape)}, expected last dim ${inF}`);
  check(!b || (b.shape.length === 1 && b.shape[0] === outF), () => `Linear '${name}': bias has shape ${shapeStr(b!.shape)}, expected [${outF}]`);
  const M = x.size / inF, r = ep.residual ?? null;
  const shape = [...x.shape.slice(0, -1), outF];
  check(!r || r.size === M * outF, () => `Linear '${name}': residual has shape ${shapeStr(r!.shape)}, expected ${shapeStr(shape)}`);
  const approximate = ep.activation ?? null;
  const activation = approximate === null ? "none" : approximate === "tanh" ? "gelu_tanh" : "gelu";
  const grad = needsGrad(x, W, b, r);
  const y = Tensor.empty(shape, x.device);
  const pre = grad && approximate !== null ? acquire(y.size, x.device, "f32", false) : null;
  native.gemm({ M, N: outF, K: inF, A: h(x), B: h(W), C: h(y), transB: true, bias: b && h(b), residual: r && h(r), pre: pre && h(pre), activation });
  if (!grad) return y;
  const inputs = [x, W];
  if (b) inputs.push(b);
  if (r) inputs.push(r);
  return record(y, {
    op: "linearFused",
    inputs,
    saved: pre ? [pre] : undefined,
    backward(gy) {
      if (r) writeGrad(r, (dr) => dr.copyFromStorage(gy)); // d(residual) = dy
      // dz: the gradient at the GEMM's output, GELU's backward written over the saved pre-activation
      if (pre) native.geluBackward({ n: y.size, x: h(pre), dy: h(gy), dx: h(pre), approximate: approximate! });
      const gz = pre ?? gy;
      accumulateGrad(x, (dx, beta) => native.gemm({ M, N: inF, K: outF, A: h(gz), B: h(W), C: h(dx), beta }));
      if (W.dtype !== "f32" && W.requiresGrad) throw bf16TrainError(`Linear '${name}': the weight`);
      const dW = gradBuffer(W);
      if (dW) native.gemm({ M: outF, N: inF, K: M, A: h(gz), B: h(x), C: h(dW), transA: true, beta: 1 });
      const db = b && gradBuffer(b);
      if (db) native.biasBackward({ rows: M, C: outF, dy: h(gz), dbias: h(db) });
    },
  });
}

/** LayerNorm(x + residual) in one kernel; the sum is not stored (the backward forms it again). */
export function residualLayerNorm(x: Tensor, residual: Tensor, gamma: Tensor, beta: Tensor, eps: number, name = "LayerNorm"): Tensor {
  const C = last(x), rows = x.size / Math.max(1, C);
  check(gamma.size === C && beta.size === C, () => `shape mismatch in LayerNorm '${name}': got input ${shapeStr(x.shape)}, expected last dim ${gamma.size}`);
  check(residual.size === x.size, () => `LayerNorm '${name}': residual has shape ${shapeStr(residual.shape)}, expected ${shapeStr(x.shape)}`);
  const y = Tensor.empty(x.shape, x.device);
  const mean = acquire(rows, x.device, "f32", false), rstd = acquire(rows, x.device, "f32", false);
  native.layerNormForward({ rows, C, eps, x: h(x), residual: h(residual), gamma: h(gamma), beta: h(beta), y: h(y), mean: h(mean), rstd: h(rstd) });
  if (!needsGrad(x, residual, gamma, beta)) {
    release(mean);
    release(rstd);
    return y;
  }
  return record(y, {
    op: "residualLayerNorm",
    inputs: [x, residual, gamma, beta],
    saved: [mean, rstd],
    backward(gy) {
      const dg = gradBuffer(gamma), db = gradBuffer(beta);
      const args = { rows, C, x: h(x), residual: h(residual), gamma: h(gamma), mean: h(mean), rstd: h(rstd), dy: h(gy), dgamma: dg ? h(dg) : undefined, dbeta: db ? h(db) : undefined };
      if (!x.requiresGrad && !residual.requiresGrad) {
        native.layerNormBackward(args); // the parameters' gradients only
        return;
      }
      // The sum's gradient goes to both inputs: computed once, copied to x, handed to the residual.
      const ds = acquire(x.size, x.device, "f32", false);
      native.layerNormBackward({ ...args, dx: h(ds) });
      writeGrad(x, (dx) => dx.copyFromStorage(ds));
      giveGrad(residual, ds);
    },
  });
}
