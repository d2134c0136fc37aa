// The addon's buffers as Storage sees them: allocate, free, view, copy (with dtype conversion) and
// fill, for every device. The CPU keeps typed arrays over native memory; other devices hand out opaque
// buffers that only ops and copies touch.
import { native } from "../native";
import { TunekitError } from "../errors";
import type { Device, DType } from "./storage";

/** What an op argument can be: a typed array over host memory, or a device buffer from the addon. */
export type NativeBuffer = Float32Array | Uint16Array | Int32Array | Uint8Array | DeviceBuffer;

/** An opaque buffer in a device's memory (never indexed from JS). */
export interface DeviceBuffer {
  readonly device: string;
  readonly dtype: string;
  readonly length: number;
}

const TAG: Record<string, DType> = { "[object Float32Array]": "f32", "[object Int32Array]": "i32", "[object Uint8Array]": "u8", "[object Uint16Array]": "bf16" };

/** The dtype of a host typed array (tag-based: arrays from the addon fail instanceof in jest's realm). */
export function hostDtype(a: ArrayBufferView): DType {
  const d = TAG[Object.prototype.toString.call(a)];
  if (!d) throw new TunekitError(`expected a Float32Array, Int32Array or Uint8Array, got ${Object.prototype.toString.call(a)}`);
  return d;
}

function isHost(b: NativeBuffer): b is Float32Array | Uint16Array | Int32Array | Uint8Array {
  return ArrayBuffer.isView(b);
}

// Host storage of other dtypes lives in native float memory too (one allocator, one leak check); the
// typed array of the dtype is a view of it, and freeing goes through the original.
const owners = new WeakMap<ArrayBufferView, Float32Array>();

function f32ToBf16(src: Float32Array, dst: Uint16Array): void {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const x = u[i];
    // NaN stays NaN (quiet bit set); everything else rounds to nearest even.
    dst[i] = (x & 0x7fffffff) > 0x7f800000 ? (x >>> 16) | 0x40 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
}

function bf16ToF32(src: Uint16Array, dst: Float32Array): void {
  const u = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) u[i] = src[i] << 16;
}

export const buffers = {
  alloc(n: number, o: { device: Device; dtype: DType }): NativeBuffer {
    if (o.device !== "cpu") throw new TunekitError(`no ${o.device} backend is loaded (tensors can only be placed on "cpu" here)`);
    if (o.dtype === "f32") return native.alloc(n);
    if (o.dtype === "f16") throw new TunekitError("f16 storage is not supported on the CPU yet; use bf16");
    const words = Math.ceil((n * (o.dtype === "u8" ? 1 : o.dtype === "i32" ? 4 : 2)) / 4);
    const base = native.alloc(words);
    const view = o.dtype === "i32" ? new Int32Array(base.buffer, base.byteOffset, n) : o.dtype === "u8" ? new Uint8Array(base.buffer, base.byteOffset, n) : new Uint16Array(base.buffer, base.byteOffset, n);
    owners.set(view, base);
    return view;
  },

  free(b: NativeBuffer): void {
    if (!isHost(b)) throw new TunekitError(`no ${b.device} backend is loaded`);
    const owner = owners.get(b);
    if (owner) native.free(owner);
    else if (hostDtype(b) === "f32") native.free(b as Float32Array);
  },

  view(b: NativeBuffer, offset: number, length: number): NativeBuffer {
    if (!isHost(b)) throw new TunekitError(`no ${b.device} backend is loaded`);
    return b.subarray(offset, offset + length);
  },

  /** dst = src, element by element, converting between float dtypes. */
  copy(o: { src: NativeBuffer | Float32Array; dst: NativeBuffer }): void {
    const { src, dst } = o;
    if (!isHost(src) || !isHost(dst)) throw new TunekitError("no device backend is loaded");
    if (src.length !== dst.length) throw new TunekitError(`copy: source has ${src.length} elements, destination ${dst.length}`);
    const s = hostDtype(src), d = hostDtype(dst);
    if (s === d) (dst as Float32Array).set(src as Float32Array);
    else if (s === "f32" && d === "bf16") f32ToBf16(src as Float32Array, dst as Uint16Array);
    else if (s === "bf16" && d === "f32") bf16ToF32(src as Uint16Array, dst as Float32Array);
    else if (d === "f32") (dst as Float32Array).set(src as Int32Array);
    else throw new TunekitError(`copy: cannot convert ${s} to ${d}`);
  },

  fill(o: { x: NativeBuffer; value: number }): void {
    if (!isHost(o.x)) throw new TunekitError(`no ${o.x.device} backend is loaded`);
    if (hostDtype(o.x) === "bf16") {
      const one = new Uint16Array(1);
      f32ToBf16(Float32Array.of(o.value), one);
      o.x.fill(one[0]);
    } else o.x.fill(o.value);
  },
};
