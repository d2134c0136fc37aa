// The differentiable ops of the Llama family (modeling_llama.py and its relatives): RMSNorm, rotary
// position embedding, the SwiGLU gate. Native kernels (native/cpu/decoder.cc, cuda/decoder.cu); the
// autograd conventions of ops.ts.
import { native } from "../native";
import { TunekitError } from "../errors";
import { Tensor, shapeStr } from "./tensor";
import { Storage, acquire, release, fromHost } from "./storage";
import { gradBuffer, needsGrad, record, writeGrad } from "./autograd";

const h = (t: Tensor | Storage) => (t instanceof Tensor ? t.storage.handle : t.handle);

function check(cond: boolean, msg: () => string): void {
  if (!cond) throw new TunekitError(msg());
}

/**
 * LlamaRMSNorm over groups of C values: y = x·rsqrt(mean(x²) + eps)·weight, in float32. x's last dim
 * must be a multiple of C (C = the last dim: a hidden-state norm; C = head_dim: Qwen3's per-head
 * q_norm / k_norm). weight (C) may be null.
 */
export function rmsNorm(x: Tensor, weight: Tensor | null, eps: number, C = x.shape[x.shape.length - 1], name = "RMSNorm"): Tensor {
  check(C > 0 && x.size % C === 0, () => `RMSNorm '${name}': input ${shapeStr(x.shape)} does not split into rows of ${C}`);
  check(!weight || weight.size === C, () => `RMSNorm '${name}': weight has ${weight!.size} values, expected ${C}`);
  const rows = x.size / C;
  const y = Tensor.empty(x.shape, x.device);
  const rstd = acquire(rows, x.device, "f32", false);
  native.rmsNormForward({ rows, C, eps, x: h(x), weight: weight && h(weight), y: h(y), rstd: h(rstd) });
  if (!needsGrad(x, weight)) {
    release(rstd);
    return y;
  }
  return record(y, {
    op: "rmsNorm",
    inputs: weight ? [x, weight] : [x],
    saved: [rstd],
    backward(gy) {
      const dw = weight ? gradBuffer(weight) : null;
      const args = { rows, C, x: h(x), weight: weight && h(weight), rstd: h(rstd), dy: h(gy), dweight: dw && h(dw) };
      let wrote = false;
      writeGrad(x, (dx) => {
        native.rmsNormBackward({ ...args, dx: h(dx) });
        wrote = true;
      });
      if (!wrote && dw) native.rmsNormBackward(args);
    },
  });
}

/** cos and sin tables (positions × D/2) of a rotary embedding, on one device. */
export interface RopeTables {
  cos: Storage;
  sin: Storage;
  /** Rows of the tables: the positions they cover. */
  positions: number;
  /** The rotated head dimension. */
  dim: number;
}

/** Tables from inverse frequencies (D/2 of them), for positions 0..P−1, computed in double as HF does in float32. */
export function ropeTables(invFreq: Float32Array, P: number, device: Storage["device"], attentionScaling = 1): RopeTables {
  const half = invFreq.length;
  const cos = new Float32Array(P * half), sin = new Float32Array(P * half);
  // HF: freqs = (position (float32) · inv_freq (float32)) in float32, then cos/sin in float32 · scaling.
  const f = new Float32Array(1);
  for (let p = 0; p < P; p++)
    for (let i = 0; i < half; i++) {
      f[0] = p * invFreq[i];
      cos[p * half + i] = Math.cos(f[0]) * attentionScaling;
      sin[p * half + i] = Math.sin(f[0]) * attentionScaling;
    }
  return { cos: fromHostCopy(cos, device), sin: fromHostCopy(sin, device), positions: P, dim: 2 * half };
}

// A long-lived device copy (the tables live as long as the model), not a pooled upload.
function fromHostCopy(a: Float32Array, device: Storage["device"]): Storage {
  if (device === "cpu") return fromHost(a, "cpu");
  const s = acquire(a.length, device, "f32", false, "rotary tables");
  s.copyFrom(a);
  return s;
}

/**
 * Rotary position embedding (HF's rotate_half convention) of x (B, T, heads·D): token (b, t) is
 * rotated by the angles of positions[b·T + t]. Out of place: y is a rotated copy.
 */
export function rope(x: Tensor, heads: number, positions: Int32Array | Storage, tables: RopeTables): Tensor {
  const [B, T, W] = x.shape;
  const D = W / heads;
  check(x.shape.length === 3 && Number.isInteger(D) && D === tables.dim,
    () => `rope: input ${shapeStr(x.shape)} is not (B, T, ${heads} heads × ${tables.dim})`);
  check(positions.length === B * T, () => `rope: ${positions.length} positions for ${B * T} tokens`);
  const pos = positions instanceof Storage ? positions : fromHost(positions, x.device);
  const uploaded = !(positions instanceof Storage) && x.device !== "cpu";
  const args = { B, T, H: heads, D, P: tables.positions, cos: h(tables.cos), sin: h(tables.sin), positions: h(pos) };
  const y = x.clone();
  native.ropeForward({ ...args, x: h(y) });
  if (!needsGrad(x)) {
    if (uploaded) release(pos);
    return y;
  }
  return record(y, {
    op: "rope",
    inputs: [x],
    saved: uploaded ? [pos] : [],
    backward(gy) {
      writeGrad(x, (dx) => {
        dx.copyFromStorage(gy);
        native.ropeBackward({ ...args, x: h(dx) });
      });
    },
  });
}

/** LlamaMLP's gate: silu(gate)·up, gate and up (…, C). */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  check(gate.size === up.size, () => `swiglu: gate ${shapeStr(gate.shape)} and up ${shapeStr(up.shape)} differ`);
  const C = gate.shape[gate.shape.length - 1], rows = gate.size / C;
  const y = Tensor.empty(gate.shape, gate.device);
  native.swigluForward({ rows, C, gate: h(gate), up: h(up), y: h(y) });
  if (!needsGrad(gate, up)) return y;
  return record(y, {
    op: "swiglu",
    inputs: gate === up ? [gate] : [gate, up],
    backward(gy) {
      // The kernel writes both gradients: each through writeGrad (gate and up may be one tensor).
      const args = { rows, C, gate: h(gate), up: h(up), dy: h(gy) };
      writeGrad(gate, (dg) => native.swigluBackward({ ...args, dgate: h(dg) }));
      writeGrad(up, (du) => native.swigluBackward({ ...args, dup: h(du) }));
    },
  });
}
