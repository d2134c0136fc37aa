// Tensor: a shape over a Storage (one device, one dtype), with an optional gradient and the autograd
// node that created it. Row-major; activations are (B, T, C); Linear weights [out, in] as PyTorch
// keeps them. Nothing outside lib/tensor indexes a tensor's memory: host values come out with
// toHost() and go in with copyFrom(), so the same code runs whatever device the storage is on.
import { TunekitError } from "../errors";
import { Storage, Device, DType, acquire, release, allocate, parseDevice } from "./storage";

export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeStr(shape: Shape): string {
  return `[${shape.join(", ")}]`;
}

/** What an op records so the engine can run its backward (see autograd.ts). */
export interface Node {
  op: string;
  inputs: Tensor[];
  /** Computes the gradients of the inputs from the output gradient `gy`, via the engine's grad buffers. */
  backward(gy: Storage): void;
  /** Storage kept only for the backward (saved statistics, masks); released after it ran. */
  saved?: Storage[];
}

const liveScopes: Tensor[][] = [];

function checkShape(shape: Shape): void {
  for (const d of shape)
    if (!Number.isInteger(d) || d < 0) throw new TunekitError(`Tensor: invalid shape ${shapeStr(shape)}; expected non-negative integers`);
}

export class Tensor {
  readonly shape: number[];
  storage: Storage;
  /** The gradient, on the tensor's device (parameters: allocated by the first backward that reaches them). */
  grad: Storage | null = null;
  /** A backward wrote this (leaf) tensor's gradient since the last zero-grad (torch: .grad is not None). */
  gradTouched = false;
  requiresGrad: boolean;
  node: Node | null = null;
  /** Kept alive when the engine frees the graph after backward (losses, logits the caller reads). */
  retained = false;
  name?: string;

  /**
   * A tensor of `shape` over `storage`, or over fresh zeroed storage on `device`. The tensor owns
   * what it is given (dispose() releases it) unless it is a view: share storage through views only.
   */
  constructor(shape: Shape, storage?: Storage | Float32Array | null, requiresGrad = false, device: Device = "cpu", dtype: DType = "f32") {
    checkShape(shape);
    // A caller's Float32Array: a CPU tensor over that memory (tests, host-made constants).
    if (storage && !(storage instanceof Storage)) storage = new Storage("cpu", "f32", storage, storage.length, "view");
    this.shape = [...shape];
    const n = numel(shape);
    if (storage && storage.length !== n)
      throw new TunekitError(`Tensor: storage has ${storage.length} elements, expected ${n} for shape ${shapeStr(shape)}`);
    this.storage = storage ?? acquire(n, device, dtype, !Tensor.uninitialised, () => `a ${shapeStr(shape)} tensor`);
    this.requiresGrad = requiresGrad;
    const scope = liveScopes[liveScopes.length - 1];
    if (scope && !storage) scope.push(this);
  }

  private static uninitialised = false;

  /**
   * A tensor whose storage is NOT zeroed (recycled memory holds old values): only for outputs a kernel
   * overwrites entirely. Zero-filling every activation cost ~200 ms of a BERT-base step.
   */
  static empty(shape: Shape, device: Device = "cpu", dtype: DType = "f32"): Tensor {
    Tensor.uninitialised = true;
    try {
      return new Tensor(shape, null, false, device, dtype);
    } finally {
      Tensor.uninitialised = false;
    }
  }

  static zeros(shape: Shape, device: Device = "cpu", dtype: DType = "f32"): Tensor {
    return new Tensor(shape, null, false, device, dtype);
  }

  /** A tensor of these host values on `device`. */
  static from(shape: Shape, values: ArrayLike<number>, device: Device = "cpu"): Tensor {
    const t = Tensor.empty(shape, device);
    if (values.length !== t.size)
      throw new TunekitError(`Tensor.from: got ${values.length} values, expected ${t.size} for shape ${shapeStr(shape)}`);
    t.storage.copyFrom(values);
    return t;
  }

  get device(): Device {
    return this.storage.device;
  }

  get dtype(): DType {
    return this.storage.dtype;
  }

  get size(): number {
    return this.storage.length;
  }

  /** Frees the storage now (the GC would otherwise do it later). */
  dispose(): void {
    release(this.storage);
    this.storage = EMPTY;
    if (this.grad) release(this.grad);
    this.grad = null;
    this.node = null;
  }

  retain(): this {
    this.retained = true;
    return this;
  }

  /** A copy on the same device that shares nothing and has no graph. */
  clone(): Tensor {
    const t = Tensor.empty(this.shape, this.device, this.dtype);
    t.storage.copyFromStorage(this.storage);
    return t;
  }

  /** A copy on `device` (this tensor itself when it is already there), without a graph. */
  to(device: Device | string): Tensor {
    const d = parseDevice(device);
    if (d === this.device) return this;
    const t = Tensor.empty(this.shape, d, this.dtype);
    t.storage.copyFromStorage(this.storage);
    return t;
  }

  /**
   * The values as float32 on the host. On the CPU this is the storage itself (no copy): read it, and
   * write with copyFrom().
   */
  toHost(): Float32Array {
    return this.storage.toHost();
  }

  /** Overwrites the values from host memory. */
  copyFrom(values: ArrayLike<number>): this {
    this.storage.copyFrom(values);
    return this;
  }

  toArray(): number[] {
    return Array.from(this.toHost());
  }

  item(): number {
    if (this.size !== 1) throw new TunekitError(`Tensor.item: tensor has ${this.size} elements, expected 1`);
    return this.toHost()[0];
  }

  backward(): void {
    // Lazy import: autograd depends on Tensor.
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    (require("./autograd") as typeof import("./autograd")).backward(this);
  }
}

const EMPTY = new Storage("cpu", "f32", new Float32Array(0), 0, "view");

/** A parameter-sized gradient or state buffer outside the pool (it lives as long as its owner). */
export function parameterStorage(t: Tensor): Storage {
  return allocate(t.size, t.device, "f32", `the gradient of a ${shapeStr(t.shape)} tensor`);
}

/**
 * Runs fn and frees every tensor created inside it except those returned (as a Tensor, an array or
 * the values of an object). Used for inference, where no graph keeps activations alive.
 */
export function tidy<T>(fn: () => T): T {
  const scope: Tensor[] = [];
  liveScopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    liveScopes.pop();
  }
  const keep = new Set<Tensor>();
  const collect = (v: unknown) => {
    if (v instanceof Tensor) keep.add(v);
    else if (Array.isArray(v)) v.forEach(collect);
    else if (v && typeof v === "object" && !ArrayBuffer.isView(v)) Object.values(v).forEach(collect);
  };
  collect(result);
  for (const t of scope) if (!keep.has(t) && !t.retained && !t.node) t.dispose();
  const outer = liveScopes[liveScopes.length - 1];
  if (outer) for (const t of keep) if (scope.includes(t)) outer.push(t);
  return result;
}
