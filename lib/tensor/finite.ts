// The check that keeps NaN and ±Infinity out of everything tunekit writes: a sum of squares in
// double (one native pass) is finite exactly when every float32 value is (the largest float32
// squared, ~1e77, times any array length stays far below double's limit).
import { NonFiniteError } from "../errors";
import { native } from "../native";

type Named = Iterable<[string, { data: Float32Array | Int32Array } | Float32Array]>;

const floats = (t: { data: Float32Array | Int32Array } | Float32Array) => (t instanceof Float32Array ? t : t.data instanceof Float32Array ? t.data : null);

/** The first tensor that holds a NaN or an infinity: its name, flat index and value; null when all are finite. */
export function firstNonFinite(tensors: Named): { name: string; index: number; value: number } | null {
  for (const [name, t] of tensors) {
    const data = floats(t);
    if (!data || !data.length || Number.isFinite(native.sumSquares({ n: data.length, x: data }))) continue;
    const index = data.findIndex((v) => !Number.isFinite(v));
    return { name, index, value: data[index] };
  }
  return null;
}

/** Throws NonFiniteError naming the first non-finite tensor, before `what` writes anything. */
export function assertFinite(what: string, tensors: Named): void {
  const bad = firstNonFinite(tensors);
  if (bad) throw new NonFiniteError(`${what}: tensor '${bad.name}' holds a non-finite value (element ${bad.index} is ${bad.value}); refusing to save NaN/Infinity weights`);
}
