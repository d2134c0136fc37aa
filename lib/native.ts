// Loads the addon (a prebuilt binary from prebuilds/, else build/Release from `npm install`) and
// types its surface. Every function validates its arguments in C++ and throws TunekitError.
import * as path from "path";
import { TunekitError } from "./errors";
import type { NativeBuffer, DeviceBuffer } from "./tensor/buffers";
export type { NativeBuffer, DeviceBuffer };

// Buffer arguments: host typed arrays or device buffers; the binding checks each one's dtype and
// device at run time (names say what an argument should hold).
/** Float values: Float32Array on the host (Uint16Array for bf16 weights) or a device buffer. */
export type Buf = NativeBuffer;
/** int32 values (ids, targets): Int32Array on the host or a device buffer. */
export type IBuf = NativeBuffer;
/** Bytes (masks): Uint8Array on the host or a device buffer. */
export type U8Buf = NativeBuffer;
/**
 * A weight operand (gemm's B, LoRA's W, embeddingForward's table): float32 or bfloat16 — a Float32Array
 * or Uint16Array (bf16) on the host, an f32 or bf16 device buffer. The dtype travels with the buffer;
 * a bf16 weight is widened exactly, so results equal float32 weights holding the same values. Every
 * other argument refuses bf16.
 */
export type WeightBuf = NativeBuffer;

export type Isa = "avx512" | "avx2" | "scalar";

export interface GemmArgs {
  M: number; N: number; K: number;
  A: Buf; B: WeightBuf; C: Buf;
  transA?: boolean; transB?: boolean;
  alpha?: number; beta?: number;
  lda?: number; ldb?: number; ldc?: number;
  batch?: number; strideA?: number; strideB?: number; strideC?: number;
  /** Default: matmulPrecision(). "bf16" rounds op(A), op(B) to bfloat16, accumulates in fp32; fp32 where the CPU lacks AVX512-BF16. */
  precision?: MatmulPrecision;
  /**
   * The epilogue, applied while C is stored: v = alpha·op(A)·op(B) + beta·C + bias (N, per column) + residual
   * (C's layout); pre (C's layout) receives v; C = activation(v). None may overlap C.
   */
  bias?: Buf | null; residual?: Buf | null; pre?: Buf | null;
  activation?: GemmActivation;
}

/** GEMM epilogue activation: "gelu" is PyTorch's erf form, "gelu_tanh" its approximate='tanh'. */
export type GemmActivation = "none" | "gelu" | "gelu_tanh";

/** Precision of GEMM operands: fp32, or bf16 products with fp32 accumulation (AVX512-BF16). */
/** "fp16" runs on CUDA devices only (tensor cores); a CPU GEMM asked for it explicitly fails. */
export type MatmulPrecision = "fp32" | "bf16" | "fp16";

// ---- optim/lora ----------------------------------------------------------------------------------

/** One AdamW step on one tensor (torch.optim.AdamW): param, m, v updated in place from grad. */
export interface AdamWArgs {
  n: number;
  param: Buf; grad: Buf; m: Buf; v: Buf;
  lr: number;
  /** 1-based step count (bias correction). */
  step: number;
  beta1?: number; beta2?: number; eps?: number; weightDecay?: number;
  /** Multiplies the gradient first (global-norm clipping without another pass). */
  gradScale?: number;
}

/** AdamW on many tensors in one native call; entry i of each list belongs to params[i]. */
export interface AdamWMultiArgs {
  params: Buf[]; grads: Buf[]; ms: Buf[]; vs: Buf[];
  lrs: number[]; weightDecays: number[];
  step: number;
  beta1?: number; beta2?: number; eps?: number; gradScale?: number;
}

export interface SumSquaresArgs { n: number; x: Buf }
export interface GradNormArgs { tensors: Buf[] }

/**
 * LoRA linear fused with its frozen base: y = x·Wᵀ + bias + scale·h·Bᵀ with h = dropout(x)·Aᵀ.
 * x [M, in], W [out, in], bias [out], A [r, in], B [out, r], y [M, out], h [M, r] (kept for the backward).
 */
export interface LoraForwardArgs {
  M: number; in: number; out: number; r: number;
  x: Buf; W: WeightBuf; bias?: Buf | null; A: Buf; B: Buf;
  scale: number;
  /** Dropout on x in the LoRA branch; element m·in + i uses Philox element m·in + i of (seed, offset). */
  dropoutP?: number; seed?: number; offset?: number;
  y: Buf; h: Buf;
  /** Of the products with the frozen W (default matmulPrecision()); the rank-r ones stay fp32. */
  precision?: MatmulPrecision;
}

/** dx OVERWRITTEN (null for a first layer); dA, dB, dbias ACCUMULATED. No dW: W stays frozen. */
export interface LoraBackwardArgs {
  M: number; in: number; out: number; r: number;
  x: Buf; W: WeightBuf; A: Buf; B: Buf; h: Buf;
  scale: number;
  dropoutP?: number; seed?: number; offset?: number;
  dy: Buf;
  dx?: Buf | null; dA: Buf; dB: Buf; dbias?: Buf | null;
  precision?: MatmulPrecision;
}
// ---- layers (native/binding/layers.cc) ----------------------------------------------------------
// Element-wise ops (geluForward/Backward, biasAdd, add, dropout) may run in place (output === input);
// other outputs must not overlap their inputs, except crossEntropy's dlogits, which may be logits.

/** LayerNorm over the last dim C of x (rows, C); writes y, and mean/rstd (rows) for the backward. */
export interface LayerNormForwardArgs {
  rows: number; C: number;
  /** Default 1e-5. */
  eps?: number;
  x: Buf; gamma?: Buf | null; beta?: Buf | null;
  y: Buf; mean: Buf; rstd: Buf;
  /** The input is x + residual, summed in the same pass (not stored). */
  residual?: Buf | null;
}
/** dx is overwritten; dgamma and dbeta are accumulated (+=). Each output is optional. */
export interface LayerNormBackwardArgs {
  rows: number; C: number;
  x: Buf; gamma?: Buf | null; mean: Buf; rstd: Buf; dy: Buf;
  dx?: Buf | null; dgamma?: Buf | null; dbeta?: Buf | null;
  /** As in the forward: the input was x + residual (its gradient equals dx). */
  residual?: Buf | null;
}
/** "none": 0.5·x·(1 + erf(x/√2)) (default); "tanh": PyTorch's approximate='tanh'. */
export type GeluApproximate = "none" | "tanh";
export interface GeluForwardArgs { n: number; x: Buf; y: Buf; approximate?: GeluApproximate }
/** dx = dy · gelu'(x), overwritten. */
export interface GeluBackwardArgs { n: number; x: Buf; dy: Buf; dx: Buf; approximate?: GeluApproximate }
/** y (rows, C) = x + bias, bias broadcast over rows. */
export interface BiasAddArgs { rows: number; C: number; x: Buf; bias: Buf; y: Buf }
/** dbias (C) += column sums of dy (rows, C). */
export interface BiasBackwardArgs { rows: number; C: number; dy: Buf; dbias: Buf }
/** y = a + b. */
export interface AddArgs { n: number; a: Buf; b: Buf; y: Buf }
/** x *= s·sp[0], in place; sp (one float, may be absent: x *= s) is an upstream gradient kept in native memory. */
export interface ScaleArgs { n: number; x: Buf; s: number; sp?: Buf | null }
/**
 * y = x·keep/(1-p), keep = philox.uniform(seed, offset, e) >= p for element e; the same call on dy is
 * the backward. p in [0, 1); seed and offset are integers below 2^53.
 */
export interface DropoutArgs { n: number; x: Buf; y: Buf; p: number; seed: number; offset: number }
/**
 * Softmax cross-entropy over rows of logits (N, V). Rows whose target is ignoreIndex (default -100)
 * count for nothing. loss = Σ row losses / divisor; divisor <= 0 (default) means the number of rows
 * not ignored (PyTorch's mean), and with no row left the loss and gradient are 0 rather than NaN.
 * dlogits (may be logits itself) is overwritten with d(loss)/d(logits)·gradScale; rowLoss gets each
 * row's loss (0 for ignored rows).
 */
export interface CrossEntropyArgs {
  N: number; V: number; logits: Buf; targets: IBuf;
  ignoreIndex?: number; divisor?: number; gradScale?: number;
  dlogits?: Buf | null; rowLoss?: Buf | null;
  /** One float that receives the loss; on a device it stays there (the call then returns undefined). */
  lossOut?: Buf | null;
}
/** loss as a double; count = rows not ignored. */
export interface CrossEntropyResult { loss: number; count: number }
/** out (N, C) = table (V, C) rows ids (N), every id in [0, V). */
export interface EmbeddingForwardArgs { N: number; C: number; ids: IBuf; table: WeightBuf; V: number; out: Buf }
/** dtable[ids[i]] += dout[i], deterministic. */
export interface EmbeddingBackwardArgs { N: number; C: number; ids: IBuf; dout: Buf; V: number; dtable: Buf; /** Rows of this id get no gradient (torch's padding_idx). */ paddingIdx?: number }
// ---- end layers ---------------------------------------------------------------------------------
// ---- attention (native/binding/attention.cc) ----------------------------------------------------

/**
 * Fused attention over (B, T, heads, D) tensors whose tokens are `ld*` floats apart (default heads·D; q
 * and o have H heads, k and v Hkv), so q, k, v can be views into one packed qkv projection
 * [B, T, (H + 2·Hkv)·D] with ld = (H + 2·Hkv)·D. See AttentionArgs in include/tunekit/ops.h.
 */
export interface AttentionForwardArgs {
  B: number; H: number; Tq: number; Tk: number; D: number;
  /** Key/value heads (grouped-query attention), a divisor of H; query head h reads kv head h / (H / Hkv). Default H. */
  Hkv?: number;
  q: Buf; k: Buf; v: Buf;
  /** Output (B, Tq, H, D). */
  o: Buf;
  /** Output (B, H, Tq): log-sum-exp of the scaled, masked scores (-Infinity for a row with no key). */
  lse: Buf;
  ldq?: number; ldk?: number; ldv?: number; ldo?: number;
  /** (B, Tk): 1 = attend, 0 = padding. */
  keyMask?: U8Buf;
  /** Key j > queryOffset + i is masked. */
  causal?: boolean;
  /** With causal: key j is also masked when queryOffset + i − j >= window (Mistral's sliding_window). 0 (default): none. */
  window?: number;
  /** With causal: the key position of query 0 (Tk − Tq puts the queries at the end of the keys, after a KV cache). Default 0. */
  queryOffset?: number;
  /** Default 1/sqrt(D). */
  scale?: number;
  /** Dropout on the probabilities, in [0, 1): Philox element ((b·H + h)·Tq + i)·Tk + j of (seed, offset), integers up to 2^53. */
  dropoutP?: number; seed?: number; offset?: number;
}

/** The forward's arguments (o and lse as it left them) plus dout; dq, dk, dv are overwritten. */
export interface AttentionBackwardArgs extends AttentionForwardArgs {
  dout: Buf; dq: Buf; dk: Buf; dv: Buf;
  lddo?: number; lddq?: number; lddk?: number; lddv?: number;
}

// ---- heads and losses (native/binding/heads.cc) -------------------------------------------------
// A loss's value, dotForward's result and the upstream gradient of a scalar (dy, ap) are one-float
// buffers (Float32Array of length 1), never numbers, so they can stay in the backend's memory.

/** y = tanh | relu | sigmoid | silu (x), as torch's. */
export type UnaryKind = "tanh" | "relu" | "sigmoid" | "silu";
/** y (n) = f(x); y may be x itself. */
export interface UnaryForwardArgs { n: number; kind: UnaryKind; x: Buf; y: Buf }
/**
 * dx (n) = dy · f'(x), overwritten (dx may be dy, x or y). From the forward's output y for tanh, relu,
 * sigmoid; from its input x for silu (the other may be omitted).
 */
export interface UnaryBackwardArgs { n: number; kind: UnaryKind; x?: Buf | null; y?: Buf | null; dy: Buf; dx: Buf }
/**
 * dst (rows, cols; rows dstLd floats apart, default cols) = src (rows, cols; srcLd), or += with
 * accumulate. A column j of x (rows, K): src = x.subarray(j), srcLd = K, cols = 1. No overlap.
 */
export interface CopyStridedArgs {
  rows: number; cols: number;
  src: Buf; srcLd?: number;
  dst: Buf; dstLd?: number;
  accumulate?: boolean;
}
/** y (B, C) = mean of x (B, T, C) over the positions where mask (B·T, nonzero = real) is set; 0 for a row with none. */
export interface MaskedMeanForwardArgs { B: number; T: number; C: number; x: Buf; mask: U8Buf; y: Buf }
/** dx (B, T, C) overwritten: dy / count at real positions, 0 at padding. */
export interface MaskedMeanBackwardArgs { B: number; T: number; C: number; mask: U8Buf; dy: Buf; dx: Buf }
/** y (N) = a·b / (max(‖a‖, 1e-8)·max(‖b‖, 1e-8)) per row of a, b (N, C). */
export interface CosineForwardArgs { N: number; C: number; a: Buf; b: Buf; y: Buf }
/** da, db (N, C) overwritten from dy (N); either may be omitted. */
export interface CosineBackwardArgs { N: number; C: number; a: Buf; b: Buf; dy: Buf; da?: Buf | null; db?: Buf | null }
/** y (N, C) = x / norm per row, norm (N) = max(‖x‖, 1e-8) saved for the backward; y may be x. */
export interface L2NormForwardArgs { N: number; C: number; x: Buf; y: Buf; norm: Buf }
/** dx (N, C) overwritten (may be dy): (dy − y·(y·dy)) / norm, dy / norm where the norm was clamped. */
export interface L2NormBackwardArgs { N: number; C: number; y: Buf; norm: Buf; dy: Buf; dx: Buf }
/**
 * loss[0] = Σ term(x, target) / divisor over n elements, in double; divisor <= 0 (default) means n.
 * mse: (x − target)²; bce: BCEWithLogits of logits x (max(x, 0) − x·target + log1p(exp(−|x|))).
 */
export interface LossForwardArgs { n: number; x: Buf; target: Buf; divisor?: number; loss: Buf }
/** dx (n) overwritten (may be x or target): dy[0]·2(x − target)/divisor (mse), dy[0]·(σ(x) − target)/divisor (bce). */
export interface LossBackwardArgs { n: number; x: Buf; target: Buf; divisor?: number; dy: Buf; dx: Buf }
/** y[0] = Σ x·w over n, in double. Its backward: axpby({ n, alpha: 1, a: w, ap: dy, beta: 1, b: dx, y: dx }). */
export interface DotForwardArgs { n: number; x: Buf; w: Buf; y: Buf }
/**
 * y (n) = alpha·(ap ? ap[0] : 1)·a + beta·b (alpha default 1, beta default 0); b absent or beta 0: b
 * is not read. y may be a or b; ap (one float) must not overlap y.
 */
export interface AxpbyArgs { n: number; alpha?: number; a: Buf; ap?: Buf | null; beta?: number; b?: Buf | null; y: Buf }

// Merged into NativeAddon below (interface declarations of one name merge).
export interface NativeAddon {
  unaryForward(a: UnaryForwardArgs): void;
  unaryForwardAsync(a: UnaryForwardArgs): Promise<void>;
  unaryBackward(a: UnaryBackwardArgs): void;
  unaryBackwardAsync(a: UnaryBackwardArgs): Promise<void>;
  copyStrided(a: CopyStridedArgs): void;
  copyStridedAsync(a: CopyStridedArgs): Promise<void>;
  maskedMeanForward(a: MaskedMeanForwardArgs): void;
  maskedMeanForwardAsync(a: MaskedMeanForwardArgs): Promise<void>;
  maskedMeanBackward(a: MaskedMeanBackwardArgs): void;
  maskedMeanBackwardAsync(a: MaskedMeanBackwardArgs): Promise<void>;
  cosineForward(a: CosineForwardArgs): void;
  cosineForwardAsync(a: CosineForwardArgs): Promise<void>;
  cosineBackward(a: CosineBackwardArgs): void;
  cosineBackwardAsync(a: CosineBackwardArgs): Promise<void>;
  l2NormForward(a: L2NormForwardArgs): void;
  l2NormForwardAsync(a: L2NormForwardArgs): Promise<void>;
  l2NormBackward(a: L2NormBackwardArgs): void;
  l2NormBackwardAsync(a: L2NormBackwardArgs): Promise<void>;
  mseForward(a: LossForwardArgs): void;
  mseForwardAsync(a: LossForwardArgs): Promise<void>;
  mseBackward(a: LossBackwardArgs): void;
  mseBackwardAsync(a: LossBackwardArgs): Promise<void>;
  bceForward(a: LossForwardArgs): void;
  bceForwardAsync(a: LossForwardArgs): Promise<void>;
  bceBackward(a: LossBackwardArgs): void;
  bceBackwardAsync(a: LossBackwardArgs): Promise<void>;
  dotForward(a: DotForwardArgs): void;
  dotForwardAsync(a: DotForwardArgs): Promise<void>;
  axpby(a: AxpbyArgs): void;
  axpbyAsync(a: AxpbyArgs): Promise<void>;
}
// ---- end heads and losses -------------------------------------------------------------------------

// Merged into NativeAddon below (interface declarations of one name merge).
export interface NativeAddon {
  attentionForward(a: AttentionForwardArgs): void;
  attentionForwardAsync(a: AttentionForwardArgs): Promise<void>;
  attentionBackward(a: AttentionBackwardArgs): void;
  attentionBackwardAsync(a: AttentionBackwardArgs): Promise<void>;
}

/**
 * One query token per (batch, head) against a KV cache (inference; no backward): o = softmax(q·Kᵀ·scale)·V.
 * q (B, H, D) with ldq floats between batch rows (default H·D); k, v caches (B, Tmax, Hkv, D) with ldk / ldv
 * floats between tokens (default Hkv·D) and Tmax (default Tk) tokens per batch row, of which keys [0, Tk)
 * are read; o (B, H, D), ldo. Keys are split into chunks merged in a fixed order (flash-decoding).
 */
export interface AttentionDecodeArgs {
  B: number; H: number; Tk: number; D: number;
  /** Default H; a divisor of H. */
  Hkv?: number;
  Tmax?: number;
  q: Buf; k: Buf; v: Buf; o: Buf;
  ldq?: number; ldk?: number; ldv?: number; ldo?: number;
  /** (B) int32: batch row b sees keys [0, lengths[b]), each in [0, Tk]. Default Tk for every row. */
  lengths?: IBuf | null;
  /** (B, Tk): 1 = attend, 0 = padding (left-padded batches). */
  keyMask?: U8Buf | null;
  /** > 0: the query, at position length − 1, sees keys j > length − 1 − window. Default 0 (none). */
  window?: number;
  /** Default 1/sqrt(D). */
  scale?: number;
}

// Merged into NativeAddon below (interface declarations of one name merge).
export interface NativeAddon {
  attentionDecode(a: AttentionDecodeArgs): void;
  attentionDecodeAsync(a: AttentionDecodeArgs): Promise<void>;
}

// ---- end attention -------------------------------------------------------------------------------
// ---- decoder (native/binding/decoder.cc) --------------------------------------------------------

/**
 * RMSNorm (LlamaRMSNorm, float32) over the last dim C: y = x·rstd·weight, rstd = 1/sqrt(mean(x²) + eps)
 * (rows) saved for the backward. Rows come in groups of G side by side: row r is at (r / G)·ldx + (r % G)·C
 * (default G = 1, ldx = G·C), so G = heads, C = head_dim, ldx = the packed projection's width normalises
 * each head of q in place of a copy (Qwen3's q_norm / k_norm). rows is a multiple of G.
 */
export interface RmsNormForwardArgs {
  rows: number; C: number;
  /** Default 1e-6 (rms_norm_eps). */
  eps?: number;
  x: Buf; weight?: Buf | null;
  y: Buf; rstd: Buf;
  G?: number; ldx?: number; ldy?: number;
}
/** dx (layout of x, lddx) overwritten; dweight (C) accumulated (+=), the same bits for any thread count. Each optional. */
export interface RmsNormBackwardArgs {
  rows: number; C: number;
  x: Buf; weight?: Buf | null; rstd: Buf; dy: Buf;
  dx?: Buf | null; dweight?: Buf | null;
  G?: number; ldx?: number; lddy?: number; lddx?: number;
}
/**
 * Rotary position embedding in place on x (B, T, H, D), tokens ld floats apart (default H·D; q and k of
 * a packed [q | k | v] projection are H + Hkv adjacent heads), HF's rotate_half convention. cos, sin are
 * (P, D/2) tables; token (b, t) uses row positions[b·T + t]. ropeBackward rotates a gradient by −θ.
 */
export interface RopeArgs {
  B: number; T: number; H: number; D: number; P: number;
  x: Buf; ld?: number;
  cos: Buf; sin: Buf;
  positions: IBuf;
}
/** y (rows, C) = silu(gate)·up; leading dims default C (a fused [gate | up]: ldg = ldu = 2·C, up = gate + C). */
export interface SwigluForwardArgs {
  rows: number; C: number;
  gate: Buf; up: Buf; y: Buf;
  ldg?: number; ldu?: number; ldy?: number;
}
/** dgate = dy·up·silu'(gate), dup = dy·silu(gate), overwritten, each optional (they may interleave in one buffer). */
export interface SwigluBackwardArgs {
  rows: number; C: number;
  gate: Buf; up: Buf; dy: Buf;
  dgate?: Buf | null; dup?: Buf | null;
  ldg?: number; ldu?: number; lddy?: number; lddg?: number; lddu?: number;
}

// Merged into NativeAddon below (interface declarations of one name merge).
export interface NativeAddon {
  rmsNormForward(a: RmsNormForwardArgs): void;
  rmsNormForwardAsync(a: RmsNormForwardArgs): Promise<void>;
  rmsNormBackward(a: RmsNormBackwardArgs): void;
  rmsNormBackwardAsync(a: RmsNormBackwardArgs): Promise<void>;
  ropeForward(a: RopeArgs): void;
  ropeForwardAsync(a: RopeArgs): Promise<void>;
  ropeBackward(a: RopeArgs): void;
  ropeBackwardAsync(a: RopeArgs): Promise<void>;
  swigluForward(a: SwigluForwardArgs): void;
  swigluForwardAsync(a: SwigluForwardArgs): Promise<void>;
  swigluBackward(a: SwigluBackwardArgs): void;
  swigluBackwardAsync(a: SwigluBackwardArgs): Promise<void>;
}
// ---- end decoder ---------------------------------------------------------------------------------

/** A device with a backend: the CPU, or the CUDA library when one is built and a GPU is present. */
export type Device = "cpu" | "cuda";

/** What the CUDA loader found (cudaInfo()). */
export interface CudaInfo { available: boolean; reason: string; library?: string; device?: string }
/** One compared output of cudaCheckOps(): passes when maxAbsDiff <= tolerance · max(1, refMaxAbs). */
export interface CudaOpCheck { op: string; name: string; maxAbsDiff: number; refMaxAbs: number; tolerance: number }

// ---- process groups (data-parallel training; include/tunekit/comm.h) --------------------------------
/** What the communication backend loader found (commInfo()). */
export interface CommInfo { available: boolean; reason: string; library?: string }
export interface CommInitArgs {
  backend: "gloo" | "nccl"; rank: number; worldSize: number; masterAddr: string; masterPort: number; timeoutMs: number;
  /** Network interface of the collectives' sockets ("" = the one that routes to masterAddr). */
  ifname?: string;
}
/** The collectives of a process group (a group id from commInit); host typed arrays only. */
export interface CommAddon {
  /** Whether libtunekit_<backend>.so loads (opened on the first call), and why not. */
  commInfo(backend: "gloo" | "nccl"): CommInfo;
  /** Joins the group (rendezvous at masterAddr:masterPort, connections, a barrier); returns its id. */
  commInit(a: CommInitArgs): number;
  /** x = the sum of x over the ranks (Float32Array or Float64Array), in place. */
  commAllReduce(a: { group: number; x: Float32Array | Float64Array }): void;
  /** The same, started on the library's thread; returns a ticket for commWait. x stays untouched until then. */
  commAllReduceStart(a: { group: number; x: Float32Array | Float64Array }): number;
  /** Waits for the ticket (and everything before it); returns the seconds waited. */
  commWait(a: { group: number; ticket: number }): number;
  /** x of rank `root` copied to every rank (any typed array). */
  commBroadcast(a: { group: number; x: ArrayBufferView; root: number }): void;
  /** Every rank's bytes (counts[r] from rank r, known to all), concatenated in rank order. */
  commAllGather(a: { group: number; x: Uint8Array; counts: number[] }): Uint8Array;
  commBarrier(a: { group: number }): void;
  /** Seconds the library spent inside collectives, and how many ran. */
  commStats(a: { group: number }): { seconds: number; collectives: number };
  /** Gives up: the other ranks are told why and stop at their next collective. */
  commAbort(a: { group: number; reason: string }): void;
  /** Leaves the group (after a barrier, unless it failed). */
  commDestroy(a: { group: number }): void;
}
// ---- end process groups ----------------------------------------------------------------------------

/** The raw addon. Arrays are row-major float32; see include/tunekit/ops.h for each op's contract. */
export interface NativeAddon extends CommAddon {
  /** The op names of TK_OPS (include/tunekit/ops.h), in op id order: "gemm", "attention_forward", ... */
  ops(): string[];
  /**
   * Whether `device`'s backend has a kernel for `op` (a name from ops()). False for "cuda" when the
   * CUDA backend is unavailable (cudaInfo().reason says why). Calling an op a backend lacks fails
   * with "op <name> is not supported on <device>".
   */
  supportsOp(device: Device, op: string): boolean;
  /** Test hook: empties the CPU slot of `op` (null restores every slot). */
  _hideCpuOp(op: string | null): void;
  /** Whether the CUDA backend loaded and found a usable GPU (opens libtunekit_cuda.so on first call). */
  cudaAvailable(): boolean;
  cudaInfo(): CudaInfo;
  /** Every CUDA op's cases on the CPU and the GPU with the same inputs (native/cuda_check.cc). */
  cudaCheckOps(): CudaOpCheck[];
  setErrorClass(ctor: new (message: string) => Error): void;
  isa(): Isa;
  availableIsas(): Isa[];
  setIsa(isa: Isa): void;
  /** Measured FMA peak (GFLOP/s) of all threads on the current ISA. */
  peakGflops(seconds?: number): number;
  numThreads(): number;
  setNumThreads(n: number): void;
  /** Test hook: parallel work over n items where item `bad` throws on a pool thread; returns items done. */
  _poolThrowTest(n: number, bad: number): number;
  /**
   * n zeroed elements: on the CPU 64-byte aligned native memory as a typed array (Float32Array;
   * Uint16Array for bf16; Int32Array; Uint8Array), on a device an opaque buffer. Freed by free() or
   * when garbage-collected.
   */
  alloc(n: number): Float32Array;
  alloc(n: number, o: { device?: "cpu" | "cuda"; dtype?: "f32" | "bf16" | "f16" | "i32" | "u8" }): NativeBuffer;
  free(a: NativeBuffer): void;
  /** Elements [offset, offset + length) of a buffer, sharing its memory. */
  view(b: NativeBuffer, offset: number, length: number): NativeBuffer;
  /** dst = src (same length): host ↔ device copies of one dtype, float dtype conversion on one device. */
  copy(a: { src: NativeBuffer; dst: NativeBuffer }): void;
  /** Every element of x set to `bits`, the value's bit pattern in x's dtype. */
  fill(a: { x: NativeBuffer; bits: number }): void;
  /**
   * The CUDA backend's memory: bytes tunekit holds there, the device's total, and the bytes copied
   * host → device and device → host since it loaded (copies and the scalar results ops read back).
   */
  deviceMemory(): { inUse: number; total: number; h2d: number; d2h: number };
  /** Live native memory: host bytes and buffers, device bytes and buffers. */
  memoryStats(): { bytes: number; buffers: number; deviceBytes: number; deviceBuffers: number };
  /**
   * Precision of every GEMM that does not name one (linear layers, LoRA's frozen base). "bf16" takes
   * effect on CUDA buffers (tensor cores, fp32 accumulation) and on the CPU where bf16Available();
   * "fp16" on CUDA buffers only (the CPU's GEMMs stay fp32); elsewhere GEMMs stay fp32.
   */
  setMatmulPrecision(p: MatmulPrecision): void;
  /** The precision GEMMs run at now: "fp16" when requested (devices only), "bf16" only when requested and bf16Available(). */
  matmulPrecision(): MatmulPrecision;
  /** The CPU has AVX512-BF16 (vdpbf16ps) and the AVX-512 kernels are in use. */
  bf16Available(): boolean;
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
  // ---- layers ----
  layerNormForward(a: LayerNormForwardArgs): void;
  layerNormForwardAsync(a: LayerNormForwardArgs): Promise<void>;
  layerNormBackward(a: LayerNormBackwardArgs): void;
  layerNormBackwardAsync(a: LayerNormBackwardArgs): Promise<void>;
  geluForward(a: GeluForwardArgs): void;
  geluForwardAsync(a: GeluForwardArgs): Promise<void>;
  geluBackward(a: GeluBackwardArgs): void;
  geluBackwardAsync(a: GeluBackwardArgs): Promise<void>;
  biasAdd(a: BiasAddArgs): void;
  biasAddAsync(a: BiasAddArgs): Promise<void>;
  biasBackward(a: BiasBackwardArgs): void;
  biasBackwardAsync(a: BiasBackwardArgs): Promise<void>;
  add(a: AddArgs): void;
  addAsync(a: AddArgs): Promise<void>;
  scale(a: ScaleArgs): void;
  scaleAsync(a: ScaleArgs): Promise<void>;
  dropout(a: DropoutArgs): void;
  dropoutAsync(a: DropoutArgs): Promise<void>;
  /** undefined when lossOut is a device buffer (the loss stays there). */
  crossEntropy(a: CrossEntropyArgs): CrossEntropyResult;
  crossEntropyAsync(a: CrossEntropyArgs): Promise<CrossEntropyResult>;
  embeddingForward(a: EmbeddingForwardArgs): void;
  embeddingForwardAsync(a: EmbeddingForwardArgs): Promise<void>;
  embeddingBackward(a: EmbeddingBackwardArgs): void;
  embeddingBackwardAsync(a: EmbeddingBackwardArgs): Promise<void>;
  // ---- end layers ----
}

function load(): NativeAddon {
  const root = path.join(__dirname, "..");
  let addon: NativeAddon;
  // TUNEKIT_ADDON names one .node file to load instead (scripts/asan.sh points it at the ASAN build).
  const override = process.env.TUNEKIT_ADDON;
  if (override) {
    try {
      addon = require(path.resolve(override)) as NativeAddon;
    } catch (e) {
      throw new TunekitError(`tunekit: TUNEKIT_ADDON=${override} could not be loaded (${e instanceof Error ? e.message : String(e)})`);
    }
    addon.setErrorClass(TunekitError);
    return addon;
  }
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
