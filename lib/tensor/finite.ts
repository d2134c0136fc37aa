// The check that keeps NaN and ±Infinity out of everything tunekit writes: one native sum-of-squares
// pass per tensor; a non-finite sum is confirmed element by element (the kernel's float32 partial
// sums can overflow for values above ~1e19, which are huge but finite, and not refused).
import { NonFiniteError } from "../errors";
import { native } from "../native";
import { isFloat32Array } from "../io/dtypes";

type Named = Iterable<[string, { data: Float32Array | Int32Array } | Float32Array]>;

// isFloat32Array, not instanceof: arrays from the addon fail instanceof in another realm (jest's vm).
const floats = (t: { data: Float32Array | Int32Array } | Float32Array): Float32Array | null =>
  isFloat32Array(t) ? t : isFloat32Array(t.data) ? t.data : null;

/** The first tensor that holds a NaN or an infinity: its name, flat index and value; null when all are finite. */
export function firstNonFinite(tensors: Named): { name: string; index: number; value: number } | null {
  for (const [name, t] of tensors) {
    const data = floats(t);
    if (!data || !data.length || Number.isFinite(native.sumSquares({ n: data.length, x: data }))) continue;
    for (let i = 0; i < data.length; i++) if (data[i] - data[i] !== 0) return { name, index: i, value: data[i] };  // NaN or ±Infinity
  }
  return null;
}

/** Throws NonFiniteError naming the first non-finite tensor, before `what` writes anything. */
export function assertFinite(what: string, tensors: Named): void {
  const bad = firstNonFinite(tensors);
  if (bad) throw new NonFiniteError(`${what}: tensor '${bad.name}' holds a non-finite value (element ${bad.index} is ${bad.value}); refusing to save NaN/Infinity weights`);
}
