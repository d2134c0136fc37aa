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

// ---- attention (native/binding/attention.cc) ----------------------------------------------------

/**
 * Fused attention over (B, T, H, D) tensors whose tokens are `ld*` floats apart (default H·D), so q, k, v
 * can be views into one packed qkv projection [B, T, 3·H·D] with ld = 3·H·D. See AttentionArgs in
 * native/kernels.h.
 */
export interface AttentionForwardArgs {
  B: number; H: number; Tq: number; Tk: number; D: number;
  q: Float32Array; k: Float32Array; v: Float32Array;
  /** Output (B, Tq, H, D). */
  o: Float32Array;
  /** Output (B, H, Tq): log-sum-exp of the scaled, masked scores (-Infinity for a row with no key). */
  lse: Float32Array;
  ldq?: number; ldk?: number; ldv?: number; ldo?: number;
  /** (B, Tk): 1 = attend, 0 = padding. */
  keyMask?: Uint8Array;
  /** Key j > query i is masked. */
  causal?: boolean;
  /** Default 1/sqrt(D). */
  scale?: number;
  /** Dropout on the probabilities, in [0, 1): Philox element ((b·H + h)·Tq + i)·Tk + j of (seed, offset), integers up to 2^53. */
  dropoutP?: number; seed?: number; offset?: number;
}

/** The forward's arguments (o and lse as it left them) plus dout; dq, dk, dv are overwritten. */
export interface AttentionBackwardArgs extends AttentionForwardArgs {
  dout: Float32Array; dq: Float32Array; dk: Float32Array; dv: Float32Array;
  lddo?: number; lddq?: number; lddk?: number; lddv?: number;
}

// Merged into NativeAddon below (interface declarations of one name merge).
export interface NativeAddon {
  attentionForward(a: AttentionForwardArgs): void;
  attentionForwardAsync(a: AttentionForwardArgs): Promise<void>;
  attentionBackward(a: AttentionBackwardArgs): void;
  attentionBackwardAsync(a: AttentionBackwardArgs): Promise<void>;
}

// ---- end attention -------------------------------------------------------------------------------

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
