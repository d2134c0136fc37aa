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

#include "../kernels.h"
#include "gemm.h"
#include "philox.h"
#include "simd.h"
#include "threadpool.h"

namespace tk {
namespace TK_ISA {
namespace {

constexpr int64_t kThreadMin = int64_t(1) << 14;  // elements below which a pass stays on one thread

// C (M x N) = alpha·op(A)·op(B) + beta·C, all row-major and dense.
void mm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, const float* B, float beta,
        float* C) {
  GemmArgs g;
  g.transA = ta; g.transB = tb;
  g.M = M; g.N = N; g.K = K;
  g.alpha = alpha; g.beta = beta;
  g.A = A; g.lda = ta ? M : K;
  g.B = B; g.ldb = tb ? K : N;
  g.C = C; g.ldc = N;
  gemm(g);
}

// Philox blocks b0 .. b0+nb-1 of seed, as uniforms: out[4·j + w] = word w of block b0 + j. The same
// numbers as philox::block, one block per SIMD lane (scalar Philox would dominate the dropout pass).
#if defined(__AVX512F__) || defined(__AVX2__)
#if defined(__AVX512F__)
using VI = __m512i;
constexpr int kLanes = 16;
inline VI vi_set1(uint32_t x) { return _mm512_set1_epi32(static_cast<int>(x)); }
inline VI vi_iota() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
inline VI vi_add(VI a, VI b) { return _mm512_add_epi32(a, b); }
inline VI vi_xor(VI a, VI b) { return _mm512_xor_si512(a, b); }
// hi and lo words of the 64-bit products a·m, lane by lane (mul_epu32 takes the even lanes).
inline void vi_mulhilo(VI a, VI m, VI& hi, VI& lo) {
  VI even = _mm512_mul_epu32(a, m), odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
  hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
  lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
}
inline __m512 vi_uniform(VI x) {
  return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(x, 8)), _mm512_set1_ps(1.f / 16777216.f));
}
// out[4·j + w] = u_w[j]: 4x4 transposes inside 128-bit chunks, then of the chunks.
inline void store_interleaved(float* out, __m512 u0, __m512 u1, __m512 u2, __m512 u3) {
  __m512 t0 = _mm512_unpacklo_ps(u0, u1), t1 = _mm512_unpackhi_ps(u0, u1);
  __m512 t2 = _mm512_unpacklo_ps(u2, u3), t3 = _mm512_unpackhi_ps(u2, u3);
  auto lo64 = [](__m512 a, __m512 b) { return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b))); };
  auto hi64 = [](__m512 a, __m512 b) { return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b))); };
  __m512 a = lo64(t0, t2), b = hi64(t0, t2), c = lo64(t1, t3), d = hi64(t1, t3);  // chunk k: block 4k+0/1/2/3
  __m512 ab_lo = _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)), cd_lo = _mm512_shuffle_f32x4(c, d, _MM_SHUFFLE(1, 0, 1, 0));
  __m512 ab_hi = _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)), cd_hi = _mm512_shuffle_f32x4(c, d, _MM_SHUFFLE(3, 2, 3, 2));
  _mm512_storeu_ps(out, _mm512_shuffle_f32x4(ab_lo, cd_lo, _MM_SHUFFLE(2, 0, 2, 0)));
  _mm512_storeu_ps(out + 16, _mm512_shuffle_f32x4(ab_lo, cd_lo, _MM_SHUFFLE(3, 1, 3, 1)));
  _mm512_storeu_ps(out + 32, _mm512_shuffle_f32x4(ab_hi, cd_hi, _MM_SHUFFLE(2, 0, 2, 0)));
  _mm512_storeu_ps(out + 48, _mm512_shuffle_f32x4(ab_hi, cd_hi, _MM_SHUFFLE(3, 1, 3, 1)));
}
#else
using VI = __m256i;
constexpr int kLanes = 8;
inline VI vi_set1(uint32_t x) { return _mm256_set1_epi32(static_cast<int>(x)); }
inline VI vi_iota() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
inline VI vi_add(VI a, VI b) { return _mm256_add_epi32(a, b); }
inline VI vi_xor(VI a, VI b) { return _mm256_xor_si256(a, b); }
inline void vi_mulhilo(VI a, VI m, VI& hi, VI& lo) {
  VI even = _mm256_mul_epu32(a, m), odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}
inline __m256 vi_uniform(VI x) {
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(x, 8)), _mm256_set1_ps(1.f / 16777216.f));
}
inline void store_interleaved(float* out, __m256 u0, __m256 u1, __m256 u2, __m256 u3) {
  __m256 t0 = _mm256_unpacklo_ps(u0, u1), t1 = _mm256_unpackhi_ps(u0, u1);
  __m256 t2 = _mm256_unpacklo_ps(u2, u3), t3 = _mm256_unpackhi_ps(u2, u3);
  auto lo64 = [](__m256 a, __m256 b) { return _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(a), _mm256_castps_pd(b))); };
  auto hi64 = [](__m256 a, __m256 b) { return _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(a), _mm256_castps_pd(b))); };
  __m256 a = lo64(t0, t2), b = hi64(t0, t2), c = lo64(t1, t3), d = hi64(t1, t3);  // chunk k: block 4k+0/1/2/3
  _mm256_storeu_ps(out, _mm256_permute2f128_ps(a, b, 0x20));
  _mm256_storeu_ps(out + 8, _mm256_permute2f128_ps(c, d, 0x20));
  _mm256_storeu_ps(out + 16, _mm256_permute2f128_ps(a, b, 0x31));
  _mm256_storeu_ps(out + 24, _mm256_permute2f128_ps(c, d, 0x31));
}
#endif

void philox_blocks(uint64_t seed, uint64_t b0, int64_t nb, float* out) {
  const VI m0 = vi_set1(0xD2511F53u), m1 = vi_set1(0xCD9E8D57u), bump0 = vi_set1(0x9E3779B9u), bump1 = vi_set1(0xBB67AE85u);
  int64_t j = 0;
  while (j < nb) {
    const uint64_t c = b0 + j;
    const uint32_t clo = static_cast<uint32_t>(c);
    if (j + kLanes <= nb && clo <= 0xFFFFFFFFu - (kLanes - 1)) {  // no carry into the high word across lanes
      VI c0 = vi_add(vi_set1(clo), vi_iota()), c1 = vi_set1(static_cast<uint32_t>(c >> 32));
      VI c2 = vi_set1(0), c3 = vi_set1(0);
      VI k0 = vi_set1(static_cast<uint32_t>(seed)), k1 = vi_set1(static_cast<uint32_t>(seed >> 32));
      for (int round = 0; round < 10; round++) {
        VI hi0, lo0, hi1, lo1;
        vi_mulhilo(c0, m0, hi0, lo0);
        vi_mulhilo(c2, m1, hi1, lo1);
        c0 = vi_xor(vi_xor(hi1, c1), k0);
        c1 = lo1;
        c2 = vi_xor(vi_xor(hi0, c3), k1);
        c3 = lo0;
        k0 = vi_add(k0, bump0);
        k1 = vi_add(k1, bump1);
      }
      store_interleaved(out + 4 * j, vi_uniform(c0), vi_uniform(c1), vi_uniform(c2), vi_uniform(c3));
      j += kLanes;
    } else {
      const philox::U4 blk = philox::block(c, seed);
      for (int w = 0; w < 4; w++) out[4 * j + w] = philox::to_uniform(blk.x[w]);
      j += 1;
    }
  }
}
#else
void philox_blocks(uint64_t seed, uint64_t b0, int64_t nb, float* out) {
  for (int64_t j = 0; j < nb; j++) {
    const philox::U4 blk = philox::block(b0 + j, seed);
    for (int w = 0; w < 4; w++) out[4 * j + w] = philox::to_uniform(blk.x[w]);
  }
}
#endif

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
  mm(false, true, a.M, a.out, a.in, 1.f, a.x, a.W, a.bias ? 1.f : 0.f, a.y);  // y (M, out) += x·Wᵀ
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
  mm(false, false, a.M, a.in, a.out, 1.f, b.dy, a.W, 0.f, b.dx);     // dx (M, in) = dy·W
  if (a.dropout_p <= 0.f) return mm(false, false, a.M, a.in, a.r, 1.f, dh, a.A, 1.f, b.dx);  // += dh·A
  float* t = scratch(2, a.M * a.in);  // dropout(x) is no longer needed: its buffer takes dh·A
  mm(false, false, a.M, a.in, a.r, 1.f, dh, a.A, 0.f, t);
  dropout_apply<true>(a.M * a.in, t, b.dx, a.dropout_p, a.seed, a.offset);
}

}  // namespace TK_ISA
}  // namespace tk
