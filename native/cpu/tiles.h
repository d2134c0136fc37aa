// Register-tiled products and transposes shared by the fused attention kernels (attention.cc,
// attention_decode.cc), compiled inside each ISA's namespace: op(A)·B on operands packed once per head,
// and TB x TB transposes through registers.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "simd.h"

namespace tk {
namespace TK_ISA {
namespace tiles {

#if defined(__AVX512F__)
constexpr int MR = 6, NV = 4;  // 24 accumulators + 4 B vectors + 1 broadcast of 32 registers
#elif defined(__AVX2__)
constexpr int MR = 6, NV = 2;  // 12 + 2 + 1 of 16
#else
constexpr int MR = 4, NV = 4;
#endif

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// C (R x NVv·W) (+)= op(A) (R x K) · B (K x NVv·W); op(A)(i, k) = TA ? a[k·lda + i] : a[i·lda + k].
template <bool TA, int R, int NVv>
void micro(int64_t K, const float* __restrict a, int64_t lda, const float* __restrict b, int64_t ldb,
           float* __restrict c, int64_t ldc, bool acc) {
  V r[R][NVv];
#pragma GCC unroll 8
  for (int i = 0; i < R; i++)
#pragma GCC unroll 4
    for (int v = 0; v < NVv; v++) r[i][v] = acc ? V::load(c + i * ldc + v * V::W) : V::zero();
  for (int64_t k = 0; k < K; k++) {
    V bv[NVv];
#pragma GCC unroll 4
    for (int v = 0; v < NVv; v++) bv[v] = V::load(b + v * V::W);
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
      const V ai = V::set1(TA ? a[i] : a[i * lda]);
#pragma GCC unroll 4
      for (int v = 0; v < NVv; v++) r[i][v] = fma(ai, bv[v], r[i][v]);
    }
    a += TA ? lda : 1;
    b += ldb;
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; i++)
#pragma GCC unroll 4
    for (int v = 0; v < NVv; v++) r[i][v].store(c + i * ldc + v * V::W);
}

using MicroFn = void (*)(int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, bool);

template <bool TA, std::size_t... I>
constexpr std::array<MicroFn, MR * NV> micro_table(std::index_sequence<I...>) {
  return {{&micro<TA, static_cast<int>(I / NV) + 1, static_cast<int>(I % NV) + 1>...}};
}

// C (M x N) (+)= op(A) (M x K) · B (K x N) on the calling thread; N is a multiple of V::W (the packed
// operands are padded). Column panels of B stay in L1 while the rows of A stream past.
template <bool TA>
void tile_gemm(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
               int64_t ldc, bool acc) {
  static constexpr std::array<MicroFn, MR * NV> table = micro_table<TA>(std::make_index_sequence<MR * NV>());
  const int64_t nvec = N / V::W;
  for (int64_t j = 0; j < nvec; j += NV) {
    const int64_t nv = std::min<int64_t>(NV, nvec - j);
    for (int64_t i = 0; i < M; i += MR) {
      const int64_t mr = std::min<int64_t>(MR, M - i);
      table[(mr - 1) * NV + nv - 1](K, a + (TA ? i : i * lda), lda, b + j * V::W, ldb, c + i * ldc + j * V::W, ldc, acc);
    }
  }
}

// dst[c·ldd + r] = mul · src[r·ld + c] for a TB x TB block, in registers.
#if defined(__AVX512F__)
constexpr int TB = 16;
inline void transpose_block(const float* src, int64_t ld, float* dst, int64_t ldd, float mul) {
  const __m512 m = _mm512_set1_ps(mul);
  __m512 r[16], t[16];
  for (int i = 0; i < 16; i++) r[i] = _mm512_mul_ps(_mm512_loadu_ps(src + i * ld), m);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4)
    for (int j = 0; j < 2; j++) {
      const __m512d a = _mm512_castps_pd(t[i + j]), b = _mm512_castps_pd(t[i + j + 2]);
      r[i + 2 * j] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
      r[i + 2 * j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    }
  for (int i = 0; i < 16; i += 8)
    for (int j = 0; j < 4; j++) {
      t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
      t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0xdd);
    }
  for (int j = 0; j < 8; j++) {
    _mm512_storeu_ps(dst + j * ldd, _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88));
    _mm512_storeu_ps(dst + (j + 8) * ldd, _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd));
  }
}
#elif defined(__AVX2__)
constexpr int TB = 8;
inline void transpose_block(const float* src, int64_t ld, float* dst, int64_t ldd, float mul) {
  const __m256 m = _mm256_set1_ps(mul);
  __m256 r[8], t[8];
  for (int i = 0; i < 8; i++) r[i] = _mm256_mul_ps(_mm256_loadu_ps(src + i * ld), m);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4)
    for (int j = 0; j < 2; j++) {
      r[i + 2 * j] = _mm256_shuffle_ps(t[i + j], t[i + j + 2], _MM_SHUFFLE(1, 0, 1, 0));
      r[i + 2 * j + 1] = _mm256_shuffle_ps(t[i + j], t[i + j + 2], _MM_SHUFFLE(3, 2, 3, 2));
    }
  for (int j = 0; j < 4; j++) {
    _mm256_storeu_ps(dst + j * ldd, _mm256_permute2f128_ps(r[j], r[j + 4], 0x20));
    _mm256_storeu_ps(dst + (j + 4) * ldd, _mm256_permute2f128_ps(r[j], r[j + 4], 0x31));
  }
}
#else
constexpr int TB = 1;
inline void transpose_block(const float* src, int64_t, float* dst, int64_t, float mul) { *dst = *src * mul; }
#endif

}  // namespace tiles
}  // namespace TK_ISA
}  // namespace tk
