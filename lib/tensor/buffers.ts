// The addon's buffers as Storage sees them: typed arrays over native memory on the CPU, opaque device
// buffers elsewhere (native/binding/memory.cc, device_buffer.cc). Allocation, views, copies (with
// float dtype conversion) and fills all run in the addon, on the backend that owns the memory.
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

const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer), bf = new Uint16Array(1);

/** `value` as the bit pattern of one element of `dtype` (what the fill op writes). */
function bitsOf(value: number, dtype: DType): number {
  switch (dtype) {
    case "f32":
      f32[0] = value;
      return u32[0];
    case "bf16":
      f32[0] = value;
      native.copy({ src: f32, dst: bf });
      return bf[0];
    case "i32":
      return (value | 0) >>> 0;
    case "u8":
      return value & 0xff;
    default:
      throw new TunekitError(`fill: ${dtype} storage is not supported`);
  }
}

export const buffers = {
  alloc(n: number, o: { device: Device; dtype: DType }): NativeBuffer {
    if (o.device === "cpu" && o.dtype === "f16") throw new TunekitError("f16 storage is not supported on the CPU; use bf16 or f32");
    return native.alloc(n, o);
  },
  free(b: NativeBuffer): void {
    native.free(b);
  },
  view(b: NativeBuffer, offset: number, length: number): NativeBuffer {
    return native.view(b, offset, length);
  },
  /** dst = src, element by element; float dtypes convert (on one device). */
  copy(o: { src: NativeBuffer; dst: NativeBuffer }): void {
    native.copy(o);
  },
  fill(o: { x: NativeBuffer; value: number; dtype: DType }): void {
    native.fill({ x: o.x, bits: bitsOf(o.value, o.dtype) });
  },
};
