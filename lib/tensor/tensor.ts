// Tensor: a shape over float32 storage in native memory, with an optional gradient and the autograd
// node that created it. Row-major; activations are (B, T, C); Linear weights [out, in] as PyTorch keeps them.
import { native } from "../native";
import { TunekitError } from "../errors";

export type Shape = readonly number[];

const EMPTY = new Float32Array(0);

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
  backward(gy: Float32Array): void;
  /** Native buffers kept only for the backward (saved statistics, masks); freed after it ran. */
  saved?: Float32Array[];
}

let liveScopes: Tensor[][] = [];

// Freed tensor storage kept by length and handed out again: a training step allocates the same
// activation shapes every time, and fresh native memory costs page faults on first touch (~2.5 µs a
// 4 KB page here). The pool may hold as much as the most storage ever live at once (the high-water
// mark), so a step whose activations exceed any fixed cap still finds all of them again next step
// (a 1 GB cap made BERT-base re-allocate 42 buffers a step), while memory never grows past the peak
// the work itself needed.
const pool = new Map<number, Float32Array[]>();
let pooledBytes = 0;
let liveBytes = 0;
let peakLiveBytes = 0;

/** Storage of n floats, recycled when possible; zeroed unless the caller overwrites all of it. */
export function acquire(n: number, zero = true): Float32Array {
  const list = pool.get(n);
  const a = list?.pop();
  liveBytes += n * 4;
  if (liveBytes > peakLiveBytes) peakLiveBytes = liveBytes;
  if (!a) return native.alloc(n);
  pooledBytes -= a.byteLength;
  if (zero) a.fill(0);
  return a;
}

/** Gives storage from acquire() back for reuse. */
export function release(a: Float32Array): void {
  if (!a.length) return;
  liveBytes -= a.byteLength;
  if (pooledBytes + a.byteLength > peakLiveBytes) return native.free(a);
  let list = pool.get(a.length);
  if (!list) pool.set(a.length, (list = []));
  list.push(a);
  pooledBytes += a.byteLength;
}

/** Frees the storage kept for reuse (native.memoryStats() then shows only live tensors). */
export function releasePool(): void {
  for (const list of pool.values()) for (const a of list) native.free(a);
  pool.clear();
  pooledBytes = 0;
  peakLiveBytes = liveBytes;
}

export class Tensor {
  readonly shape: number[];
  data: Float32Array;
  grad: Float32Array | null = null;
  requiresGrad: boolean;
  node: Node | null = null;
  /** Kept alive when the engine frees the graph after backward (losses, logits the caller reads). */
  retained = false;
  name?: string;
  /** Storage came from the pool (not from the caller), so dispose() may recycle it. */
  private ownsData: boolean;

  constructor(shape: Shape, data?: Float32Array, requiresGrad = false) {
    for (const d of shape)
      if (!Number.isInteger(d) || d < 0) throw new TunekitError(`Tensor: invalid shape ${shapeStr(shape)}; expected non-negative integers`);
    this.shape = [...shape];
    const n = numel(shape);
    if (data && data.length !== n)
      throw new TunekitError(`Tensor: data has ${data.length} elements, expected ${n} for shape ${shapeStr(shape)}`);
    this.ownsData = !data;
    this.data = data ?? acquire(n, !Tensor.uninitialised);
    this.requiresGrad = requiresGrad;
    const scope = liveScopes[liveScopes.length - 1];
    if (scope && !data) scope.push(this);
  }

  private static uninitialised = false;

  /**
   * A tensor whose storage is NOT zeroed (recycled memory holds old values): only for outputs a kernel
   * overwrites entirely. Zero-filling every activation cost ~200 ms of a BERT-base step.
   */
  static empty(shape: Shape): Tensor {
    Tensor.uninitialised = true;
    try {
      return new Tensor(shape);
    } finally {
      Tensor.uninitialised = false;
    }
  }

  static from(shape: Shape, values: ArrayLike<number>): Tensor {
    const t = new Tensor(shape);
    if (values.length !== t.data.length)
      throw new TunekitError(`Tensor.from: got ${values.length} values, expected ${t.data.length} for shape ${shapeStr(shape)}`);
    t.data.set(values);
    return t;
  }

  get size(): number {
    return this.data.length;
  }

  /** Frees the native memory now (the GC would otherwise do it later). */
  dispose(): void {
    if (this.ownsData) release(this.data);
    this.data = EMPTY;
    if (this.grad) native.free(this.grad);
    this.grad = null;
    this.node = null;
  }

  retain(): this {
    this.retained = true;
    return this;
  }

  /** A copy that shares nothing and has no graph. */
  clone(): Tensor {
    const t = new Tensor(this.shape);
    t.data.set(this.data);
    return t;
  }

  toArray(): number[] {
    return Array.from(this.data);
  }

  item(): number {
    if (this.data.length !== 1) throw new TunekitError(`Tensor.item: tensor has ${this.data.length} elements, expected 1`);
    return this.data[0];
  }

  backward(): void {
    // Lazy import: autograd depends on Tensor.
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    (require("./autograd") as typeof import("./autograd")).backward(this);
  }
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
    else if (v && typeof v === "object") Object.values(v).forEach(collect);
  };
  collect(result);
  for (const t of scope) if (!keep.has(t) && !t.retained && !t.node) t.dispose();
  const outer = liveScopes[liveScopes.length - 1];
  if (outer) for (const t of keep) if (scope.includes(t)) outer.push(t);
  return result;
}

export function resetScopesForTests(): void {
  liveScopes = [];
}
