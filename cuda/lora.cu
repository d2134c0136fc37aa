// LoRA linear fused with its frozen base (PEFT's lora.Linear), the structure of native/cpu/lora.cc:
//   forward   y = x·Wᵀ + b + s·h·Bᵀ,  h = dropout(x)·Aᵀ  (h kept for the backward)
//   backward  dB += s·dyᵀ·h;  dh = s·dy·B;  dA += dhᵀ·dropout(x);  dx = dy·W + dropout'(dh·A)
// Every product is the hand-written GEMM; the dropout mask is recomputed from Philox, never stored.
#include "common.cuh"

namespace tk {
namespace cuda {
namespace {

// C (M x N) = alpha·op(A)·op(B) + beta·C, all row-major and dense; the products with W pass its dtype
// and the precision (LoraArgs::bf16 / ::fp16, as the CPU), the rank-r ones stay float32.
void mm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, const void* B, float beta,
        float* C, int bf16 = 0, int b_dtype = TK_F32, int fp16 = 0) {
  GemmArgs g;
  g.bf16 = bf16;
  g.fp16 = fp16;
  g.b_dtype = b_dtype;
  g.transA = ta; g.transB = tb;
  g.M = M; g.N = N; g.K = K;
  g.alpha = alpha; g.beta = beta;
  g.A = A; g.lda = ta ? M : K;
  g.B = B; g.ldb = tb ? K : N;
  g.C = C; g.ldc = N;
  gemm(g);
}

__global__ void broadcast_rows_kernel(int64_t rows, int64_t C, const float* row, float* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < rows * C; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = row[i % C];
}

// dropout(x) in workspace, or x itself when there is no dropout.
const float* dropped_input(const LoraArgs& a) {
  if (a.dropout_p <= 0.f) return a.x;
  float* xd = workspace_of<float>(kSlotLoraX, size_t(a.M * a.in));
  dropout_apply(a.M * a.in, a.x, xd, a.dropout_p, a.seed, a.offset, false);
  return xd;
}

}  // namespace

void lora_forward(const LoraArgs& a) {
  if (a.M <= 0) return;
  const float* xd = dropped_input(a);
  mm(false, true, a.M, a.r, a.in, 1.f, xd, a.A, 0.f, a.h);  // h (M, r) = dropout(x)·Aᵀ
  if (a.bias) {
    broadcast_rows_kernel<<<grid_for(a.M * a.out), kBlock>>>(a.M, a.out, a.bias, a.y);
    check_launch("lora_forward");
  }
  mm(false, true, a.M, a.out, a.in, 1.f, a.x, a.W, a.bias ? 1.f : 0.f, a.y, a.bf16, a.w_dtype, a.fp16);  // y (M, out) += x·Wᵀ
  mm(false, true, a.M, a.out, a.r, a.scale, a.h, a.Bm, 1.f, a.y);              // y += s·h·Bᵀ
}

void lora_backward(const LoraBackwardArgs& b) {
  const LoraArgs& a = b.fwd;
  if (a.M <= 0) return;
  if (b.dbias) column_sums(a.M, a.out, b.dy, b.dbias);
  mm(true, false, a.out, a.r, a.M, a.scale, b.dy, a.h, 1.f, b.dB);  // dB (out, r) += s·dyᵀ·h
  float* dh = workspace_of<float>(kSlotLoraDh, size_t(a.M * a.r));
  mm(false, false, a.M, a.r, a.out, a.scale, b.dy, a.Bm, 0.f, dh);   // dh (M, r) = s·dy·B
  const float* xd = dropped_input(a);
  mm(true, false, a.r, a.in, a.M, 1.f, dh, xd, 1.f, b.dA);           // dA (r, in) += dhᵀ·dropout(x)
  if (!b.dx) return;
  mm(false, false, a.M, a.in, a.out, 1.f, b.dy, a.W, 0.f, b.dx, a.bf16, a.w_dtype, a.fp16);  // dx (M, in) = dy·W
  if (a.dropout_p <= 0.f) return mm(false, false, a.M, a.in, a.r, 1.f, dh, a.A, 1.f, b.dx);  // += dh·A
  float* t = workspace_of<float>(kSlotLoraX, size_t(a.M * a.in));  // dropout(x) is done with: reuse
  mm(false, false, a.M, a.in, a.r, 1.f, dh, a.A, 0.f, t);
  dropout_apply(a.M * a.in, t, b.dx, a.dropout_p, a.seed, a.offset, true);
}

}  // namespace cuda
}  // namespace tk
