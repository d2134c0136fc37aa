// An architecture's checkpoint key map (its spec's `checkpoint`), in one place for every way weights come
// in or go out (from/savePretrained, resume, adapter files): which keys are buffers or tied copies, where
// the body's prefix goes, and which weights the file stores transposed.
import type { ArchSpec } from "./spec";

/** `key` is `suffix` or ends with "." + suffix. */
const endsWithPart = (key: string, suffix: string) => key === suffix || key.endsWith(`.${suffix}`);

/** A buffer saved beside the weights (GPT-2's attn.bias causal mask), never a parameter. */
export const isBuffer = (spec: ArchSpec, key: string): boolean => spec.checkpoint.buffers.some((b) => endsWithPart(key, b));

/** A buffer or a tied copy: in some files, never a parameter of its own. */
export const isSkippedKey = (spec: ArchSpec, key: string): boolean => isBuffer(spec, key) || Object.prototype.hasOwnProperty.call(spec.checkpoint.tied, key);

/**
 * A file's tensors by parameter key (the body under its prefix), as from_pretrained matches them: buffers
 * and tied copies dropped (a tied key the model wants is a parameter of its own: an untied lm_head); when
 * no key carries the prefix but the wanted keys do (a bare body's file, a BertModel checkpoint), every key
 * is put under it.
 */
export function parameterKeys<T>(spec: ArchSpec, tensors: ReadonlyMap<string, T>, wanted: readonly string[]): Map<string, T> {
  const p = `${spec.prefix}.`;
  const want = new Set(wanted);
  const kept = [...tensors].filter(([k]) => want.has(k) || !isSkippedKey(spec, k));
  const addPrefix = !kept.some(([k]) => k.startsWith(p)) && wanted.some((k) => k.startsWith(p));
  return new Map(kept.map(([k, t]) => [addPrefix ? p + k : k, t]));
}

/** True when the file stores this weight [in, out] (HF's Conv1D), the transpose of the model's [out, in]. */
export const isTransposed = (spec: ArchSpec, name: string): boolean => spec.checkpoint.transposed.some((s) => endsWithPart(name, s));

/** A 2-D tensor switched between the file's layout and the model's (a transpose, its own inverse). */
export function switchLayout<T extends { shape: number[]; data: Float32Array }>(spec: ArchSpec, name: string, t: T): T {
  if (!isTransposed(spec, name) || t.shape.length !== 2) return t;
  const [r, c] = t.shape;
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = t.data[i * c + j];
  return { ...t, shape: [c, r], data: out };
}
