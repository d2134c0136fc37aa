// The op contract shared by every backend (native/cpu/ for the CPU, cuda/ for NVIDIA GPUs): one args
// struct per op and THE op list, TK_OPS, from which the op ids, their names, the CPU tables (one per
// ISA), the CUDA table and the ABI check are generated. Kernels trust their arguments: the binding
// (native/binding/*.cc) validates everything before a kernel runs.
//
// Every op has one signature: void <name>(<Args>&), called through a table slot that takes a pointer
// to the args struct. An op listed with `const Args` only reads its struct; one listed without writes
// results into it (cross_entropy's loss, sum_squares' result).
//
// Conventions (llm.c style):
//   - row-major float32; activations (B,T,C); Linear weights [out, in] as PyTorch keeps them;
//   - a weight operand may be bfloat16 (a frozen base stored at 2 bytes a parameter): gemm's B,
//     lora's W and embedding_forward's table, each with its dtype beside it (TK_F32 or TK_BF16). It is
//     widened to float32 exactly, so the result equals the float32 op on the rounded weights. Nothing
//     else is ever bf16, and no gradient is ever formed for a bf16 weight;
//   - gradients of parameters ACCUMULATE (+=) so micro-batches can add up; gradients of inputs
//     OVERWRITE (=);
//   - random numbers come from Philox 4x32-10 keyed by (seed, offset): element e of a call uses
//     counter offset + e (tunekit/philox.h), so a mask can be recomputed instead of stored.
//   - pointers are the backend's: host memory for the CPU, device memory for CUDA.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

// X(name, Args) for every op; `name` is also what native.ops() lists. Adding an op: one line here and
// its args struct below, the CPU kernel (native/cpu/), its binding (native/binding/), its TS signature
// (lib/native.ts), its test, and its entry in test/op_list.test.ts. The CUDA kernel may come later:
// until cuda/runtime.cu's TK_CUDA_OPS lists the op, its CUDA slot is empty (supportsOp false, a call
// fails with "op <name> is not supported on cuda").
#define TK_OPS(X)                                         \
  X(gemm, const GemmArgs)                                 \
  X(attention_forward, const AttentionArgs)               \
  X(attention_backward, const AttentionBackwardArgs)      \
  X(layernorm_forward, const LayerNormArgs)               \
  X(layernorm_backward, const LayerNormBackwardArgs)      \
  X(gelu_forward, const GeluArgs)                         \
  X(gelu_backward, const GeluBackwardArgs)                \
  X(bias_add, const BiasAddArgs)                          \
  X(bias_backward, const BiasBackwardArgs)                \
  X(add, const AddArgs)                                   \
  X(scale, const ScaleArgs)                               \
  X(dropout, const DropoutArgs)                           \
  X(cross_entropy, CrossEntropyArgs)                      \
  X(embedding_forward, const EmbeddingArgs)               \
  X(embedding_backward, const EmbeddingBackwardArgs)      \
  X(adamw, const AdamWArgs)                               \
  X(sum_squares, SumSquaresArgs)                          \
  X(lora_forward, const LoraArgs)                         \
  X(lora_backward, const LoraBackwardArgs)                \
  X(unary_forward, const UnaryArgs)                       \
  X(unary_backward, const UnaryBackwardArgs)              \
  X(copy_strided, const CopyStridedArgs)                  \
  X(masked_mean_forward, const MaskedMeanArgs)            \
  X(masked_mean_backward, const MaskedMeanBackwardArgs)   \
  X(cosine_forward, const CosineArgs)                     \
  X(cosine_backward, const CosineBackwardArgs)            \
  X(l2norm_forward, const L2NormArgs)                     \
  X(l2norm_backward, const L2NormBackwardArgs)            \
  X(mse_forward, const LossArgs)                          \
  X(mse_backward, const LossBackwardArgs)                 \
  X(bce_forward, const LossArgs)                          \
  X(bce_backward, const LossBackwardArgs)                 \
  X(dot_forward, const DotArgs)                           \
  X(axpby, const AxpbyArgs)                               \
  X(fill, const FillArgs)                                 \
  X(convert, const ConvertArgs)                           \
  X(rmsnorm_forward, const RmsNormArgs)                   \
  X(rmsnorm_backward, const RmsNormBackwardArgs)          \
  X(rope_forward, const RopeArgs)                         \
  X(rope_backward, const RopeArgs)                        \
  X(swiglu_forward, const SwigluArgs)                     \
  X(swiglu_backward, const SwigluBackwardArgs)            \
  X(attention_decode, const AttentionDecodeArgs)

// Op ids: the index of an op's slot in every backend's table; they cross the dlopen boundary as int.
#define TK_OP_ID(name, Args) TK_OP_##name,
enum tk_op : int { TK_OPS(TK_OP_ID) TK_OP_COUNT };
#undef TK_OP_ID

#define TK_OP_NAME(name, Args) #name,
inline constexpr const char* tk_op_names[] = {TK_OPS(TK_OP_NAME)};
#undef TK_OP_NAME
static_assert(sizeof(tk_op_names) / sizeof(tk_op_names[0]) == TK_OP_COUNT, "one name per op");

// "gemm" for TK_OP_gemm; null for an id outside [0, TK_OP_COUNT).
inline const char* tk_op_name(int op) { return op >= 0 && op < TK_OP_COUNT ? tk_op_names[op] : nullptr; }
// The id of an op name; -1 when there is none.
inline int tk_op_from_name(const char* name) {
  for (int i = 0; i < TK_OP_COUNT; i++)
    if (std::strcmp(tk_op_names[i], name) == 0) return i;
  return -1;
}

// Element types of buffers (storage dtypes); they cross the dlopen boundary as int.
enum tk_dtype : int { TK_F32 = 0, TK_BF16 = 1, TK_F16 = 2, TK_I32 = 3, TK_U8 = 4 };

// Bytes per element of a dtype (0 for a number that is no dtype).
inline int tk_dtype_bytes(int dtype) {
  switch (dtype) {
    case TK_F32: case TK_I32: return 4;
    case TK_BF16: case TK_F16: return 2;
    case TK_U8: return 1;
    default: return 0;
  }
}

namespace tk {

// C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b] for b in [0, batch).
// op(A) is M x K, op(B) is K x N, C is M x N. transA: A is stored K x M (row-major, leading dim lda).
// beta == 0 means C is not read (it may hold garbage or NaN).
// b_dtype: B's elements are float (TK_F32) or bfloat16 (TK_BF16, a frozen weight; ld/strides count
// elements either way); bf16 B is widened exactly, so C is what float32 B holding the same values gives.
// bf16 = 1: op(A) and op(B) are rounded to bfloat16 (round to nearest even) and multiplied with
// AVX512-BF16 dot products (AMX tiles where the CPU has them), accumulating in fp32 (C stays fp32).
// CUDA runs it on tensor cores (WMMA), a float B rounded as A is, a bf16 B read as stored. A kernel
// without bf16 support (no AVX512-BF16 on this CPU, the AVX2 / scalar tables) computes fp32 instead.
// fp16 = 1 (CUDA only; the binding refuses it on the CPU): op(A) and a float op(B) rounded to IEEE half
// on tensor cores, fp32 accumulation — fp16 autocast, which wants loss scaling (LossScaler) in training.
// A bf16 B takes the bf16 path instead.
// The epilogue (GemmArgs::ep) is applied to each element of C as it is stored after the last K block,
// while the tile is still in registers:
//   v = alpha·op(A)·op(B) + beta·C  + bias[j] (bias set)  + residual[i, j] (residual set);
//   pre[i, j] = v (pre set: the pre-activation a GELU backward reads);  C[i, j] = act(v).
// residual and pre have C's layout (ldc, strideC); bias is N floats shared by every matrix of a batch.
// None of bias, residual, pre may overlap C (C holds partial sums between K blocks).
enum GemmAct { GEMM_ACT_NONE = 0, GEMM_ACT_GELU_ERF = 1, GEMM_ACT_GELU_TANH = 2 };
struct GemmEpilogue {
  const float* bias = nullptr;
  const float* residual = nullptr;
  float* pre = nullptr;
  int act = GEMM_ACT_NONE;
};

struct GemmArgs {
  int transA = 0, transB = 0;
  int64_t M = 0, N = 0, K = 0;
  float alpha = 1.f, beta = 0.f;
  const float* A = nullptr; int64_t lda = 0; int64_t strideA = 0;
  const void* B = nullptr; int64_t ldb = 0; int64_t strideB = 0;
  float* C = nullptr; int64_t ldc = 0; int64_t strideC = 0;
  int64_t batch = 1;
  int bf16 = 0;
  int fp16 = 0;
  int b_dtype = TK_F32;
  GemmEpilogue ep;  // bias / residual / GELU applied as C is stored (none by default)
};

// Fused attention, flash style: O = softmax(Q Kᵀ·scale + masks) V, never materialising Tq x Tk.
// Q is (B, Tq, H, D) with ldq floats between consecutive tokens (so a packed qkv projection can be read
// in place); K, V are (B, Tk, Hkv, D) with ldk / ldv; O is (B, Tq, H, D) with ldo.
// Grouped-query attention: query head h reads kv head h / (H / Hkv); H is a multiple of Hkv, and
// Hkv = 0 means Hkv = H (multi-head attention).
// key_mask: (B, Tk) bytes, 1 = attend, 0 = padding; may be null. causal: query i sits at key position
// q_offset + i and key j > q_offset + i is masked (q_offset = 0: queries and keys aligned at position 0;
// q_offset = Tk - Tq: the queries are the last Tq of the Tk keys, as in prefill after a KV cache).
// window > 0 (with causal only): key j is also masked when q_offset + i - j >= window (Mistral's
// sliding window, HF's `kv_idx > q_idx - sliding_window`). A row with no key left gives O = 0 and
// lse = -inf.
// Dropout on the probabilities: element (b, h, i, j) uses Philox element
// ((b·H + h)·Tq + i)·Tk + j, kept when uniform >= p, scaled by 1/(1-p).
struct AttentionArgs {
  int64_t B = 0, H = 0, Tq = 0, Tk = 0, D = 0;
  const float* q = nullptr; int64_t ldq = 0;
  const float* k = nullptr; int64_t ldk = 0;
  const float* v = nullptr; int64_t ldv = 0;
  float* o = nullptr; int64_t ldo = 0;
  float* lse = nullptr;  // (B, H, Tq): log-sum-exp of the scaled, masked scores, saved for backward
  const uint8_t* key_mask = nullptr;
  int causal = 0;
  float scale = 1.f;
  float dropout_p = 0.f; uint64_t seed = 0, offset = 0;
  int64_t Hkv = 0;       // kv heads (0: H)
  int64_t window = 0;    // sliding window (0: none)
  int64_t q_offset = 0;  // key position of query 0 (causal)
};

// Backward of the above: reads q, k, v, o, lse (as the forward left them) and dO (layout of O, lddo);
// OVERWRITES dq, dk, dv (layouts of q, k, v with lddq, lddk, lddv). With grouped-query attention dk, dv
// of a kv head sum the contributions of its H / Hkv query heads in head order (deterministic).
struct AttentionBackwardArgs {
  AttentionArgs fwd;
  const float* dout = nullptr; int64_t lddo = 0;
  float* dq = nullptr; int64_t lddq = 0;
  float* dk = nullptr; int64_t lddk = 0;
  float* dv = nullptr; int64_t lddv = 0;
};

// LayerNorm over the last dim C of (rows, C): y = (x - mean) * rstd * gamma + beta.
// mean and rstd (rows) are written for the backward. gamma/beta may be null (then 1 and 0).
// residual (rows, C; may be null): the input is x + residual, summed in the same pass (BERT's
// LayerNorm(dropout(dense) + input)); the sum is not stored, the backward adds it again.
struct LayerNormArgs {
  int64_t rows = 0, C = 0;
  float eps = 1e-5f;
  const float* x = nullptr; const float* gamma = nullptr; const float* beta = nullptr;
  float* y = nullptr; float* mean = nullptr; float* rstd = nullptr;
  const float* residual = nullptr;
};
// dx OVERWRITTEN (may be null); dgamma, dbeta ACCUMULATED (may be null). residual as in the forward
// (the input was x + residual); the gradient of residual equals dx.
struct LayerNormBackwardArgs {
  int64_t rows = 0, C = 0;
  const float* x = nullptr; const float* gamma = nullptr;
  const float* mean = nullptr; const float* rstd = nullptr;
  const float* dy = nullptr;
  float* dx = nullptr; float* dgamma = nullptr; float* dbeta = nullptr;
  const float* residual = nullptr;
};

enum GeluApprox { GELU_ERF = 0, GELU_TANH = 1 };

// y (n) = gelu(x); y may alias x. approx: GELU_ERF (PyTorch's default) or GELU_TANH.
struct GeluArgs {
  int64_t n = 0;
  const float* x = nullptr;
  float* y = nullptr;
  int approx = GELU_ERF;
};
// dx (n) = dy · gelu'(x); dx may alias x or dy.
struct GeluBackwardArgs {
  int64_t n = 0;
  const float* x = nullptr; const float* dy = nullptr;
  float* dx = nullptr;
  int approx = GELU_ERF;
};

// y (rows, C) = x + bias (broadcast over rows); y may alias x.
struct BiasAddArgs {
  int64_t rows = 0, C = 0;
  const float* x = nullptr; const float* bias = nullptr;
  float* y = nullptr;
};
// dbias (C) += column sums of dy (rows, C).
struct BiasBackwardArgs {
  int64_t rows = 0, C = 0;
  const float* dy = nullptr;
  float* dbias = nullptr;
};

// y = a + b (n); y may alias a or b.
struct AddArgs {
  int64_t n = 0;
  const float* a = nullptr; const float* b = nullptr;
  float* y = nullptr;
};

// x (n) *= s·sp[0], in place; sp (one float in the backend's memory, may be null: then x *= s) is
// how a backward scales by the upstream gradient of a scalar loss without reading it on the host.
struct ScaleArgs {
  int64_t n = 0;
  float* x = nullptr;
  float s = 1.f;
  const float* sp = nullptr;
};

// y = x·keep/(1-p), keep when Philox element e of (seed, offset) is >= p; y may alias x. The same call
// on dy gives the backward.
struct DropoutArgs {
  int64_t n = 0;
  const float* x = nullptr;
  float* y = nullptr;
  float p = 0.f;
  uint64_t seed = 0, offset = 0;
};

// Softmax cross-entropy over rows of logits (N, V) with int32 targets; target == ignore_index rows
// contribute nothing. loss = sum of row losses / divisor; divisor <= 0 means "the number of rows not
// ignored" (PyTorch's mean). dlogits (may be null) OVERWRITTEN with d(loss)/d(logits) * grad_scale;
// it may alias logits. row_loss (N, may be null) gets each row's loss (0 for ignored rows).
struct CrossEntropyArgs {
  int64_t N = 0, V = 0;
  const float* logits = nullptr;
  const int32_t* targets = nullptr;
  int32_t ignore_index = -100;
  float divisor = 0.f;
  float grad_scale = 1.f;
  float* dlogits = nullptr;
  float* row_loss = nullptr;
  // loss_out (one float in the backend's memory, may be null) receives the loss where it is computed:
  // on a device it then stays there (no read-back; loss and count below are left unset).
  float* loss_out = nullptr;
  // results, written by the op (unless loss_out is set on a device)
  double loss = 0.0;
  int64_t count = 0;
};

// out (N, C) = table[ids]; table (V, C), float or bfloat16 (table_dtype; out is float either way).
// Every id is in [0, V).
struct EmbeddingArgs {
  int64_t N = 0, C = 0;
  const int32_t* ids = nullptr;
  const void* table = nullptr;
  float* out = nullptr;
  int table_dtype = TK_F32;
};
// dtable[ids[i]] += dout[i], in a fixed order (deterministic). Rows of id == padding_idx get nothing
// (torch.nn.Embedding's padding_idx); padding_idx < 0 means none.
struct EmbeddingBackwardArgs {
  int64_t N = 0, C = 0;
  const int32_t* ids = nullptr;
  const float* dout = nullptr;
  float* dtable = nullptr;
  int32_t padding_idx = -1;
};

// AdamW on one tensor (PyTorch's torch.optim.AdamW): decoupled decay p -= lr·wd·p, then the Adam
// step with bias correction for step t (t >= 1). grad_scale multiplies the gradient first (global-norm
// clipping without a separate pass).
struct AdamWArgs {
  int64_t n = 0;
  float* param = nullptr; const float* grad = nullptr; float* m = nullptr; float* v = nullptr;
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.f;
  int64_t step = 1;
  float grad_scale = 1.f;
};

// result = sum of x[i]² over n elements, accumulated in double, deterministic for any thread count.
struct SumSquaresArgs {
  int64_t n = 0;
  const float* x = nullptr;
  double result = 0.0;  // written by the op
};

// LoRA linear fused with its frozen base: y = x·Wᵀ + b + scale·(dropout(x)·Aᵀ)·Bᵀ.
// x (M, in), W (out, in) float or bfloat16 (w_dtype), bias (out, may be null), A (r, in), B (out, r).
// h (M, r) receives dropout(x)·Aᵀ and is kept for the backward. Dropout on x uses Philox elements
// m·in + i of (seed, offset).
struct LoraArgs {
  int64_t M = 0, in = 0, out = 0, r = 0;
  const float* x = nullptr; const void* W = nullptr; const float* bias = nullptr;
  const float* A = nullptr; const float* Bm = nullptr;
  float scale = 1.f;
  float dropout_p = 0.f; uint64_t seed = 0, offset = 0;
  float* y = nullptr; float* h = nullptr;
  int bf16 = 0;  // the products with the frozen W in bf16 (GemmArgs::bf16); the rank-r ones stay fp32
  int fp16 = 0;  // the same in fp16 (GemmArgs::fp16, CUDA only)
  int w_dtype = TK_F32;  // W's elements: TK_F32 or TK_BF16 (GemmArgs::b_dtype of the products with W)
};
// dx OVERWRITTEN (may be null); dA, dB, dbias ACCUMULATED (dbias may be null). Never forms dW.
struct LoraBackwardArgs {
  LoraArgs fwd;  // x, W, A, Bm, h, scale, dropout as in the forward
  const float* dy = nullptr;
  float* dx = nullptr; float* dA = nullptr; float* dB = nullptr; float* dbias = nullptr;
};

// ---- task heads and losses (native/cpu/heads.cc, losses.cc; cuda/heads.cu, losses.cu) ----
// A scalar that a backward multiplies by (the upstream gradient of a scalar loss) is a pointer to one
// float in the backend's memory, never a host float: on a GPU it stays on the device. Losses write
// their value to a one-float buffer the same way.

enum UnaryKind { UNARY_TANH = 0, UNARY_RELU = 1, UNARY_SIGMOID = 2, UNARY_SILU = 3 };

// y (n) = f(x) for f = kind; y may alias x. relu(NaN) is NaN.
struct UnaryArgs {
  int64_t n = 0;
  const float* x = nullptr;
  float* y = nullptr;
  int kind = UNARY_TANH;
};
// dx (n) = dy · f'(x), from the forward's output y where that is exact (tanh' = 1 - y², sigmoid' =
// y(1 - y), relu' = [y > 0]) and from its input x for silu (σ(x)(1 + x(1 - σ(x)))); the other of x, y
// is not read (may be null). dx may alias dy, x or y.
struct UnaryBackwardArgs {
  int64_t n = 0;
  const float* x = nullptr; const float* y = nullptr; const float* dy = nullptr;
  float* dx = nullptr;
  int kind = UNARY_TANH;
};

// dst (rows, cols; dst_ld floats between rows) = src (rows, cols; src_ld), or += when accumulate.
// A column of (rows, K) is src + j with src_ld = K, cols = 1. dst and src do not overlap.
struct CopyStridedArgs {
  int64_t rows = 0, cols = 0;
  const float* src = nullptr; int64_t src_ld = 0;
  float* dst = nullptr; int64_t dst_ld = 0;
  int accumulate = 0;
};

// y (B, C) = mean of the rows of x (B, T, C) whose mask (B·T bytes, nonzero = real token) is set:
// sum / max(count, 1e-9), so a row with no real token gives 0 (sentence-transformers' mean pooling).
struct MaskedMeanArgs {
  int64_t B = 0, T = 0, C = 0;
  const float* x = nullptr; const uint8_t* mask = nullptr;
  float* y = nullptr;
};
// dx (B, T, C) OVERWRITTEN: dy[b] / count at real positions, 0 at padding.
struct MaskedMeanBackwardArgs {
  int64_t B = 0, T = 0, C = 0;
  const uint8_t* mask = nullptr; const float* dy = nullptr;
  float* dx = nullptr;
};

// y (N) = row-wise cosine similarity of a, b (N, C): a·b / (na·nb) with each norm clamped on its own,
// na = max(‖a‖, 1e-8).
struct CosineArgs {
  int64_t N = 0, C = 0;
  const float* a = nullptr; const float* b = nullptr;
  float* y = nullptr;
};
// da, db (N, C) OVERWRITTEN (either may be null) with dy (N) times the derivative of the clamped form
// (a clamped norm is a constant). Recomputes the norms from a and b.
struct CosineBackwardArgs {
  int64_t N = 0, C = 0;
  const float* a = nullptr; const float* b = nullptr; const float* dy = nullptr;
  float* da = nullptr; float* db = nullptr;
};

// y (N, C) = x / norm per row, norm (N) = max(‖x‖, 1e-8) saved for the backward; y may alias x.
struct L2NormArgs {
  int64_t N = 0, C = 0;
  const float* x = nullptr;
  float* y = nullptr; float* norm = nullptr;
};
// dx (N, C) OVERWRITTEN: (dy - y·(y·dy)) / norm per row, or dy / norm where the norm was clamped
// (norm <= 1e-8). dx may alias dy.
struct L2NormBackwardArgs {
  int64_t N = 0, C = 0;
  const float* y = nullptr; const float* norm = nullptr; const float* dy = nullptr;
  float* dx = nullptr;
};

// Element-wise losses over n elements, summed in double (a fixed order on the CPU, a fixed two-pass
// tree on CUDA) and divided by divisor (<= 0 means n, the mean), written to loss[0]:
//   mse: (x - target)²;  bce: max(x, 0) - x·target + log1p(exp(-|x|)) (BCEWithLogits, x the logits).
struct LossArgs {
  int64_t n = 0;
  const float* x = nullptr; const float* target = nullptr;
  float divisor = 0.f;
  float* loss = nullptr;  // one float
};
// dx (n) OVERWRITTEN with dy[0] times the loss's derivative: mse 2(x - target)/divisor, bce
// (σ(x) - target)/divisor. dy is one float; dx may alias x or target.
struct LossBackwardArgs {
  int64_t n = 0;
  const float* x = nullptr; const float* target = nullptr;
  float divisor = 0.f;
  const float* dy = nullptr;  // one float
  float* dx = nullptr;
};

// y[0] = Σ x·w over n, accumulated in double (fixed order / fixed tree). Its backward is axpby.
struct DotArgs {
  int64_t n = 0;
  const float* x = nullptr; const float* w = nullptr;
  float* y = nullptr;  // one float
};

// y (n) = alpha·(ap ? ap[0] : 1)·a + beta·b; b null or beta == 0 means b is not read. y may alias a or
// b; ap (one float in the backend's memory, the upstream gradient of a scalar) does not overlap y.
struct AxpbyArgs {
  int64_t n = 0;
  float alpha = 1.f, beta = 0.f;
  const float* a = nullptr; const float* ap = nullptr; const float* b = nullptr;
  float* y = nullptr;
};

// n elements of elem_bytes (1, 2 or 4) at x, each set to the low elem_bytes bytes of bits (the
// caller encodes the value in the buffer's dtype: 1.0f as 0x3f800000, bf16 1.0 as 0x3f80, ...).
struct FillArgs {
  int64_t n = 0;
  void* x = nullptr;
  int elem_bytes = 4;
  uint32_t bits = 0;
};

// dst (n, dst_dtype) = src (n, src_dtype) between float dtypes (TK_F32, TK_BF16, TK_F16), rounding to
// nearest even; NaN stays NaN. src and dst do not overlap.
struct ConvertArgs {
  int64_t n = 0;
  const void* src = nullptr; int src_dtype = TK_F32;
  void* dst = nullptr; int dst_dtype = TK_F32;
};

// ---- decoder ops (native/cpu/decoder.cc, attention_decode.cc; cuda/decoder.cu, attention_decode.cu) ----

// RMSNorm over the last dim C (LlamaRMSNorm, in float32): y = x·rstd·weight with
// rstd = 1/sqrt(mean(x²) + eps), saved per row for the backward. weight (C) may be null (then 1).
// Rows come in groups of G that sit side by side: row r is at x + (r / G)·ldx + (r % G)·C (likewise
// y with ldy), so G = 1, ldx = C is a plain (rows, C) matrix and G = heads, C = head_dim, ldx = the
// width of a packed [q | k | v] projection normalises each head of q (Qwen3's q_norm) in place of a copy.
struct RmsNormArgs {
  int64_t rows = 0, C = 0, G = 1;
  float eps = 1e-6f;
  const float* x = nullptr; int64_t ldx = 0;
  const float* weight = nullptr;
  float* y = nullptr; int64_t ldy = 0;
  float* rstd = nullptr;  // (rows)
};
// x̂ = x·rstd, g = dy·weight: dx = rstd·(g - x̂·mean(g·x̂)) OVERWRITTEN (may be null), dweight += Σ dy·x̂
// over rows, ACCUMULATED (may be null), summed in a fixed partition of the rows (the same bits for any
// thread count). dy, dx in the grouped layout of x with lddy, lddx.
struct RmsNormBackwardArgs {
  int64_t rows = 0, C = 0, G = 1;
  const float* x = nullptr; int64_t ldx = 0;
  const float* weight = nullptr;
  const float* rstd = nullptr;
  const float* dy = nullptr; int64_t lddy = 0;
  float* dx = nullptr; int64_t lddx = 0;
  float* dweight = nullptr;
};

// Rotary position embedding in place on x (B, T, H, D), ld floats between tokens (a slice of a packed
// [q | k | v] projection: q and k together are H + Hkv adjacent heads), HF's rotate_half convention
// (the two halves of D rotate together, not interleaved pairs): for token (b, t) at position
// p = pos[b·T + t] and d < D/2,
//   x[d] ← x[d]·cos[p][d] − x[d + D/2]·sin[p][d],   x[d + D/2] ← x[d + D/2]·cos[p][d] + x[d]·sin[p][d].
// cos, sin: (P, D/2) tables the caller computes (rope_theta, rope_scaling, attention scaling folded in);
// every pos in [0, P); D even. rope_backward rotates a gradient in place by −θ (the transpose).
struct RopeArgs {
  int64_t B = 0, T = 0, H = 0, D = 0, P = 0;
  float* x = nullptr; int64_t ld = 0;
  const float* cos = nullptr; const float* sin = nullptr;
  const int32_t* pos = nullptr;  // (B·T)
};

// y (rows, C) = silu(gate)·up (LlamaMLP's act_fn(gate_proj(x)) * up_proj(x)); gate, up, y each with its
// leading dimension, so a fused [gate | up] projection is read in place (ldg = ldu = 2·C, up = gate + C).
// y overlaps neither input.
struct SwigluArgs {
  int64_t rows = 0, C = 0;
  const float* gate = nullptr; int64_t ldg = 0;
  const float* up = nullptr; int64_t ldu = 0;
  float* y = nullptr; int64_t ldy = 0;
};
// dgate = dy·up·σ(gate)·(1 + gate·(1 − σ(gate))), dup = dy·silu(gate), OVERWRITTEN (either may be null),
// with their own leading dimensions (a fused [dgate | dup] gradient).
struct SwigluBackwardArgs {
  int64_t rows = 0, C = 0;
  const float* gate = nullptr; int64_t ldg = 0;
  const float* up = nullptr; int64_t ldu = 0;
  const float* dy = nullptr; int64_t lddy = 0;
  float* dgate = nullptr; int64_t lddg = 0;
  float* dup = nullptr; int64_t lddu = 0;
};

// Decoding attention (inference, no backward): one query token per (batch, head) against a KV cache,
// o = softmax(q Kᵀ·scale) V. q (B, H, D) with ldq floats between batch rows (a token row of a packed
// projection); caches k, v (B, Tmax, Hkv, D) with ldk / ldv floats between tokens and Tmax tokens per
// batch row, of which keys [0, Tk) are read; query head h reads kv head h / (H / Hkv). o (B, H, D), ldo.
// lengths (B int32, may be null): batch row b sees keys [0, lengths[b]) (each in [0, Tk]); else Tk.
// key_mask (B, Tk bytes, may be null): 0 = padding (left-padded batches). window > 0: the query is the
// last key of its row (position len_b − 1) and sees keys j > len_b − 1 − window. A row with no key gives 0.
// The keys are cut into chunks whose size depends only on Tk; each chunk's softmax is partial (max,
// sum, weighted values) and the chunks are merged in order (flash-decoding), so batch 1 spreads over
// every core and the result is the same for any thread count.
struct AttentionDecodeArgs {
  int64_t B = 0, H = 0, Hkv = 0, Tk = 0, Tmax = 0, D = 0;
  const float* q = nullptr; int64_t ldq = 0;
  const float* k = nullptr; int64_t ldk = 0;
  const float* v = nullptr; int64_t ldv = 0;
  float* o = nullptr; int64_t ldo = 0;
  const int32_t* lengths = nullptr;
  const uint8_t* key_mask = nullptr;
  int64_t window = 0;
  float scale = 1.f;
};

// Keys per chunk of attention_decode for Tk keys: a multiple of 16, at least 64, at most 64 chunks
// (both backends use it, so they split alike).
inline int64_t decode_chunk(int64_t Tk) {
  int64_t c = (Tk + 63) / 64;
  c = (c + 15) / 16 * 16;
  return c < 64 ? 64 : c;
}

// OpArgs<TK_OP_gemm>::type is `const GemmArgs`: the args type of an op id, for type-checked calls.
template <int op>
struct OpArgs;
#define TK_OP_ARGS(name, Args) \
  template <>                  \
  struct OpArgs<TK_OP_##name> { using type = Args; };
TK_OPS(TK_OP_ARGS)
#undef TK_OP_ARGS

// A fingerprint of the op list: every name, in order, with the size of its args struct. A backend
// library built from another list (an op added, removed, reordered, or a struct changed size) reports
// a different value and is refused before any op is called through mismatched structs.
constexpr uint32_t fnv1a(uint32_t h, uint32_t byte) { return (h ^ byte) * 16777619u; }
constexpr uint32_t ops_fingerprint() {
  uint32_t h = 2166136261u;
#define TK_OP_MIX(name, Args)                                        \
  for (const char* c = #name; *c; c++) h = fnv1a(h, uint8_t(*c));    \
  for (int i = 0; i < 4; i++) h = fnv1a(h, uint32_t(sizeof(Args) >> (8 * i)) & 0xffu);
  TK_OPS(TK_OP_MIX)
#undef TK_OP_MIX
  return h;
}

}  // namespace tk
