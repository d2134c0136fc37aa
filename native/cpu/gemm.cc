// Cache-blocked, packed GEMM (the Goto/BLIS loop nest) around a register-tiled SIMD micro-kernel.
//   jc (NC columns of B, packed block kept in L2) → pc (KC of K) → ic (MC rows of A, packed)
//   → ir (MR rows: one A micro-panel, kept in L1) → jr (NR columns: stream B micro-panels from L2).
// Threads split C into disjoint blocks (or take whole matrices of a batch), each with its own packing
// buffers, so no synchronisation happens inside a GEMM.
// bf16 (AVX-512 table, CPUs with AVX512-BF16): the same loop nest; the packed fp32 panels are rounded
// to bfloat16 pairs along k and a vdpbf16ps micro-kernel accumulates in fp32 (2 k per instruction).
#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns inside its own AVX-512 intrinsics (self-initialised undefined vectors, GCC PR 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "gemm.h"

#include <algorithm>
#include <cstring>

#include "simd.h"
#include "threadpool.h"

namespace tk {
namespace TK_ISA {
namespace {

#if defined(__AVX512F__)
constexpr int MR = 12, NV = 2;
#elif defined(__AVX2__)
constexpr int MR = 6, NV = 2;
#else
constexpr int MR = 4, NV = 4;
#endif
constexpr int NR = NV * V::W;
constexpr int64_t KC = 256, MC = MR * 20, NC = 512;

inline float opA(const GemmArgs& g, const float* A, int64_t i, int64_t k) {
  return g.transA ? A[k * g.lda + i] : A[i * g.lda + k];
}

// Ap[p][k][ii] = alpha · op(A)(i0 + p·MR + ii, k0 + k), zero-padded past m.
void pack_a(const GemmArgs& g, const float* A, int64_t i0, int64_t m, int64_t k0, int64_t kc, float* Ap) {
  for (int64_t p = 0; p < m; p += MR) {
    int64_t mr = std::min<int64_t>(MR, m - p);
    float* dst = Ap + p * kc;
    if (!g.transA) {
      for (int64_t ii = 0; ii < MR; ii++) {
        if (ii < mr) {
          const float* src = A + (i0 + p + ii) * g.lda + k0;
          for (int64_t k = 0; k < kc; k++) dst[k * MR + ii] = g.alpha * src[k];
        } else {
          for (int64_t k = 0; k < kc; k++) dst[k * MR + ii] = 0.f;
        }
      }
    } else {
      for (int64_t k = 0; k < kc; k++) {
        const float* src = A + (k0 + k) * g.lda + i0 + p;
        for (int64_t ii = 0; ii < MR; ii++) dst[k * MR + ii] = ii < mr ? g.alpha * src[ii] : 0.f;
      }
    }
  }
}

// Bp[q][k][jj] = op(B)(k0 + k, j0 + q·NR + jj), zero-padded past n.
void pack_b(const GemmArgs& g, const float* B, int64_t k0, int64_t kc, int64_t j0, int64_t n, float* Bp) {
  for (int64_t q = 0; q < n; q += NR) {
    int64_t nr = std::min<int64_t>(NR, n - q);
    float* dst = Bp + q * kc;
    if (!g.transB) {
      for (int64_t k = 0; k < kc; k++) {
        const float* src = B + (k0 + k) * g.ldb + j0 + q;
        float* d = dst + k * NR;
        if (nr == NR) {
          for (int v = 0; v < NV; v++) V::load(src + v * V::W).store(d + v * V::W);
        } else {
          for (int64_t jj = 0; jj < NR; jj++) d[jj] = jj < nr ? src[jj] : 0.f;
        }
      }
    } else {
      for (int64_t jj = 0; jj < NR; jj++) {
        if (jj < nr) {
          const float* src = B + (j0 + q + jj) * g.ldb + k0;
          for (int64_t k = 0; k < kc; k++) dst[k * NR + jj] = src[k];
        } else {
          for (int64_t k = 0; k < kc; k++) dst[k * NR + jj] = 0.f;
        }
      }
    }
  }
}

// C = acc + beta·C (C not read when beta == 0). Full tiles write C directly; edge tiles go through a
// small buffer.
inline void store_tile(V (&acc)[MR][NV], float* C, int64_t ldc, float beta, int64_t mr, int64_t nr) {
  if (mr == MR && nr == NR) {
    const V bb = V::set1(beta);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) {
        float* c = C + i * ldc + v * V::W;
        (beta == 0.f ? acc[i][v] : fma(bb, V::load(c), acc[i][v])).store(c);
      }
    return;
  }
  alignas(64) float tile[MR * NR];
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < NV; v++) acc[i][v].store(tile + i * NR + v * V::W);
  for (int64_t i = 0; i < mr; i++)
    for (int64_t j = 0; j < nr; j++) {
      float* c = C + i * ldc + j;
      *c = beta == 0.f ? tile[i * NR + j] : tile[i * NR + j] + beta * *c;
    }
}

// acc(MR x NR) = Ap-panel · Bp-panel over kc; then C = acc + beta·C.
void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* C, int64_t ldc,
                  float beta, int64_t mr, int64_t nr) {
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[i][v] = V::zero();
  for (int64_t k = 0; k < kc; k++) {
    V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) bv[v] = V::load(b + v * V::W);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      V ai = V::set1(a[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[i][v] = fma(ai, bv[v], acc[i][v]);
    }
    a += MR;
    b += NR;
  }
  store_tile(acc, C, ldc, beta, mr, nr);
}

#if defined(__AVX512F__)
#define TK_BF16_TARGET __attribute__((target("avx512bf16")))
constexpr bool kHasBf16Path = true;

// Rounds a packed fp32 panel of kc rows of W floats (W a multiple of 4, <= 32... any W) to bfloat16
// pairs along k: dst[kp·W + w] = (bf16(src[2kp][w]) low, bf16(src[2kp+1][w]) high), the layout
// vdpbf16ps multiplies pairwise. A missing last odd row is 0.
TK_BF16_TARGET void to_bf16_pairs(const float* src, int64_t kc, int W, uint32_t* dst) {
  // cvtne2ps_pbh(row1, row0) holds row0 in 16-bit lanes 0..15 and row1 in 16..31; interleave them.
  alignas(64) static const uint16_t kIdx[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                                8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i idx = _mm512_load_si512(kIdx);
  for (int64_t k = 0; k < kc; k += 2) {
    const float* r0 = src + k * W;
    const float* r1 = k + 1 < kc ? r0 + W : nullptr;
    uint32_t* d = dst + (k / 2) * W;
    for (int w = 0; w < W; w += 16) {
      const __mmask16 m = W - w >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (W - w)) - 1);
      const __m512 a = _mm512_maskz_loadu_ps(m, r0 + w);
      const __m512 b = r1 ? _mm512_maskz_loadu_ps(m, r1 + w) : _mm512_setzero_ps();
      const __m512i h = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(b, a));
      _mm512_mask_storeu_epi32(d + w, m, _mm512_permutexvar_epi16(idx, h));
    }
  }
}

// acc(MR x NR) = Ap · Bp over kp k-pairs (bf16 pairs, fp32 accumulation); then C = acc + beta·C.
TK_BF16_TARGET void micro_kernel_bf16(int64_t kp, const uint32_t* __restrict a, const uint32_t* __restrict b,
                                      float* C, int64_t ldc, float beta, int64_t mr, int64_t nr) {
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[i][v] = V::zero();
  for (int64_t k = 0; k < kp; k++) {
    __m512bh bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) bv[v] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(b + v * V::W));
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      const __m512bh ai = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(a[i])));
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) acc[i][v].v = _mm512_dpbf16_ps(acc[i][v].v, ai, bv[v]);
    }
    a += MR;
    b += NR;
  }
  store_tile(acc, C, ldc, beta, mr, nr);
}
#else
constexpr bool kHasBf16Path = false;
inline void to_bf16_pairs(const float*, int64_t, int, uint32_t*) {}
inline void micro_kernel_bf16(int64_t, const uint32_t*, const uint32_t*, float*, int64_t, float, int64_t, int64_t) {}
#endif

// bf16 only where this table has the kernel and the CPU the instruction (dispatch.cc checks both).
inline bool use_bf16(const GemmArgs& g) { return kHasBf16Path && g.bf16 && bf16_supported(); }

// C block rows [i0, i0+m), cols [j0, j0+n) of one matrix, on the calling thread.
void gemm_block(const GemmArgs& g, const float* A, const float* B, float* C, int64_t i0, int64_t m,
                int64_t j0, int64_t n) {
  if (g.K == 0 || g.alpha == 0.f) {  // C = beta·C
    for (int64_t i = i0; i < i0 + m; i++)
      for (int64_t j = j0; j < j0 + n; j++) {
        float* c = C + i * g.ldc + j;
        *c = g.beta == 0.f ? 0.f : g.beta * *c;
      }
    return;
  }
  const int64_t kc_max = std::min<int64_t>(KC, g.K);
  const int64_t nc_max = (std::min<int64_t>(NC, n) + NR - 1) / NR * NR;
  const int64_t mc_max = (std::min<int64_t>(MC, m) + MR - 1) / MR * MR;
  float* Bp = scratch(0, kc_max * nc_max);
  float* Ap = scratch(1, kc_max * mc_max);
  // bf16: pair buffers (slots 4 and 5: LoRA holds 2 and 3 around its GEMMs), kp = ceil(kc/2) pairs a panel.
  const bool bf16 = use_bf16(g);
  const int64_t kp_max = (kc_max + 1) / 2;
  uint32_t* Bh = bf16 ? reinterpret_cast<uint32_t*>(scratch(4, kp_max * nc_max)) : nullptr;
  uint32_t* Ah = bf16 ? reinterpret_cast<uint32_t*>(scratch(5, kp_max * mc_max)) : nullptr;
  for (int64_t jc = 0; jc < n; jc += NC) {
    const int64_t nc = std::min<int64_t>(NC, n - jc);
    for (int64_t pc = 0; pc < g.K; pc += KC) {
      const int64_t kc = std::min<int64_t>(KC, g.K - pc), kp = (kc + 1) / 2;
      const float beta = pc == 0 ? g.beta : 1.f;
      pack_b(g, B, pc, kc, j0 + jc, nc, Bp);
      if (bf16)
        for (int64_t q = 0; q < nc; q += NR) to_bf16_pairs(Bp + q * kc, kc, NR, Bh + q * kp);
      for (int64_t ic = 0; ic < m; ic += MC) {
        const int64_t mc = std::min<int64_t>(MC, m - ic);
        pack_a(g, A, i0 + ic, mc, pc, kc, Ap);
        if (bf16)
          for (int64_t p = 0; p < mc; p += MR) to_bf16_pairs(Ap + p * kc, kc, MR, Ah + p * kp);
        for (int64_t ir = 0; ir < mc; ir += MR) {
          const int64_t mr = std::min<int64_t>(MR, mc - ir);
          for (int64_t jr = 0; jr < nc; jr += NR) {
            const int64_t nr = std::min<int64_t>(NR, nc - jr);
            float* c = C + (i0 + ic + ir) * g.ldc + j0 + jc + jr;
            if (bf16) micro_kernel_bf16(kp, Ah + ir * kp, Bh + jr * kp, c, g.ldc, beta, mr, nr);
            else micro_kernel(kc, Ap + ir * kc, Bp + jr * kc, c, g.ldc, beta, mr, nr);
          }
        }
      }
    }
  }
}

}  // namespace

void gemm_serial(const GemmArgs& g) {
  for (int64_t b = 0; b < g.batch; b++)
    gemm_block(g, g.A + b * g.strideA, g.B + b * g.strideB, g.C + b * g.strideC, 0, g.M, 0, g.N);
}

void gemm(const GemmArgs& g) {
  if (g.M <= 0 || g.N <= 0 || g.batch <= 0) return;
  const int nt = num_threads();
  const double flops = 2.0 * g.M * g.N * (g.K + 1) * g.batch;
  if (nt <= 1 || flops < 2e5) return gemm_serial(g);
  if (g.batch >= nt) {  // whole matrices per thread
    parallel_for(g.batch, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; b++)
        gemm_block(g, g.A + b * g.strideA, g.B + b * g.strideB, g.C + b * g.strideC, 0, g.M, 0, g.N);
    });
    return;
  }
  // Split each matrix along its longer side in units of the micro-tile.
  const bool split_m = g.M >= g.N;
  const int64_t unit = split_m ? MR : NR;
  const int64_t units = ((split_m ? g.M : g.N) + unit - 1) / unit;
  const int64_t parts = std::min<int64_t>(nt, units);
  parallel_for(g.batch * parts, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t b = t / parts, p = t % parts;
      const int64_t u0 = units * p / parts, u1 = units * (p + 1) / parts;
      const float* A = g.A + b * g.strideA;
      const float* B = g.B + b * g.strideB;
      float* C = g.C + b * g.strideC;
      if (split_m) {
        const int64_t i0 = u0 * unit, i1 = std::min(g.M, u1 * unit);
        if (i1 > i0) gemm_block(g, A, B, C, i0, i1 - i0, 0, g.N);
      } else {
        const int64_t j0 = u0 * unit, j1 = std::min(g.N, u1 * unit);
        if (j1 > j0) gemm_block(g, A, B, C, 0, g.M, j0, j1 - j0);
      }
    }
  });
}

}  // namespace TK_ISA
}  // namespace tk
