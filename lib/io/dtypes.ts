// Element types of checkpoint files and their conversion to the in-memory representation:
// every floating type becomes a Float32Array (F64 is rounded), every integer/bool type an Int32Array
// (values are range-checked, so an I64 that does not fit in int32 is refused rather than wrapped).
// Memory: a file is read into one buffer; F32 tensors are views of it (no copy), other types are
// decoded from it once. Tensors that share a torch storage share memory, as in torch, and one tensor
// stored under two names (tied weights) is one StateTensor object under both.
import * as os from "os";
import { CheckpointError } from "../errors";

export type FloatDType = "F64" | "F32" | "F16" | "BF16";
export type IntDType = "I64" | "I32" | "I16" | "I8" | "U64" | "U32" | "U16" | "U8" | "BOOL";
/** The safetensors v0.4.3 dtype set. F8 types are recognised in headers but cannot be loaded. */
export type DType = FloatDType | IntDType | "F8_E5M2" | "F8_E4M3";

/** A tensor held as float32; `dtype` is the type it had (or will have) on disk. */
export interface FloatTensor {
  dtype: FloatDType;
  shape: number[];
  data: Float32Array;
}
/** An integer or bool tensor (position_ids, GPT-2's uint8 causal mask) held as int32. */
export interface IntTensor {
  dtype: IntDType;
  shape: number[];
  data: Int32Array;
}
export type StateTensor = FloatTensor | IntTensor;
/** Tensors by Hugging Face parameter name. */
export type StateDict = Map<string, StateTensor>;

export const DTYPE_SIZE: Readonly<Record<DType, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2,
  I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
  F8_E5M2: 1, F8_E4M3: 1,
};
export const ALL_DTYPES = Object.keys(DTYPE_SIZE) as DType[];
const FLOAT_DTYPES = new Set<string>(["F64", "F32", "F16", "BF16"]);
const INT_DTYPES = new Set<string>(["I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL"]);

export const isDType = (s: unknown): s is DType => typeof s === "string" && Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s);
export const isFloatDType = (s: unknown): s is FloatDType => typeof s === "string" && FLOAT_DTYPES.has(s);
export const isIntDType = (s: unknown): s is IntDType => typeof s === "string" && INT_DTYPES.has(s);

/** Element count of a shape ([] is a scalar: 1). Throws past 2^53. */
/** Realm-independent typed-array checks (arrays made by the addon or another vm context fail instanceof). */
export const isFloat32Array = (x: unknown): x is Float32Array => Object.prototype.toString.call(x) === "[object Float32Array]";
export const isInt32Array = (x: unknown): x is Int32Array => Object.prototype.toString.call(x) === "[object Int32Array]";

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) throw new CheckpointError(`shape [${shape.join(",")}] has more than 2^53 elements`);
  }
  return n;
}

// Typed-array views reinterpret host byte order; every supported platform (x64, arm64) is little-endian.
const LITTLE_ENDIAN_HOST = os.endianness() === "LE";
function requireLittleEndianHost(): void {
  if (!LITTLE_ENDIAN_HOST) throw new CheckpointError("checkpoint IO needs a little-endian host (x64, arm64)");
}

type ViewCtor<T> = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; BYTES_PER_ELEMENT: number };

/** A typed view of bytes[begin, begin+count*size): zero-copy when aligned, otherwise one copy. */
function view<T>(Ctor: ViewCtor<T>, bytes: Uint8Array, begin: number, count: number): T {
  const at = bytes.byteOffset + begin;
  if (at % Ctor.BYTES_PER_ELEMENT === 0) return new Ctor(bytes.buffer, at, count);
  const copy = bytes.slice(begin, begin + count * Ctor.BYTES_PER_ELEMENT);
  return new Ctor(copy.buffer, 0, count);
}

let f16Table: Float32Array | null = null;
/** All 65536 half values as float32 (exact: every f16 is representable). */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) t[h] = sign * m * 2 ** -24;
    else if (e === 31) t[h] = m ? NaN : sign * Infinity;
    else t[h] = sign * (1 + m / 1024) * 2 ** (e - 15);
  }
  const u = new Uint32Array(t.buffer);
  // Keep NaN payloads and signs bit-exact (a JS NaN store would canonicalise them).
  for (let h = 0; h < 65536; h++) if (((h >> 10) & 0x1f) === 31 && h & 0x3ff) u[h] = ((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13);
  return (f16Table = t);
}

/** Decodes `count` elements of `dtype` at bytes[begin..] into float32 (floats) or int32 (ints). */
export function decodeTensorData(
  dtype: DType, bytes: Uint8Array, begin: number, count: number, what: string,
): Float32Array | Int32Array {
  requireLittleEndianHost();
  switch (dtype) {
    case "F32":
      return view(Float32Array, bytes, begin, count);
    case "F64":
      return Float32Array.from(view(Float64Array, bytes, begin, count));
    case "F16": {
      const src = view(Uint16Array, bytes, begin, count);
      const t = halfTable();
      const out = new Float32Array(count);
      const o = new Uint32Array(out.buffer), tu = new Uint32Array(t.buffer);
      for (let i = 0; i < count; i++) o[i] = tu[src[i]];
      return out;
    }
    case "BF16": {
      const src = view(Uint16Array, bytes, begin, count);
      const out = new Float32Array(count);
      const o = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) o[i] = src[i] << 16;
      return out;
    }
    case "I32":
      return view(Int32Array, bytes, begin, count);
    case "I16":
      return Int32Array.from(view(Int16Array, bytes, begin, count));
    case "U16":
      return Int32Array.from(view(Uint16Array, bytes, begin, count));
    case "I8":
      return Int32Array.from(view(Int8Array, bytes, begin, count));
    case "U8":
      return Int32Array.from(bytes.subarray(begin, begin + count));
    case "BOOL": {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = bytes[begin + i] ? 1 : 0;
      return out;
    }
    case "U32": {
      const src = view(Uint32Array, bytes, begin, count);
      for (let i = 0; i < count; i++) if (src[i] > 0x7fffffff) throw outOfInt32(what, dtype, i, src[i]);
      return Int32Array.from(src);
    }
    case "I64":
    case "U64": {
      // Read each 64-bit value as two int32 halves; it fits when the high word is the sign extension of the low.
      const src = view(Int32Array, bytes, begin, count * 2);
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const lo = src[2 * i], hi = src[2 * i + 1];
        if (hi !== lo >> 31 || (dtype === "U64" && lo < 0)) {
          const v = dtype === "U64" ? BigInt.asUintN(64, (BigInt(hi) << 32n) | BigInt(lo >>> 0)) : (BigInt(hi) << 32n) | BigInt(lo >>> 0);
          throw outOfInt32(what, dtype, i, v);
        }
        out[i] = lo;
      }
      return out;
    }
    case "F8_E5M2":
    case "F8_E4M3":
      throw new CheckpointError(`${what}: dtype ${dtype} is a valid safetensors type but tunekit cannot load 8-bit float weights (they need their scale tensors); convert the checkpoint to F32, F16 or BF16`);
  }
}

function outOfInt32(what: string, dtype: DType, i: number, v: number | bigint): CheckpointError {
  return new CheckpointError(`${what}: ${dtype} element ${i} = ${v} does not fit in int32, tunekit's in-memory integer type`);
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 → IEEE half bits, round to nearest even; NaN → 0x7e00 with the sign kept (as PyTorch's c10::Half). */
export function f32ToF16Bits(x: number): number {
  f32Scratch[0] = x;
  return bitsF32ToF16(u32Scratch[0]);
}

function bitsF32ToF16(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | (mant ? 0x7e00 : 0x7c00);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: value / 2^-24, rounded to nearest even.
    if (e < -10) return sign;
    const full = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    if (rem > half || (rem === half && m & 1)) m++;
    return sign | m;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is the right rounding (up to inf)
  return h;
}

/** float32 → bfloat16 bits, round to nearest even; NaN → 0x7fc0 (as PyTorch's c10::BFloat16). */
export function f32ToBf16Bits(x: number): number {
  f32Scratch[0] = x;
  return bitsF32ToBf16(u32Scratch[0]);
}

function bitsF32ToBf16(b: number): number {
  if ((b & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Bytes of `t` as `dtype` on disk (little-endian). F32 from a Float32Array is a view, not a copy. */
export function encodeTensorData(t: StateTensor, dtype: DType, what: string): Uint8Array {
  requireLittleEndianHost();
  const n = t.data.length;
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (isFloat32Array(t.data)) {
    const src = new Uint32Array(t.data.buffer, t.data.byteOffset, n);
    switch (dtype) {
      case "F32":
        return bytes(t.data);
      case "F64":
        return bytes(Float64Array.from(t.data));
      case "F16": {
        const out = new Uint16Array(n);
        for (let i = 0; i < n; i++) out[i] = bitsF32ToF16(src[i]);
        return bytes(out);
      }
      case "BF16": {
        const out = new Uint16Array(n);
        for (let i = 0; i < n; i++) out[i] = bitsF32ToBf16(src[i]);
        return bytes(out);
      }
      default:
        throw new CheckpointError(`${what}: cannot write float32 data as ${dtype}; float tensors are written as F32, F16, BF16 or F64`);
    }
  }
  const d = t.data;
  const checkRange = (lo: number, hi: number) => {
    for (let i = 0; i < n; i++) if (d[i] < lo || d[i] > hi) throw new CheckpointError(`${what}: element ${i} = ${d[i]} is out of range for ${dtype} [${lo}, ${hi}]`);
  };
  switch (dtype) {
    case "I32":
      return bytes(d);
    case "I64":
    case "U64": {
      if (dtype === "U64") checkRange(0, 0x7fffffff);
      const out = new Int32Array(2 * n);
      for (let i = 0; i < n; i++) { out[2 * i] = d[i]; out[2 * i + 1] = d[i] >> 31; }
      return bytes(out);
    }
    case "U32": checkRange(0, 0x7fffffff); return bytes(Uint32Array.from(d));
    case "I16": checkRange(-32768, 32767); return bytes(Int16Array.from(d));
    case "U16": checkRange(0, 65535); return bytes(Uint16Array.from(d));
    case "I8": checkRange(-128, 127); return bytes(Int8Array.from(d));
    case "U8": checkRange(0, 255); return Uint8Array.from(d);
    case "BOOL": checkRange(0, 1); return Uint8Array.from(d);
    default:
      throw new CheckpointError(`${what}: cannot write int32 data as ${dtype}; integer tensors are written as an integer or BOOL dtype`);
  }
}
