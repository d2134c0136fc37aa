// Storage: a flat buffer of one dtype on one device, under every Tensor, gradient, optimizer state and
// arena (candle's Storage { Cpu, Cuda }). The handle is what the addon takes as an op argument: a typed
// array over native memory on the CPU, an opaque device buffer elsewhere; the binding runs each call
// on the backend that owns its buffers. Host reads and writes are explicit: toHost(), copyFrom().
import { buffers, NativeBuffer } from "./buffers";
import { native } from "../native";

const deviceMemory = () => native.deviceMemory();
import { TunekitError } from "../errors";
import { hostDtype } from "./buffers";

export type Device = "cpu" | "cuda";
/** Element types of storage: float32, bfloat16, float16 (weights), int32 (ids, labels), uint8 (masks). */
export type DType = "f32" | "bf16" | "f16" | "i32" | "u8";

const BYTES: Record<DType, number> = { f32: 4, bf16: 2, f16: 2, i32: 4, u8: 1 };

export function bytesOf(dtype: DType): number {
  return BYTES[dtype];
}

/** "cpu" | "cuda" | "cuda:0" → the device tunekit places on; anything else is a clear error. */
export function parseDevice(d: unknown, what = "device"): Device {
  if (d === "cpu") return "cpu";
  if (d === "cuda" || d === "cuda:0") return "cuda";
  throw new TunekitError(`${what}: got ${JSON.stringify(d)}, expected "cpu" or "cuda" ("cuda:0")`);
}

export class Storage {
  constructor(
    readonly device: Device,
    readonly dtype: DType,
    /** The addon's buffer (Float32Array etc. on the CPU, a device buffer elsewhere). */
    public handle: NativeBuffer,
    readonly length: number,
    /**
     * "pool": from acquire(), release() recycles it; "own": from allocate(), release() frees it;
     * "view": a view or a caller's array, never freed here.
     */
    readonly origin: "pool" | "own" | "view",
  ) {}

  get bytes(): number {
    return this.length * BYTES[this.dtype];
  }

  /** Elements [offset, offset + length) of this storage, sharing its memory (arena slots, packed qkv). */
  view(offset: number, length = this.length - offset): Storage {
    if (!(Number.isInteger(offset) && Number.isInteger(length) && offset >= 0 && length >= 0 && offset + length <= this.length))
      throw new TunekitError(`Storage.view: [${offset}, ${offset + length}) is outside a storage of ${this.length} elements`);
    return new Storage(this.device, this.dtype, buffers.view(this.handle, offset, length), length, "view");
  }

  /**
   * The values as float32 on the host (ids and masks as their own arrays). On the CPU an f32 storage
   * is returned itself, without a copy: read it, don't write it (copyFrom writes).
   */
  toHost(): Float32Array {
    if (this.device === "cpu" && this.dtype === "f32") return this.handle as Float32Array;
    const out = new Float32Array(this.length);
    buffers.copy({ src: this.handle, dst: out });
    return out;
  }

  /** Overwrites every element from host values (converted to this dtype). */
  copyFrom(values: ArrayLike<number>): this {
    if (values.length !== this.length)
      throw new TunekitError(`Storage.copyFrom: got ${values.length} values, expected ${this.length}`);
    if (this.device === "cpu" && this.dtype === "f32") (this.handle as Float32Array).set(values);
    else buffers.copy({ src: ArrayBuffer.isView(values) && hostDtype(values) === "f32" ? (values as Float32Array) : Float32Array.from(values), dst: this.handle });
    return this;
  }

  /** Copies every element of src (same length; any devices and float dtypes). */
  copyFromStorage(src: Storage): this {
    if (src.length !== this.length)
      throw new TunekitError(`Storage.copyFromStorage: source has ${src.length} elements, expected ${this.length}`);
    buffers.copy({ src: src.handle, dst: this.handle });
    return this;
  }

  fill(value: number): this {
    buffers.fill({ x: this.handle, value, dtype: this.dtype });
    return this;
  }
}

// Freed storage kept per (device, dtype, length) and handed out again: a training step allocates the
// same activation shapes every time, and fresh memory costs page faults on first touch (~2.5 µs a
// 4 KB page on the CPU; a cudaMalloc is slower still). The pool may hold as much as the most storage
// ever live at once (the high-water mark), so a step whose activations exceed any fixed cap still
// finds all of them again next step, while memory never grows past the peak the work itself needed.
interface DevicePool {
  free: Map<string, Storage[]>;
  pooledBytes: number;
  liveBytes: number;
  peakLiveBytes: number;
}
const pools = new Map<Device, DevicePool>();

function poolOf(device: Device): DevicePool {
  let p = pools.get(device);
  if (!p) pools.set(device, (p = { free: new Map(), pooledBytes: 0, liveBytes: 0, peakLiveBytes: 0 }));
  return p;
}

/**
 * The addon's allocation, with what a caching allocator does when a device runs out: free the storage
 * kept for reuse and try once more; then a TunekitError that says what was being allocated, its size,
 * what is in use, and what to try.
 */
function alloc(length: number, device: Device, dtype: DType, what: string | (() => string)): NativeBuffer {
  try {
    return buffers.alloc(length, { device, dtype });
  } catch (e) {
    if (device === "cpu" || !/out of device memory/.test(String((e as Error).message))) throw e;
    const cached = poolOf(device).pooledBytes;
    releasePool(device);
    try {
      return buffers.alloc(length, { device, dtype });
    } catch {
      const m = deviceMemory();
      const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
      throw new TunekitError(
        `out of ${device} memory allocating ${typeof what === "string" ? what : what()} (${length * BYTES[dtype]} bytes, ${dtype}): tunekit holds ${gib(m.inUse)} of ${gib(m.total)}` +
          ` (${gib(cached)} of it was cached for reuse and has been freed). Try a smaller batch size or sequence length,` +
          ` bf16 weights (fromPretrained(dir, { dtype: "bf16" })), or LoRA instead of full fine-tuning.`,
      );
    }
  }
}

/** Fresh native storage (zeroed), outside the pool: parameters, gradients, optimizer state. */
export function allocate(length: number, device: Device = "cpu", dtype: DType = "f32", what = "a buffer"): Storage {
  return new Storage(device, dtype, alloc(length, device, dtype, what), length, "own");
}

/** Storage of n elements, recycled when possible; zeroed unless the caller overwrites all of it. */
export function acquire(n: number, device: Device = "cpu", dtype: DType = "f32", zero = true, what: string | (() => string) = "an activation"): Storage {
  const pool = poolOf(device);
  const key = `${dtype}:${n}`;
  const s = pool.free.get(key)?.pop();
  const bytes = n * BYTES[dtype];
  pool.liveBytes += bytes;
  if (pool.liveBytes > pool.peakLiveBytes) pool.peakLiveBytes = pool.liveBytes;
  if (!s) return new Storage(device, dtype, alloc(n, device, dtype, what), n, "pool");
  pool.pooledBytes -= bytes;
  if (zero) s.fill(0);
  return s;
}

/** Gives storage from acquire() back for reuse, frees storage from allocate(); views are left alone. */
export function release(s: Storage): void {
  if (s.origin === "own") return buffers.free(s.handle);
  if (s.origin !== "pool" || !s.length) return;
  const pool = poolOf(s.device);
  pool.liveBytes -= s.bytes;
  if (pool.pooledBytes + s.bytes > pool.peakLiveBytes) return buffers.free(s.handle);
  const key = `${s.dtype}:${s.length}`;
  let list = pool.free.get(key);
  if (!list) pool.free.set(key, (list = []));
  list.push(s);
  pool.pooledBytes += s.bytes;
}

/** Frees the storage kept for reuse (native.memoryStats() then shows only live buffers), on one device or all. */
export function releasePool(device?: Device): void {
  for (const [d, pool] of pools) {
    if (device && d !== device) continue;
    for (const list of pool.free.values()) for (const s of list) buffers.free(s.handle);
    pool.free.clear();
    pool.pooledBytes = 0;
    pool.peakLiveBytes = pool.liveBytes;
  }
}

/** Host ids / masks / targets as storage on `device`: a view of the array itself on the CPU, a copy elsewhere. */
export function fromHost(a: Float32Array | Int32Array | Uint8Array, device: Device = "cpu"): Storage {
  const dtype = hostDtype(a);
  if (device === "cpu") return new Storage("cpu", dtype, a, a.length, "view");
  const s = acquire(a.length, device, dtype, false);
  buffers.copy({ src: a, dst: s.handle });
  return s;
}
