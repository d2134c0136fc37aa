// Loads the addon (a prebuilt binary from prebuilds/, else build/Release from `npm install`) and
// types its surface. Every function validates its arguments in C++ and throws TunekitError.
import * as path from "path";
import { TunekitError } from "./errors";

export type Isa = "avx512" | "avx2" | "scalar";

export interface GemmArgs {
  M: number; N: number; K: number;
  A: Float32Array; B: Float32Array; C: Float32Array;
  transA?: boolean; transB?: boolean;
  alpha?: number; beta?: number;
  lda?: number; ldb?: number; ldc?: number;
  batch?: number; strideA?: number; strideB?: number; strideC?: number;
}

// ---- optim/lora ----------------------------------------------------------------------------------

/** One AdamW step on one tensor (torch.optim.AdamW): param, m, v updated in place from grad. */
export interface AdamWArgs {
  n: number;
  param: Float32Array; grad: Float32Array; m: Float32Array; v: Float32Array;
  lr: number;
  /** 1-based step count (bias correction). */
  step: number;
  beta1?: number; beta2?: number; eps?: number; weightDecay?: number;
  /** Multiplies the gradient first (global-norm clipping without another pass). */
  gradScale?: number;
}

/** AdamW on many tensors in one native call; entry i of each list belongs to params[i]. */
export interface AdamWMultiArgs {
  params: Float32Array[]; grads: Float32Array[]; ms: Float32Array[]; vs: Float32Array[];
  lrs: number[]; weightDecays: number[];
  step: number;
  beta1?: number; beta2?: number; eps?: number; gradScale?: number;
}

export interface SumSquaresArgs { n: number; x: Float32Array }
export interface GradNormArgs { tensors: Float32Array[] }

/**
 * LoRA linear fused with its frozen base: y = x·Wᵀ + bias + scale·h·Bᵀ with h = dropout(x)·Aᵀ.
 * x [M, in], W [out, in], bias [out], A [r, in], B [out, r], y [M, out], h [M, r] (kept for the backward).
 */
export interface LoraForwardArgs {
  M: number; in: number; out: number; r: number;
  x: Float32Array; W: Float32Array; bias?: Float32Array | null; A: Float32Array; B: Float32Array;
  scale: number;
  /** Dropout on x in the LoRA branch; element m·in + i uses Philox element m·in + i of (seed, offset). */
  dropoutP?: number; seed?: number; offset?: number;
  y: Float32Array; h: Float32Array;
}

/** dx OVERWRITTEN (null for a first layer); dA, dB, dbias ACCUMULATED. No dW: W stays frozen. */
export interface LoraBackwardArgs {
  M: number; in: number; out: number; r: number;
  x: Float32Array; W: Float32Array; A: Float32Array; B: Float32Array; h: Float32Array;
  scale: number;
  dropoutP?: number; seed?: number; offset?: number;
  dy: Float32Array;
  dx?: Float32Array | null; dA: Float32Array; dB: Float32Array; dbias?: Float32Array | null;
}

/** The raw addon. Arrays are row-major float32; see native/kernels.h for each op's contract. */
export interface NativeAddon {
  setErrorClass(ctor: new (message: string) => Error): void;
  isa(): Isa;
  availableIsas(): Isa[];
  setIsa(isa: Isa): void;
  /** Measured FMA peak (GFLOP/s) of all threads on the current ISA. */
  peakGflops(seconds?: number): number;
  numThreads(): number;
  setNumThreads(n: number): void;
  /** Zeroed, 64-byte aligned native memory; freed by free() or when garbage-collected. */
  alloc(n: number): Float32Array;
  free(a: Float32Array): void;
  memoryStats(): { bytes: number; buffers: number };
  gemm(a: GemmArgs): void;
  gemmAsync(a: GemmArgs): Promise<void>;
  // optim/lora
  adamw(a: AdamWArgs): void;
  adamwAsync(a: AdamWArgs): Promise<void>;
  adamwMulti(a: AdamWMultiArgs): void;
  adamwMultiAsync(a: AdamWMultiArgs): Promise<void>;
  /** Sum of x[i]² over the first n elements, accumulated in double. */
  sumSquares(a: SumSquaresArgs): number;
  sumSquaresAsync(a: SumSquaresArgs): Promise<number>;
  /** Global L2 norm of all tensors (torch.nn.utils.clip_grad_norm_'s total norm); thread-count independent. */
  gradNorm(a: GradNormArgs): number;
  gradNormAsync(a: GradNormArgs): Promise<number>;
  loraForward(a: LoraForwardArgs): void;
  loraForwardAsync(a: LoraForwardArgs): Promise<void>;
  loraBackward(a: LoraBackwardArgs): void;
  loraBackwardAsync(a: LoraBackwardArgs): Promise<void>;
}

function load(): NativeAddon {
  const root = path.join(__dirname, "..");
  let addon: NativeAddon;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    addon = require("node-gyp-build")(root) as NativeAddon;
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new TunekitError(
      `tunekit: could not load the native addon (${why}). ` +
        `No prebuilt binary fits this platform (${process.platform}-${process.arch}, Node ${process.versions.node}) ` +
        `and no local build was found. Build it from source with \`npm rebuild tunekit\` ` +
        `(needs python3, make and a C++17 compiler).`,
    );
  }
  addon.setErrorClass(TunekitError);
  return addon;
}

export const native: NativeAddon = load();
