// Cache-blocked, packed GEMM (the Goto/BLIS loop nest) around a register-tiled SIMD micro-kernel.
//   jc (NC columns of B, packed block kept in L2) → pc (KC of K) → ic (MC rows of A, packed)
//   → ir (MR rows: one A micro-panel, kept in L1) → jr (NR columns: stream B micro-panels from L2).
// Threads split C into disjoint blocks (or take whole matrices of a batch), each with its own packing
// buffers, so no synchronisation happens inside a GEMM.
// bf16 (AVX-512 table, CPUs with AVX512-BF16): the same loop nest; the packed fp32 panels are rounded
// to bfloat16 pairs along k and a vdpbf16ps micro-kernel accumulates in fp32 (2 k per instruction).
// A bf16 B (a frozen weight, GemmArgs::b_dtype) is widened to fp32 while its panels are packed, or on
// the bf16 paths packed into pairs straight from its stored values: the multiply never sees the difference.
#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns inside its own AVX-512 intrinsics (self-initialised undefined vectors, GCC PR 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#if defined(__AVX512F__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "gelu.h"
#include "simd.h"
#include "table.h"
#include "threadpool.h"
#include "vtail.h"

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

inline float widen(float x) { return x; }
inline float widen(uint16_t x) { return bf16_to_float(x); }
inline V load_v(const float* p) { return V::load(p); }
inline V load_v(const uint16_t* p) { return V::load_bf16(p); }

// Bp[q][k][jj] = op(B)(k0 + k, j0 + q·NR + jj) as float, zero-padded past n. E: B's element type.
template <class E>
void pack_b_as(const GemmArgs& g, const E* B, int64_t k0, int64_t kc, int64_t j0, int64_t n, float* Bp) {
  for (int64_t q = 0; q < n; q += NR) {
    int64_t nr = std::min<int64_t>(NR, n - q);
    float* dst = Bp + q * kc;
    if (!g.transB) {
      for (int64_t k = 0; k < kc; k++) {
        const E* src = B + (k0 + k) * g.ldb + j0 + q;
        float* d = dst + k * NR;
        if (nr == NR) {
          for (int v = 0; v < NV; v++) load_v(src + v * V::W).store(d + v * V::W);
        } else {
          for (int64_t jj = 0; jj < NR; jj++) d[jj] = jj < nr ? widen(src[jj]) : 0.f;
        }
      }
    } else {
      for (int64_t jj = 0; jj < NR; jj++) {
        if (jj < nr) {
          const E* src = B + (j0 + q + jj) * g.ldb + k0;
          for (int64_t k = 0; k < kc; k++) dst[k * NR + jj] = widen(src[k]);
        } else {
          for (int64_t k = 0; k < kc; k++) dst[k * NR + jj] = 0.f;
        }
      }
    }
  }
}

void pack_b(const GemmArgs& g, const void* B, int64_t k0, int64_t kc, int64_t j0, int64_t n, float* Bp) {
  if (g.b_dtype == TK_BF16) pack_b_as(g, static_cast<const uint16_t*>(B), k0, kc, j0, n, Bp);
  else pack_b_as(g, static_cast<const float*>(B), k0, kc, j0, n, Bp);
}

// For a bf16 B on the bf16 paths: Bh[q·kps + kp·NR + jj] = the pair (op(B)(k0 + 2kp, j), op(B)(k0 +
// 2kp + 1, j)) for j = j0 + q + jj, low half first: what to_bf16_pairs makes of the widened panel (a
// bf16 value rounds to itself), read straight from the stored values. kps pairs a panel; zero past kc, n.
void pack_b_pairs(const GemmArgs& g, const uint16_t* B, int64_t k0, int64_t kc, int64_t j0, int64_t n, int64_t kps,
                  uint32_t* Bh) {
  for (int64_t q = 0; q < n; q += NR) {
    const int64_t nr = std::min<int64_t>(NR, n - q);
    uint32_t* dst = Bh + q * kps;
    if (g.transB) {  // column j of op(B) is a row of B: its pairs are adjacent
      for (int64_t jj = 0; jj < NR; jj++) {
        const uint16_t* src = jj < nr ? B + (j0 + q + jj) * g.ldb + k0 : nullptr;
        for (int64_t kp = 0; kp < kps; kp++) {
          const int64_t k = 2 * kp;
          const uint32_t lo = src && k < kc ? src[k] : 0u, hi = src && k + 1 < kc ? src[k + 1] : 0u;
          dst[kp * NR + jj] = lo | hi << 16;
        }
      }
    } else {  // rows k and k + 1 of B interleaved
      for (int64_t kp = 0; kp < kps; kp++) {
        const int64_t k = 2 * kp;
        const uint16_t* r0 = k < kc ? B + (k0 + k) * g.ldb + j0 + q : nullptr;
        const uint16_t* r1 = k + 1 < kc ? r0 + g.ldb : nullptr;
        for (int64_t jj = 0; jj < NR; jj++) {
          const uint32_t lo = r0 && jj < nr ? r0[jj] : 0u, hi = r1 && jj < nr ? r1[jj] : 0u;
          dst[kp * NR + jj] = lo | hi << 16;
        }
      }
    }
  }
}

// GemmArgs::ep for one tile of C, its pointers at the tile's origin (row i, column j of the matrix).
// Only the last K block's store applies it; earlier blocks leave partial sums in C.
struct TileEpi {
  const float* bias;      // at column j
  const float* residual;  // at (i, j), leading dim ld
  float* pre;             // at (i, j), leading dim ld
  int64_t ld;
  int act;
};

inline bool has_epilogue(const GemmArgs& g) { return g.ep.bias || g.ep.residual || g.ep.pre || g.ep.act != GEMM_ACT_NONE; }

// The epilogue of the tile at (i, j) of matrix C (C = g.C + off: the matrix's offset within the batch).
inline TileEpi tile_epi(const GemmArgs& g, int64_t off, int64_t i, int64_t j) {
  const int64_t at = off + i * g.ldc + j;
  return {g.ep.bias ? g.ep.bias + j : nullptr, g.ep.residual ? g.ep.residual + at : nullptr,
          g.ep.pre ? g.ep.pre + at : nullptr, g.ldc, g.ep.act};
}

// x (n <= W lanes of row i, columns col..) + bias + residual → pre; then the activation. The same
// operations in the same order as gemm, bias_add, add and gelu_forward one after the other.
inline V epilogue(const TileEpi& e, V x, int64_t i, int64_t col, int64_t n) {
  const bool full = n == V::W;
  if (e.bias) x = x + (full ? V::load(e.bias + col) : load_part(e.bias + col, n, 0.f));
  if (e.residual) {
    const float* r = e.residual + i * e.ld + col;
    x = x + (full ? V::load(r) : load_part(r, n, 0.f));
  }
  if (e.pre) {
    float* p = e.pre + i * e.ld + col;
    if (full) x.store(p);
    else store_part(x, p, n);
  }
  if (e.act == GEMM_ACT_GELU_ERF) x = gelu_erf(x);
  else if (e.act == GEMM_ACT_GELU_TANH) x = gelu_tanh(x);
  return x;
}

// C = acc + beta·C (C not read when beta == 0), then the epilogue when e is set. Full tiles write C
// directly; edge tiles go through a small buffer.
inline void store_tile(V (&acc)[MR][NV], float* C, int64_t ldc, float beta, int64_t mr, int64_t nr,
                       const TileEpi* e) {
  const V bb = V::set1(beta);
  if (mr == MR && nr == NR) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
      for (int v = 0; v < NV; v++) {
        float* c = C + i * ldc + v * V::W;
        V x = beta == 0.f ? acc[i][v] : fma(bb, V::load(c), acc[i][v]);
        if (e) x = epilogue(*e, x, i, v * V::W, V::W);
        x.store(c);
      }
    return;
  }
  alignas(64) float tile[MR * NR];
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < NV; v++) acc[i][v].store(tile + i * NR + v * V::W);
  if (e) {
    for (int64_t i = 0; i < mr; i++)
      for (int64_t col = 0; col < nr; col += V::W) {
        const int64_t n = std::min<int64_t>(V::W, nr - col);
        float* c = C + i * ldc + col;
        V x = V::load(tile + i * NR + col);
        if (beta != 0.f) x = fma(bb, n == V::W ? V::load(c) : load_part(c, n, 0.f), x);
        x = epilogue(*e, x, i, col, n);
        if (n == V::W) x.store(c);
        else store_part(x, c, n);
      }
    return;
  }
  for (int64_t i = 0; i < mr; i++)
    for (int64_t j = 0; j < nr; j++) {
      float* c = C + i * ldc + j;
      *c = beta == 0.f ? tile[i * NR + j] : tile[i * NR + j] + beta * *c;
    }
}

// acc(MR x NR) = Ap-panel · Bp-panel over kc; then C = acc + beta·C.
void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* C, int64_t ldc,
                  float beta, int64_t mr, int64_t nr, const TileEpi* e) {
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
  store_tile(acc, C, ldc, beta, mr, nr, e);
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
                                      float* C, int64_t ldc, float beta, int64_t mr, int64_t nr, const TileEpi* e) {
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
  store_tile(acc, C, ldc, beta, mr, nr, e);
}
// AMX (Sapphire Rapids and later): TDPBF16PS multiplies a 16x32 bf16 tile of A by a 32x16 tile of B
// (k-pairs, the layout to_bf16_pairs writes) into a 16x16 fp32 tile, 16x the work of a vdpbf16ps
// (measured here: vdpbf16ps runs at half the fp32 FMA rate, so without AMX bf16 would be slower).
// Blocks: B packed per (jc, pc) as pairs, A per (ic, pc) as bf16 rows; each 32x32 block of C is four
// tiles (2 of A x 2 of B), summed over kc in tiles, then merged into C with beta.
constexpr int64_t AKC = 512, ANC = 256, AMC = 128;  // multiples of 32

// The process may use the AMX tile state: the CPU has AMX-TILE and AMX-BF16 and Linux granted
// XTILEDATA (arch_prctl ARCH_REQ_XCOMP_PERM, process-wide). TUNEKIT_AMX=0 turns it off.
bool amx_ready() {
  static const bool ok = [] {
    const char* env = std::getenv("TUNEKIT_AMX");
    if (env && std::strcmp(env, "0") == 0) return false;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    if (!((d >> 22) & 1) || !((d >> 24) & 1)) return false;  // AMX-BF16, AMX-TILE
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
  }();
  return ok;
}

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Ab[r][kcp] = bf16(alpha · op(A)(i0 + r, k0 + k)); zero for k >= kc and r >= m (rows up to mp).
__attribute__((target("avx512bf16"))) void pack_a_bf16_rows(const GemmArgs& g, const float* A, int64_t i0, int64_t m,
                                                            int64_t mp, int64_t k0, int64_t kc, int64_t kcp, uint16_t* Ab) {
  const __m512 alpha = _mm512_set1_ps(g.alpha);
  if (!g.transA) {
    for (int64_t r = 0; r < mp; r++) {
      uint16_t* d = Ab + r * kcp;
      static const float kZeros[32] = {};
      const float* src = r < m ? A + (i0 + r) * g.lda + k0 : nullptr;
      for (int64_t k = 0; k < kcp; k += 32) {
        const int64_t n = src ? std::max<int64_t>(0, std::min<int64_t>(32, kc - k)) : 0;
        const __mmask16 lo = __mmask16(n >= 16 ? 0xFFFF : (1u << n) - 1);
        const __mmask16 hi = __mmask16(n >= 32 ? 0xFFFF : n > 16 ? (1u << (n - 16)) - 1 : 0);
        const __m512 a = _mm512_mul_ps(alpha, _mm512_maskz_loadu_ps(lo, src ? src + k : kZeros));
        const __m512 b = _mm512_mul_ps(alpha, _mm512_maskz_loadu_ps(hi, src ? src + k + 16 : kZeros));
        _mm512_storeu_si512(d + k, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(b, a)));
      }
    }
    return;
  }
  // A stored K x M: rows k, k+1 give the pairs of 16 consecutive i; scatter them to rows i of Ab.
  alignas(64) static const uint16_t kIdx[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                                8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i idx = _mm512_load_si512(kIdx);
  const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                          _mm512_set1_epi32(static_cast<int>(kcp / 2)));
  uint32_t* pairs = reinterpret_cast<uint32_t*>(Ab);
  for (int64_t r = 0; r < mp; r += 16) {
    const int64_t n = std::max<int64_t>(0, std::min<int64_t>(16, m - r));
    const __mmask16 mk = __mmask16(n >= 16 ? 0xFFFF : (1u << n) - 1);
    for (int64_t k = 0; k < kcp; k += 2) {
      const float* r0 = A + (k0 + k) * g.lda + i0 + r;
      const __m512 a = k < kc ? _mm512_mul_ps(alpha, _mm512_maskz_loadu_ps(mk, r0)) : _mm512_setzero_ps();
      const __m512 b = k + 1 < kc ? _mm512_mul_ps(alpha, _mm512_maskz_loadu_ps(mk, r0 + g.lda)) : _mm512_setzero_ps();
      const __m512i p = _mm512_permutexvar_epi16(idx, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(b, a)));
      _mm512_i32scatter_epi32(pairs + r * (kcp / 2) + k / 2, rows, p, 4);
    }
  }
}

__attribute__((target("amx-tile,amx-bf16,avx512bf16"))) void gemm_block_amx(const GemmArgs& g, const float* A, const void* B,
                                                                             float* C, int64_t i0, int64_t m, int64_t j0, int64_t n) {
  const int64_t kc_max = std::min<int64_t>(AKC, (g.K + 31) / 32 * 32);
  const int64_t nc_max = std::min<int64_t>(ANC, (n + 31) / 32 * 32);
  const int64_t mc_max = std::min<int64_t>(AMC, (m + 31) / 32 * 32);
  float* Bp = g.b_dtype == TK_BF16 ? nullptr : scratch(0, kc_max * nc_max);
  uint32_t* Bh = reinterpret_cast<uint32_t*>(scratch(4, kc_max / 2 * nc_max));
  uint16_t* Ab = reinterpret_cast<uint16_t*>(scratch(5, mc_max * kc_max / 2));
  TileConfig cfg;
  for (int t = 0; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;
  _tile_loadconfig(&cfg);
  alignas(64) float ct[32 * 32];
  for (int64_t jc = 0; jc < n; jc += ANC) {
    const int64_t nc = std::min<int64_t>(ANC, n - jc), ncp = (nc + 31) / 32 * 32;
    for (int64_t pc = 0; pc < g.K; pc += AKC) {
      const int64_t kc = std::min<int64_t>(AKC, g.K - pc), kcp = (kc + 31) / 32 * 32, kpp = kcp / 2;
      const float beta = pc == 0 ? g.beta : 1.f;
      const bool last = pc + kc == g.K && has_epilogue(g);
      if (g.b_dtype == TK_BF16) {
        pack_b_pairs(g, static_cast<const uint16_t*>(B), pc, kc, j0 + jc, nc, kpp, Bh);
      } else {
        pack_b(g, B, pc, kc, j0 + jc, nc, Bp);  // NR = 32 columns a panel, zero past n
        for (int64_t q = 0; q < ncp; q += NR) {
          uint32_t* d = Bh + q * kpp;
          to_bf16_pairs(Bp + q * kc, kc, NR, d);
          std::memset(d + (kc + 1) / 2 * NR, 0, (kpp - (kc + 1) / 2) * NR * sizeof(uint32_t));
        }
      }
      for (int64_t ic = 0; ic < m; ic += AMC) {
        const int64_t mc = std::min<int64_t>(AMC, m - ic), mcp = (mc + 31) / 32 * 32;
        pack_a_bf16_rows(g, A, i0 + ic, mc, mcp, pc, kc, kcp, Ab);
        for (int64_t ir = 0; ir < mcp; ir += 32) {
          for (int64_t jr = 0; jr < ncp; jr += 32) {
            _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
            const uint16_t* a = Ab + ir * kcp;
            const uint32_t* b = Bh + jr * kpp;
            for (int64_t kk = 0; kk < kcp; kk += 32) {
              _tile_loadd(4, a + kk, kcp * 2);
              _tile_loadd(5, a + 16 * kcp + kk, kcp * 2);
              _tile_loadd(6, b + kk / 2 * NR, NR * 4);
              _tile_loadd(7, b + kk / 2 * NR + 16, NR * 4);
              _tile_dpbf16ps(0, 4, 6);
              _tile_dpbf16ps(1, 4, 7);
              _tile_dpbf16ps(2, 5, 6);
              _tile_dpbf16ps(3, 5, 7);
            }
            _tile_stored(0, ct, 128);
            _tile_stored(1, ct + 16, 128);
            _tile_stored(2, ct + 16 * 32, 128);
            _tile_stored(3, ct + 16 * 32 + 16, 128);
            // C = ct + beta·C over the valid part of the 32x32 block
            const int64_t rows = std::min<int64_t>(32, mc - ir), cols = std::min<int64_t>(32, nc - jr);
            const __m512 bb = _mm512_set1_ps(beta);
            for (int64_t r = 0; r < rows; r++) {
              float* c = C + (i0 + ic + ir + r) * g.ldc + j0 + jc + jr;
              const TileEpi te = last ? tile_epi(g, C - g.C, i0 + ic + ir + r, j0 + jc + jr) : TileEpi{};
              for (int h = 0; h < 2; h++) {
                const int64_t w = std::max<int64_t>(0, std::min<int64_t>(16, cols - 16 * h));
                if (!w) break;
                const __mmask16 mk = __mmask16(w >= 16 ? 0xFFFF : (1u << w) - 1);
                __m512 v = _mm512_load_ps(ct + r * 32 + 16 * h);
                if (beta != 0.f) v = _mm512_fmadd_ps(bb, _mm512_maskz_loadu_ps(mk, c + 16 * h), v);
                if (last) v = epilogue(te, V{v}, 0, 16 * h, w).v;
                _mm512_mask_storeu_ps(c + 16 * h, mk, v);
              }
            }
          }
        }
      }
    }
  }
  _tile_release();
}
#else
constexpr bool kHasBf16Path = false;
inline void to_bf16_pairs(const float*, int64_t, int, uint32_t*) {}
inline void micro_kernel_bf16(int64_t, const uint32_t*, const uint32_t*, float*, int64_t, float, int64_t, int64_t,
                              const TileEpi*) {}
inline bool amx_ready() { return false; }
inline void gemm_block_amx(const GemmArgs&, const float*, const void*, float*, int64_t, int64_t, int64_t, int64_t) {}
#endif

// bf16 only where this table has the kernel and the CPU the instruction (dispatch.cc checks both).
inline bool use_bf16(const GemmArgs& g) { return kHasBf16Path && g.bf16 && bf16_supported(); }

// C block rows [i0, i0+m), cols [j0, j0+n) of one matrix, on the calling thread.
void gemm_block(const GemmArgs& g, const float* A, const void* B, float* C, int64_t i0, int64_t m,
                int64_t j0, int64_t n) {
  if (g.K == 0 || g.alpha == 0.f) {  // C = beta·C, then the epilogue
    const bool ep = has_epilogue(g);
    for (int64_t i = i0; i < i0 + m; i++)
      for (int64_t j = j0; j < j0 + n; j++) {
        float* c = C + i * g.ldc + j;
        *c = g.beta == 0.f ? 0.f : g.beta * *c;
        if (ep) store_part(epilogue(tile_epi(g, C - g.C, i, j), load_part(c, 1, 0.f), 0, 0, 1), c, 1);
      }
    return;
  }
  if (use_bf16(g) && amx_ready()) return gemm_block_amx(g, A, B, C, i0, m, j0, n);
  const int64_t kc_max = std::min<int64_t>(KC, g.K);
  const int64_t nc_max = (std::min<int64_t>(NC, n) + NR - 1) / NR * NR;
  const int64_t mc_max = (std::min<int64_t>(MC, m) + MR - 1) / MR * MR;
  // bf16: pair buffers (slots 4 and 5: LoRA holds 2 and 3 around its GEMMs), kp = ceil(kc/2) pairs a panel;
  // a bf16 B goes straight into its pairs, with no float panel.
  const bool bf16 = use_bf16(g), b_pairs = bf16 && g.b_dtype == TK_BF16;
  float* Bp = b_pairs ? nullptr : scratch(0, kc_max * nc_max);
  float* Ap = scratch(1, kc_max * mc_max);
  const int64_t kp_max = (kc_max + 1) / 2;
  uint32_t* Bh = bf16 ? reinterpret_cast<uint32_t*>(scratch(4, kp_max * nc_max)) : nullptr;
  uint32_t* Ah = bf16 ? reinterpret_cast<uint32_t*>(scratch(5, kp_max * mc_max)) : nullptr;
  for (int64_t jc = 0; jc < n; jc += NC) {
    const int64_t nc = std::min<int64_t>(NC, n - jc);
    for (int64_t pc = 0; pc < g.K; pc += KC) {
      const int64_t kc = std::min<int64_t>(KC, g.K - pc), kp = (kc + 1) / 2;
      const float beta = pc == 0 ? g.beta : 1.f;
      const bool last = pc + kc == g.K && has_epilogue(g);
      if (b_pairs) {
        pack_b_pairs(g, static_cast<const uint16_t*>(B), pc, kc, j0 + jc, nc, kp, Bh);
      } else {
        pack_b(g, B, pc, kc, j0 + jc, nc, Bp);
        if (bf16)
          for (int64_t q = 0; q < nc; q += NR) to_bf16_pairs(Bp + q * kc, kc, NR, Bh + q * kp);
      }
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
            const TileEpi te = last ? tile_epi(g, C - g.C, i0 + ic + ir, j0 + jc + jr) : TileEpi{};
            const TileEpi* e = last ? &te : nullptr;
            if (bf16) micro_kernel_bf16(kp, Ah + ir * kp, Bh + jr * kp, c, g.ldc, beta, mr, nr, e);
            else micro_kernel(kc, Ap + ir * kc, Bp + jr * kc, c, g.ldc, beta, mr, nr, e);
          }
        }
      }
    }
  }
}

// Matrix b of B (strideB counts elements of B's dtype).
inline const void* b_at(const GemmArgs& g, int64_t b) {
  return static_cast<const char*>(g.B) + b * g.strideB * (g.b_dtype == TK_BF16 ? 2 : 4);
}

// A few rows times a weight stored (N, K) (a linear forward while decoding: M = the batch, one token a
// row): packing B into panels and running the MR-row micro-tile for M <= 8 rows costs more than the
// product, and a step is bound by reading B once. So each of B's rows n is read in place, once, and
// dotted with the M rows of A, rows of B split across threads. Same float32 math, another summation order.
constexpr int64_t kSmallM = 8;
inline bool small_m(const GemmArgs& g) { return g.M <= kSmallM && g.K > 0 && g.alpha != 0.f && g.transB && !g.transA && g.batch == 1 && !use_bf16(g); }

template <class E>
void gemm_small_m_rows(const GemmArgs& g, const E* B, int64_t n0, int64_t n1) {
  const int64_t M = g.M, K = g.K, kv = K - K % V::W;
  for (int64_t n = n0; n < n1; n++) {
    const E* b = B + n * g.ldb;
    V acc[kSmallM];
    for (int64_t m = 0; m < M; m++) acc[m] = V::zero();
    for (int64_t k = 0; k < kv; k += V::W) {
      const V bv = load_v(b + k);
      for (int64_t m = 0; m < M; m++) acc[m] = fma(V::load(g.A + m * g.lda + k), bv, acc[m]);
    }
    if (kv < K) {  // the tail through the same vector math, zero-padded, so a bf16 B gives float B's bits
      alignas(64) float bt[V::W] = {}, at[V::W] = {};
      for (int64_t k = kv; k < K; k++) bt[k - kv] = widen(b[k]);
      const V bv = V::load(bt);
      for (int64_t m = 0; m < M; m++) {
        for (int64_t k = kv; k < K; k++) at[k - kv] = g.A[m * g.lda + k];
        acc[m] = fma(V::load(at), bv, acc[m]);
      }
    }
    for (int64_t m = 0; m < M; m++) {
      const float sum = reduce_add(acc[m]);
      float* c = g.C + m * g.ldc + n;
      *c = g.beta == 0.f ? g.alpha * sum : g.alpha * sum + g.beta * *c;
    }
  }
}

void gemm_small_m(const GemmArgs& g, int64_t n0, int64_t n1) {
  if (g.b_dtype == TK_BF16) gemm_small_m_rows(g, static_cast<const uint16_t*>(g.B), n0, n1);
  else gemm_small_m_rows(g, static_cast<const float*>(g.B), n0, n1);
  if (!has_epilogue(g)) return;
  // Then the epilogue over the columns just written, as bias_add / add / gelu would run after the product.
  for (int64_t m = 0; m < g.M; m++)
    for (int64_t col = n0; col < n1; col += V::W) {
      const int64_t n = std::min<int64_t>(V::W, n1 - col);
      float* c = g.C + m * g.ldc + col;
      const V x = epilogue(tile_epi(g, 0, m, col), n == V::W ? V::load(c) : load_part(c, n, 0.f), 0, 0, n);
      if (n == V::W) x.store(c);
      else store_part(x, c, n);
    }
}

}  // namespace

void gemm_serial(const GemmArgs& g) {
  for (int64_t b = 0; b < g.batch; b++)
    gemm_block(g, g.A + b * g.strideA, b_at(g, b), g.C + b * g.strideC, 0, g.M, 0, g.N);
}

void gemm(const GemmArgs& g) {
  if (g.M <= 0 || g.N <= 0 || g.batch <= 0) return;
  const int nt = num_threads();
  const double flops = 2.0 * g.M * g.N * (g.K + 1) * g.batch;
  if (small_m(g)) {
    if (nt <= 1 || flops < 2e5) return gemm_small_m(g, 0, g.N);
    return parallel_for(g.N, [&](int64_t n0, int64_t n1) { gemm_small_m(g, n0, n1); });
  }
  if (nt <= 1 || flops < 2e5) return gemm_serial(g);
  if (g.batch >= nt) {  // whole matrices per thread
    parallel_for(g.batch, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; b++)
        gemm_block(g, g.A + b * g.strideA, b_at(g, b), g.C + b * g.strideC, 0, g.M, 0, g.N);
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
      const void* B = b_at(g, b);
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
