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
