// LoRA linear fused with its frozen base (PEFT's lora.Linear):
//   forward   y = x·Wᵀ + b + s·h·Bᵀ,  h = dropout(x)·Aᵀ  (h kept for the backward)
//   backward  dB += s·dyᵀ·h;  dh = s·dy·B;  dA += dhᵀ·dropout(x);  dx = dy·W + dropout'(dh·A)
// Every product is a threaded GEMM; W is only ever read (no dW exists). The dropout mask is recomputed
// from Philox in the backward instead of being stored.
#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns inside its own AVX-512 intrinsics (self-initialised undefined vectors, GCC PR 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <algorithm>
#include <cstring>
#include <utility>

#include "tunekit/ops.h"
#include "gemm.h"
#include "philox.h"
#include "simd.h"
#include "threadpool.h"

namespace tk {
namespace TK_ISA {
namespace {

constexpr int64_t kThreadMin = int64_t(1) << 14;  // elements below which a pass stays on one thread

// C (M x N) = alpha·op(A)·op(B) + beta·C, all row-major and dense; B of b_dtype (W may be bf16).
void mm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, const void* B, float beta,
        float* C, int bf16 = 0, int b_dtype = TK_F32) {
  GemmArgs g;
  g.bf16 = bf16;
  g.b_dtype = b_dtype;
  g.transA = ta; g.transB = tb;
  g.M = M; g.N = N; g.K = K;
  g.alpha = alpha; g.beta = beta;
  g.A = A; g.lda = ta ? M : K;
  g.B = B; g.ldb = tb ? K : N;
  g.C = C; g.ldc = N;
  gemm(g);
}

// Philox blocks b0 .. b0+nb-1 of seed, as uniforms: out[4·j + w] = word w of block b0 + j.
void philox_blocks(uint64_t seed, uint64_t b0, int64_t nb, float* out) {
  constexpr int64_t kChunk = 64;
  alignas(64) uint32_t words[kChunk * 4];
  for (int64_t j0 = 0; j0 < nb; j0 += kChunk) {
    const int64_t n = std::min<int64_t>(kChunk, nb - j0);
    philox::blocks(b0 + static_cast<uint64_t>(j0), seed, n, words);
    for (int64_t k = 0; k < 4 * n; k++) out[4 * j0 + k] = philox::to_uniform(words[k]);
  }
}

// Dropout of element e (Philox element e of (seed, offset)) applied to src: dst = src·mask, or with
// ACC dst += src·mask; mask = 1/(1-p) where uniform >= p, else 0.
template <bool ACC>
void dropout_apply(int64_t n, const float* src, float* dst, float p, uint64_t seed, uint64_t offset) {
  constexpr int64_t kBlock = 1024;
  const float keep_scale = 1.f / (1.f - p);
  auto run = [&](int64_t b0, int64_t b1) {
    alignas(64) float ubuf[kBlock + 8];  // whole Philox blocks around the kBlock elements
    const V pv = V::set1(p), sv = V::set1(keep_scale), zero = V::zero();
    for (int64_t blk = b0; blk < b1; blk++) {
      const int64_t e0 = blk * kBlock, len = std::min(kBlock, n - e0);
      const uint64_t i0 = offset + static_cast<uint64_t>(e0);
      philox_blocks(seed, i0 >> 2, static_cast<int64_t>(((i0 + len - 1) >> 2) - (i0 >> 2) + 1), ubuf);
      const float* u = ubuf + (i0 & 3);
      const float* s = src + e0;
      float* d = dst + e0;
      int64_t i = 0;
      for (; i + V::W <= len; i += V::W) {
        V r = V::load(s + i) * select_lt(V::load(u + i), pv, zero, sv);
        (ACC ? V::load(d + i) + r : r).store(d + i);
      }
      for (; i < len; i++) {
        float r = u[i] >= p ? s[i] * keep_scale : 0.f;
        d[i] = ACC ? d[i] + r : r;
      }
    }
  };
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  parallel_for(blocks, std::move(run), n < kThreadMin ? 1 : 0);
}

// dbias (C) += column sums of dy (rows, C). Threads own column strips; each column is summed over
// rows in order, so the result does not depend on the thread count.
void column_sums(int64_t rows, int64_t C, const float* dy, float* dbias) {
  constexpr int64_t kStrip = 4 * V::W;
  const int64_t strips = (C + kStrip - 1) / kStrip;
  parallel_for(strips, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; s++) {
      const int64_t j0 = s * kStrip;
      if (j0 + kStrip <= C) {
        V acc[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
        for (int64_t m = 0; m < rows; m++)
          for (int k = 0; k < 4; k++) acc[k] = acc[k] + V::load(dy + m * C + j0 + k * V::W);
        for (int k = 0; k < 4; k++) (V::load(dbias + j0 + k * V::W) + acc[k]).store(dbias + j0 + k * V::W);
      } else {
        for (int64_t j = j0; j < C; j++) {
          float acc = 0.f;
          for (int64_t m = 0; m < rows; m++) acc += dy[m * C + j];
          dbias[j] += acc;
        }
      }
    }
  }, rows * C < kThreadMin ? 1 : 0);
}

// dropout(x) into scratch slot 2, or x itself when there is no dropout.
const float* dropped_input(const LoraArgs& a) {
  if (a.dropout_p <= 0.f) return a.x;
  float* xd = scratch(2, a.M * a.in);
  dropout_apply<false>(a.M * a.in, a.x, xd, a.dropout_p, a.seed, a.offset);
  return xd;
}

}  // namespace

void lora_forward(const LoraArgs& a) {
  if (a.M <= 0) return;
  const float* xd = dropped_input(a);
  mm(false, true, a.M, a.r, a.in, 1.f, xd, a.A, 0.f, a.h);  // h (M, r) = dropout(x)·Aᵀ
  if (a.bias) {  // y starts as the bias rows, then accumulates both products
    parallel_for(a.M, [&](int64_t m0, int64_t m1) {
      for (int64_t m = m0; m < m1; m++) std::memcpy(a.y + m * a.out, a.bias, a.out * sizeof(float));
    }, a.M * a.out < kThreadMin ? 1 : 0);
  }
  mm(false, true, a.M, a.out, a.in, 1.f, a.x, a.W, a.bias ? 1.f : 0.f, a.y, a.bf16, a.w_dtype);  // y (M, out) += x·Wᵀ
  mm(false, true, a.M, a.out, a.r, a.scale, a.h, a.Bm, 1.f, a.y);              // y += s·h·Bᵀ
}

void lora_backward(const LoraBackwardArgs& b) {
  const LoraArgs& a = b.fwd;
  if (a.M <= 0) return;
  if (b.dbias) column_sums(a.M, a.out, b.dy, b.dbias);
  mm(true, false, a.out, a.r, a.M, a.scale, b.dy, a.h, 1.f, b.dB);  // dB (out, r) += s·dyᵀ·h
  float* dh = scratch(3, a.M * a.r);
  mm(false, false, a.M, a.r, a.out, a.scale, b.dy, a.Bm, 0.f, dh);   // dh (M, r) = s·dy·B
  const float* xd = dropped_input(a);
  mm(true, false, a.r, a.in, a.M, 1.f, dh, xd, 1.f, b.dA);           // dA (r, in) += dhᵀ·dropout(x)
  if (!b.dx) return;
  mm(false, false, a.M, a.in, a.out, 1.f, b.dy, a.W, 0.f, b.dx, a.bf16, a.w_dtype);  // dx (M, in) = dy·W
  if (a.dropout_p <= 0.f) return mm(false, false, a.M, a.in, a.r, 1.f, dh, a.A, 1.f, b.dx);  // += dh·A
  float* t = scratch(2, a.M * a.in);  // dropout(x) is no longer needed: its buffer takes dh·A
  mm(false, false, a.M, a.in, a.r, 1.f, dh, a.A, 0.f, t);
  dropout_apply<true>(a.M * a.in, t, b.dx, a.dropout_p, a.seed, a.offset);
}

}  // namespace TK_ISA
}  // namespace tk
