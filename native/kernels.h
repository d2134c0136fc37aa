// The op interface: one plain struct of pointers and sizes per op, implemented once per ISA in
// native/cpu/ (scalar, AVX2, AVX-512) and again in cuda/. Kernels trust their arguments: the binding
// (native/binding/*.cc) validates everything before a kernel runs.
//
// Conventions (llm.c style):
//   - row-major float32; activations (B,T,C); Linear weights [out, in] as PyTorch keeps them;
//   - gradients of parameters ACCUMULATE (+=) so micro-batches can add up; gradients of inputs
//     OVERWRITE (=);
//   - random numbers come from Philox 4x32-10 keyed by (seed, offset): element e of a call uses
//     counter offset + e (see philox.h), so a mask can be recomputed instead of stored.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tk {

// C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b] for b in [0, batch).
// op(A) is M x K, op(B) is K x N, C is M x N. transA: A is stored K x M (row-major, leading dim lda).
// beta == 0 means C is not read (it may hold garbage or NaN).
// bf16 = 1: op(A) and op(B) are rounded to bfloat16 (round to nearest even) and multiplied with
// AVX512-BF16 dot products, accumulating in fp32 (C stays fp32). A kernel without bf16 support
// (no AVX512-BF16 on this CPU, the AVX2 / scalar tables, CUDA) computes fp32 instead.
struct GemmArgs {
  int transA = 0, transB = 0;
  int64_t M = 0, N = 0, K = 0;
  float alpha = 1.f, beta = 0.f;
  const float* A = nullptr; int64_t lda = 0; int64_t strideA = 0;
  const float* B = nullptr; int64_t ldb = 0; int64_t strideB = 0;
  float* C = nullptr; int64_t ldc = 0; int64_t strideC = 0;
  int64_t batch = 1;
  int bf16 = 0;
};

// Fused attention, flash style: O = softmax(Q Kᵀ·scale + masks) V, never materialising Tq x Tk.
// Q is (B, Tq, H, D) with ldq floats between consecutive tokens (so a packed qkv projection of
// width 3·H·D can be read in place); K, V are (B, Tk, H, D) with ldk / ldv; O is (B, Tq, H, D) with ldo.
// key_mask: (B, Tk) bytes, 1 = attend, 0 = padding; may be null. causal: key j > query i is masked
// (queries and keys aligned at position 0). A row with no key left gives O = 0 and lse = -inf.
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
};

// Backward of the above: reads q, k, v, o, lse (as the forward left them) and dO (layout of O, lddo);
// OVERWRITES dq, dk, dv (layouts of q, k, v with lddq, lddk, lddv).
struct AttentionBackwardArgs {
  AttentionArgs fwd;
  const float* dout = nullptr; int64_t lddo = 0;
  float* dq = nullptr; int64_t lddq = 0;
  float* dk = nullptr; int64_t lddk = 0;
  float* dv = nullptr; int64_t lddv = 0;
};

// LayerNorm over the last dim C of (rows, C): y = (x - mean) * rstd * gamma + beta.
// mean and rstd (rows) are written for the backward. gamma/beta may be null (then 1 and 0).
struct LayerNormArgs {
  int64_t rows = 0, C = 0;
  float eps = 1e-5f;
  const float* x = nullptr; const float* gamma = nullptr; const float* beta = nullptr;
  float* y = nullptr; float* mean = nullptr; float* rstd = nullptr;
};
// dx OVERWRITTEN (may be null); dgamma, dbeta ACCUMULATED (may be null).
struct LayerNormBackwardArgs {
  int64_t rows = 0, C = 0;
  const float* x = nullptr; const float* gamma = nullptr;
  const float* mean = nullptr; const float* rstd = nullptr;
  const float* dy = nullptr;
  float* dx = nullptr; float* dgamma = nullptr; float* dbeta = nullptr;
};

enum GeluApprox { GELU_ERF = 0, GELU_TANH = 1 };

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
  // outputs
  double loss = 0.0;
  int64_t count = 0;
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

// LoRA linear fused with its frozen base: y = x·Wᵀ + b + scale·(dropout(x)·Aᵀ)·Bᵀ.
// x (M, in), W (out, in), bias (out, may be null), A (r, in), B (out, r).
// h (M, r) receives dropout(x)·Aᵀ and is kept for the backward. Dropout on x uses Philox elements
// m·in + i of (seed, offset).
struct LoraArgs {
  int64_t M = 0, in = 0, out = 0, r = 0;
  const float* x = nullptr; const float* W = nullptr; const float* bias = nullptr;
  const float* A = nullptr; const float* Bm = nullptr;
  float scale = 1.f;
  float dropout_p = 0.f; uint64_t seed = 0, offset = 0;
  float* y = nullptr; float* h = nullptr;
  int bf16 = 0;  // the products with the frozen W in bf16 (GemmArgs::bf16); the rank-r ones stay fp32
};
// dx OVERWRITTEN (may be null); dA, dB, dbias ACCUMULATED (dbias may be null). Never forms dW.
struct LoraBackwardArgs {
  LoraArgs fwd;  // x, W, A, Bm, h, scale, dropout as in the forward
  const float* dy = nullptr;
  float* dx = nullptr; float* dA = nullptr; float* dB = nullptr; float* dbias = nullptr;
};

struct Kernels {
  const char* isa;
  void (*gemm)(const GemmArgs&);
  void (*attention_forward)(const AttentionArgs&);
  void (*attention_backward)(const AttentionBackwardArgs&);
  void (*layernorm_forward)(const LayerNormArgs&);
  void (*layernorm_backward)(const LayerNormBackwardArgs&);
  void (*gelu_forward)(int64_t n, const float* x, float* y, int approx);
  void (*gelu_backward)(int64_t n, const float* x, const float* dy, float* dx, int approx);
  // y (rows, C) = x + bias (broadcast over rows); y may alias x.
  void (*bias_add)(int64_t rows, int64_t C, const float* x, const float* bias, float* y);
  // dbias (C) += column sums of dy (rows, C).
  void (*bias_backward)(int64_t rows, int64_t C, const float* dy, float* dbias);
  // y = a + b (n); y may alias a or b.
  void (*add)(int64_t n, const float* a, const float* b, float* y);
  void (*cross_entropy)(CrossEntropyArgs&);
  // out (N, C) = table[ids] ; table (V, C)
  void (*embedding_forward)(int64_t N, int64_t C, const int32_t* ids, const float* table, float* out);
  // dtable[ids[i]] += dout[i], in a fixed order (deterministic). Rows of id == padding_idx get nothing
  // (torch.nn.Embedding's padding_idx); padding_idx < 0 means none.
  void (*embedding_backward)(int64_t N, int64_t C, const int32_t* ids, const float* dout, float* dtable, int32_t padding_idx);
  void (*adamw)(const AdamWArgs&);
  double (*sum_squares)(int64_t n, const float* x);
  // x *= s
  void (*scale)(int64_t n, float* x, float s);
  void (*lora_forward)(const LoraArgs&);
  void (*lora_backward)(const LoraBackwardArgs&);
  // y = x·keep/(1-p); the same call on dy gives the backward.
  void (*dropout)(int64_t n, const float* x, float* y, float p, uint64_t seed, uint64_t offset);
  // Measured FMA rate of all threads for this ISA (the roofline the benchmarks compare against).
  double (*peak_gflops)(double seconds);
};

// dispatch.cc
const Kernels& kernels();                 // the ISA in use
bool set_isa(const char* name);           // "avx512" | "avx2" | "scalar"; false if unsupported here
const char* const* available_isas(int* count);  // best first
bool bf16_supported();                    // this CPU has AVX512-BF16 (vdpbf16ps) and AVX-512 is in use

}  // namespace tk
