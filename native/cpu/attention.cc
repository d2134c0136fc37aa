// Fused attention, FlashAttention-2 on the CPU. Per (batch, head) the keys and values are packed once
// into per-thread scratch (Kᵀ pre-scaled by scale·log2(e) so the softmax runs in base 2); queries are
// processed in tiles of BQ against key tiles of BK with an online softmax, so no Tq x Tk matrix ever
// exists. The tile products use register-tiled SIMD kernels on operands packed once per head
// (gemm_serial repacks both operands per call: on a 64x128x64 tile it reached ~105 GFLOP/s on one Zen 5
// core against ~205 for these kernels).
// The backward recomputes P tile by tile from the saved log-sum-exp (FlashAttention-2, Algorithm 2).
// Grouped-query attention: the query heads of one kv head are adjacent, so the forward packs a kv head
// once for all of them, and the backward gives a thread a kv head whole, summing its query heads' dK,
// dV in head order (deterministic). Causal and sliding-window limits skip whole key tiles.
// GCC 12 flags the _mm512_undefined_* inside AVX-512 intrinsics (max, reductions, unpacks) as
// uninitialised.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "tunekit/ops.h"
#include "philox.h"
#include "simd.h"
#include "threadpool.h"
#include "tiles.h"

namespace tk {
namespace TK_ISA {
namespace {

using namespace tiles;  // tile_gemm, transpose_block, round_up

constexpr int64_t BQ = 64;   // queries per tile
constexpr int64_t BK = 128;  // keys per tile (a multiple of 16, so of every V::W)
// Row stride of key-tile buffers (Kᵀ, Vᵀ, scores): not a power of two, so the rows of a tile spread
// over all L1 sets instead of a few.
constexpr int64_t LD = BK + 16;
constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// 2^x for x <= 0, exactly 0 below -126 (so masked scores, -inf, give P = 0 on every ISA): Cephes
// exp2f's polynomial on x - round(x).
inline V vexp2(V x) {
  const V lo = V::set1(-126.f);
  const V xc = vmax(x, V::set1(-127.f));  // keeps the exponent arithmetic finite for -inf
  const V n = vround(xc);
  const V r = xc - n;
  V p = V::set1(1.535336188319500e-4f);
  p = fma(p, r, V::set1(1.339887440266574e-3f));
  p = fma(p, r, V::set1(9.618437357674640e-3f));
  p = fma(p, r, V::set1(5.550332471162809e-2f));
  p = fma(p, r, V::set1(2.402264791363012e-1f));
  p = fma(p, r, V::set1(6.931472028550421e-1f));
  p = fma(p, r, V::set1(1.f));
  return select_lt(x, lo, V::zero(), p * pow2i(n));
}

constexpr int NB = 16;  // Philox blocks drawn together: 64 words

// The words of Philox blocks c .. c+NB-1 under `seed`, in element order: w[4·l + k] = word k of block c + l.
inline void philox_batch(uint64_t c, uint64_t seed, uint32_t* w) { philox::blocks16(c, seed, w); }

// mult[j] = 1/(1-p) where element e0 + j is kept, else 0, for j < n. Kept means uniform >= p with
// uniform = (word >> 8)·2^-24 (philox::to_uniform), i.e. (word >> 8) >= ceil(p·2^24), exactly.
void dropout_mult(const AttentionArgs& a, uint64_t e0, int64_t n, float* mult) {
  alignas(64) uint32_t w[4 * NB];
  const uint32_t thr = static_cast<uint32_t>(std::ceil(a.dropout_p * 16777216.f));
  const float inv = 1.f / (1.f - a.dropout_p);
  const uint64_t i = a.offset + e0;
  uint64_t c = i >> 2;
  int64_t skip = static_cast<int64_t>(i & 3);
  for (int64_t j = 0; j < n; c += NB, skip = 0) {
    philox_batch(c, a.seed, w);
    const int64_t take = std::min<int64_t>(4 * NB - skip, n - j);
    for (int64_t t = 0; t < take; t++) mult[j + t] = (w[skip + t] >> 8) >= thr ? inv : 0.f;
    j += take;
  }
}

// Philox element of probability (b, h, i, j), in unsigned arithmetic (it wraps rather than overflows).
inline uint64_t element(const AttentionArgs& a, int64_t b, int64_t h, int64_t i, int64_t j) {
  return ((static_cast<uint64_t>(b) * a.H + h) * a.Tq + i) * a.Tk + j;
}

inline int64_t kv_heads(const AttentionArgs& a) { return a.Hkv > 0 ? a.Hkv : a.H; }

// Keys [*lo, *hi) that queries [i0, i0 + mq) may see within [k0, k1) (causal and window limits);
// *lo rounded down to a key tile of the range starting at k0. Empty when *lo >= *hi.
inline void visible_keys(const AttentionArgs& a, int64_t i0, int64_t mq, int64_t k0, int64_t k1, int64_t* lo, int64_t* hi) {
  const int64_t p0 = a.q_offset + i0;  // key position of the first query
  *hi = a.causal ? std::min(k1, p0 + mq) : k1;
  const int64_t first = a.causal && a.window > 0 ? std::max(k0, p0 - a.window + 1) : k0;
  *lo = k0 + (first - k0) / BK * BK;
}

// mask_row's limits for query i against the key tile at j0: [lo, lim), relative to j0.
inline int64_t row_lo(const AttentionArgs& a, int64_t i, int64_t j0) {
  return a.causal && a.window > 0 ? a.q_offset + i - a.window + 1 - j0 : 0;
}
inline int64_t row_lim(const AttentionArgs& a, int64_t i, int64_t j0, int64_t nkp) { return a.causal ? a.q_offset + i - j0 + 1 : nkp; }

// Bump allocator over one per-thread scratch slot; every buffer starts on a 64-byte line.
struct Carve {
  float* base;
  int64_t used = 0;
  float* take(int64_t n) {
    float* p = base + used;
    used += round_up(n, 16);
    return p;
  }
};

// Additive key mask of one batch row over keys [k0, k0 + nkp): 0 = attend, -inf = padding or past Tk.
// live[t]: whether key tile t (BK keys) has a key left.
void key_bias(const AttentionArgs& a, int64_t b, int64_t k0, int64_t nkp, float* bias, uint8_t* live) {
  for (int64_t j = 0; j < nkp; j++) {
    const int64_t key = k0 + j;
    const bool on = key < a.Tk && (!a.key_mask || a.key_mask[b * a.Tk + key]);
    bias[j] = on ? 0.f : kNegInf;
  }
  for (int64_t t = 0; t * BK < nkp; t++) {
    live[t] = 0;
    for (int64_t j = t * BK; j < std::min(nkp, (t + 1) * BK); j++) live[t] |= bias[j] == 0.f;
  }
}

// Masked scores of one row: s += bias; keys before `lo` (sliding window) and from `lim` on (causal)
// get -inf. Returns the row max.
inline float mask_row(float* s, const float* bias, int64_t nkp, int64_t lo, int64_t lim) {
  for (int64_t j = 0; j < std::min(lo, nkp); j++) s[j] = kNegInf;
  for (int64_t j = std::max<int64_t>(lim, 0); j < nkp; j++) s[j] = kNegInf;
  V mx = V::set1(kNegInf);
  for (int64_t j = 0; j < nkp; j += V::W) {
    const V x = V::load(s + j) + V::load(bias + j);
    x.store(s + j);
    mx = vmax(mx, x);
  }
  return reduce_max(mx);
}

// Keys [k0, k0 + nk) of head (b, h) of a (B, Tk, H, D) tensor, transposed and times `mul`, in key
// tiles: tile t is [D][LD] at dst + t·D·LD. Keys past nk up to a multiple of 16 are zero (the products
// read whole vectors). Full TB x TB blocks go through registers; the edges element by element.
void pack_transposed(const float* src, int64_t ld, const AttentionArgs& a, int64_t b, int64_t h, int64_t k0, int64_t nk,
                     float mul, float* dst) {
  const int64_t D = a.D;
  const float* base = src + (b * a.Tk + k0) * ld + h * D;
  for (int64_t j0 = 0; j0 < nk; j0 += 16) {
    float* t = dst + (j0 / BK) * D * LD + j0 % BK;
    const int64_t n = std::min<int64_t>(16, nk - j0);
    int64_t d0 = 0;
    if (n == 16)
      for (; d0 + TB <= D; d0 += TB)
        for (int64_t r = 0; r < 16; r += TB) transpose_block(base + (j0 + r) * ld + d0, ld, t + d0 * LD + r, LD, mul);
    for (int64_t d = d0; d < D; d++) {
      float* out = t + d * LD;
      for (int64_t r = 0; r < n; r++) out[r] = base[(j0 + r) * ld + d] * mul;
      for (int64_t r = n; r < 16; r++) out[r] = 0.f;
    }
  }
}

// Rows [i0, i0 + m) of head (b, h) of a (B, T, H, D) tensor as a matrix of m rows of Dp floats, the
// width the tile products read: the tensor itself when D is a multiple of the vector width, else a
// zero-padded copy in buf.
struct Rows {
  const float* p;
  int64_t ld;
};
Rows rows(const float* src, int64_t ld, int64_t T, int64_t H, int64_t D, int64_t b, int64_t h, int64_t i0, int64_t m,
          int64_t Dp, float* buf) {
  const float* first = src + (b * T + i0) * ld + h * D;
  if (D == Dp) return {first, ld};
  for (int64_t r = 0; r < m; r++) {
    std::memcpy(buf + r * Dp, first + r * ld, D * sizeof(float));
    std::fill(buf + r * Dp + D, buf + (r + 1) * Dp, 0.f);
  }
  return {buf, Dp};
}

// ---------------------------------------------------------------------------------------------
// Forward

struct Forward {
  const AttentionArgs& a;
  int64_t Dp, Tkp, ntk;
  float *Kt, *Vn, *bias, *O, *S, *mult, *m, *l;
  uint8_t* live;
  Rows Vr{};

  explicit Forward(const AttentionArgs& args) : a(args) {
    Dp = round_up(a.D, V::W);
    Tkp = round_up(a.Tk, V::W);
    ntk = (a.Tk + BK - 1) / BK;
    Carve c{nullptr};
    const int64_t sizes[] = {ntk * a.D * LD, Tkp * Dp, Tkp, BQ * Dp, BQ * LD, BK, BQ, BQ, ntk};
    for (int64_t s : sizes) c.take(s);
    c.base = scratch(2, c.used);
    c.used = 0;
    Kt = c.take(sizes[0]); Vn = c.take(sizes[1]); bias = c.take(sizes[2]); O = c.take(sizes[3]);
    S = c.take(sizes[4]); mult = c.take(sizes[5]); m = c.take(sizes[6]); l = c.take(sizes[7]);
    live = reinterpret_cast<uint8_t*>(c.take(sizes[8]));
  }

  // Keys and values of kv head kvh of batch row b.
  void pack(int64_t b, int64_t kvh) {
    pack_transposed(a.k, a.ldk, a, b, kvh, 0, a.Tk, a.scale * kLog2e, Kt);
    Vr = rows(a.v, a.ldv, a.Tk, a.H, a.D, b, kvh, 0, a.Tk, Dp, Vn);
    key_bias(a, b, 0, Tkp, bias, live);
  }

  void query_tile(int64_t b, int64_t h, int64_t i0) {
    const int64_t mq = std::min(BQ, a.Tq - i0), D = a.D;
    const float* q = a.q + (b * a.Tq + i0) * a.ldq + h * D;
    std::fill(O, O + mq * Dp, 0.f);
    std::fill(m, m + mq, kNegInf);
    std::fill(l, l + mq, 0.f);
    int64_t kbeg, kend;
    visible_keys(a, i0, mq, 0, a.Tk, &kbeg, &kend);
    for (int64_t j0 = kbeg; j0 < kend; j0 += BK) {
      if (!live[j0 / BK]) continue;
      const int64_t nk = std::min(BK, kend - j0), nkp = round_up(nk, V::W);  // causal: up to the diagonal
      tile_gemm<false>(mq, nkp, D, q, a.ldq, Kt + j0 / BK * D * LD, LD, S, LD, false);
      for (int64_t r = 0; r < mq; r++) {
        float* s = S + r * LD;
        const float m_new = std::max(m[r], mask_row(s, bias + j0, nkp, row_lo(a, i0 + r, j0), row_lim(a, i0 + r, j0, nkp)));
        if (m_new == kNegInf) {  // no key yet for this row
          std::fill(s, s + nk, 0.f);
          continue;
        }
        const float alpha = std::exp2(m[r] - m_new);
        const V mv = V::set1(m_new);
        V sum = V::zero();
        for (int64_t j = 0; j < nkp; j += V::W) {
          const V p = vexp2(V::load(s + j) - mv);
          p.store(s + j);
          sum = sum + p;
        }
        l[r] = l[r] * alpha + reduce_add(sum);
        m[r] = m_new;
        if (alpha != 1.f) {
          float* o = O + r * Dp;
          for (int64_t d = 0; d < Dp; d += V::W) (V::load(o + d) * V::set1(alpha)).store(o + d);
        }
        if (a.dropout_p > 0.f) {
          dropout_mult(a, element(a, b, h, i0 + r, j0), nk, mult);
          for (int64_t j = 0; j < nk; j++) s[j] *= mult[j];
        }
      }
      tile_gemm<false>(mq, Dp, nk, S, LD, Vr.p + j0 * Vr.ld, Vr.ld, O, Dp, true);
    }
    for (int64_t r = 0; r < mq; r++) {
      float* o = a.o + (b * a.Tq + i0 + r) * a.ldo + h * D;
      float* lse = a.lse + (b * a.H + h) * a.Tq + i0 + r;
      if (l[r] == 0.f) {
        std::fill(o, o + D, 0.f);
        *lse = kNegInf;
        continue;
      }
      const float inv = 1.f / l[r];
      for (int64_t d = 0; d < D; d++) o[d] = O[r * Dp + d] * inv;
      *lse = (m[r] + std::log2(l[r])) * kLn2;
    }
  }
};

// Fewer than this many flops run on the calling thread only.
constexpr double kThreadFlops = 2e6;

// ---------------------------------------------------------------------------------------------
// Backward

struct Backward {
  const AttentionBackwardArgs& g;
  const AttentionArgs& a;
  int64_t Dp, nkr, nkrp;
  float *Kt, *Kn, *Vt, *dK, *dV, *bias, *Q, *dO, *dQ, *S, *dP, *mult, *lse2, *Di;
  uint8_t* live;

  // Scratch for a key range of up to nkr keys.
  Backward(const AttentionBackwardArgs& args, int64_t max_keys) : g(args), a(args.fwd) {
    Dp = round_up(a.D, V::W);
    nkr = max_keys;
    nkrp = round_up(nkr, V::W);
    const int64_t D = a.D;
    Carve c{nullptr};
    const int64_t ntk = (nkr + BK - 1) / BK;
    const int64_t sizes[] = {ntk * D * LD, nkr * Dp, ntk * D * LD, nkr * Dp, nkr * Dp, nkrp, BQ * Dp, BQ * Dp, BQ * Dp,
                             BQ * LD, BQ * LD, BK, BQ, BQ, ntk};
    for (int64_t s : sizes) c.take(s);
    c.base = scratch(2, c.used);
    c.used = 0;
    Kt = c.take(sizes[0]); Kn = c.take(sizes[1]); Vt = c.take(sizes[2]); dK = c.take(sizes[3]);
    dV = c.take(sizes[4]); bias = c.take(sizes[5]); Q = c.take(sizes[6]); dO = c.take(sizes[7]);
    dQ = c.take(sizes[8]); S = c.take(sizes[9]); dP = c.take(sizes[10]); mult = c.take(sizes[11]);
    lse2 = c.take(sizes[12]); Di = c.take(sizes[13]);
    live = reinterpret_cast<uint8_t*>(c.take(sizes[14]));
  }

  // Gradients through keys [k0, k1) of kv head kvh of batch row b: dk, dv of those keys (summed over
  // the group's query heads in head order), and the part of each query head's dq they contribute:
  // written in place with one part, else to partial[(b·H + h)·parts + p] (summed afterwards).
  void run(int64_t b, int64_t kvh, int64_t k0, int64_t k1, int64_t p, int64_t parts, float* partial) {
    const int64_t D = a.D, nk_all = k1 - k0, nkp_all = round_up(nk_all, V::W), R = a.H / kv_heads(a);
    pack_transposed(a.k, a.ldk, a, b, kvh, k0, nk_all, a.scale * kLog2e, Kt);
    pack_transposed(a.v, a.ldv, a, b, kvh, k0, nk_all, 1.f, Vt);
    const Rows Kr = rows(a.k, a.ldk, a.Tk, a.H, D, b, kvh, k0, nk_all, Dp, Kn);
    key_bias(a, b, k0, nkp_all, bias, live);
    std::fill(dK, dK + nk_all * Dp, 0.f);
    std::fill(dV, dV + nk_all * Dp, 0.f);
    for (int64_t h = kvh * R; h < (kvh + 1) * R; h++) {
      if (parts == 1) head(b, h, k0, k1, Kr, g.dq + b * a.Tq * g.lddq + h * D, g.lddq);
      else head(b, h, k0, k1, Kr, partial + ((b * a.H + h) * parts + p) * a.Tq * D, D);
    }
    for (int64_t j = 0; j < nk_all; j++) {
      float* dk = g.dk + (b * a.Tk + k0 + j) * g.lddk + kvh * D;
      float* dv = g.dv + (b * a.Tk + k0 + j) * g.lddv + kvh * D;
      for (int64_t d = 0; d < D; d++) {
        dk[d] = dK[j * Dp + d] * a.scale;
        dv[d] = dV[j * Dp + d];
      }
    }
  }

  // Query head h against the packed keys [k0, k1): adds to dK, dV; writes its dq share (scaled) to
  // dq_out rows with stride ld_out.
  void head(int64_t b, int64_t h, int64_t k0, int64_t k1, const Rows& Kr, float* dq_out, int64_t ld_out) {
    const int64_t D = a.D;
    for (int64_t i0 = 0; i0 < a.Tq; i0 += BQ) {
      const int64_t mq = std::min(BQ, a.Tq - i0);
      int64_t kbeg, kend;
      visible_keys(a, i0, mq, k0, k1, &kbeg, &kend);
      if (kbeg >= kend) {  // these queries see no key of the range
        for (int64_t r = 0; r < mq; r++) std::fill(dq_out + (i0 + r) * ld_out, dq_out + (i0 + r) * ld_out + D, 0.f);
        continue;
      }
      const Rows Qr = rows(a.q, a.ldq, a.Tq, a.H, D, b, h, i0, mq, Dp, Q);
      const Rows dOr = rows(g.dout, g.lddo, a.Tq, a.H, D, b, h, i0, mq, Dp, dO);
      for (int64_t r = 0; r < mq; r++) {
        const float* o = a.o + (b * a.Tq + i0 + r) * a.ldo + h * D;
        const float* dor = dOr.p + r * dOr.ld;
        float di = 0.f;
        for (int64_t d = 0; d < D; d++) di += dor[d] * o[d];
        Di[r] = di;
        lse2[r] = a.lse[(b * a.H + h) * a.Tq + i0 + r] * kLog2e;
      }
      std::fill(dQ, dQ + mq * Dp, 0.f);
      for (int64_t j0 = kbeg; j0 < kend; j0 += BK) {
        const int64_t jr = j0 - k0;  // offset in the packed range
        if (!live[jr / BK]) continue;
        const int64_t nk = std::min(BK, kend - j0), nkp = round_up(nk, V::W);  // causal: up to the diagonal
        tile_gemm<false>(mq, nkp, D, Qr.p, Qr.ld, Kt + jr / BK * D * LD, LD, S, LD, false);
        tile_gemm<false>(mq, nkp, D, dOr.p, dOr.ld, Vt + jr / BK * D * LD, LD, dP, LD, false);
        for (int64_t r = 0; r < mq; r++) {
          float* s = S + r * LD;
          float* dp = dP + r * LD;
          if (lse2[r] == kNegInf) {  // a row without keys: no gradient
            std::fill(s, s + nkp, 0.f);
            std::fill(dp, dp + nkp, 0.f);
            continue;
          }
          mask_row(s, bias + jr, nkp, row_lo(a, i0 + r, j0), row_lim(a, i0 + r, j0, nkp));
          const V L = V::set1(lse2[r]), Dr = V::set1(Di[r]);
          if (a.dropout_p > 0.f) {
            dropout_mult(a, element(a, b, h, i0 + r, j0), nk, mult);
            std::fill(mult + nk, mult + nkp, 0.f);
            for (int64_t j = 0; j < nkp; j += V::W) {
              const V p = vexp2(V::load(s + j) - L), mk = V::load(mult + j);
              (p * mk).store(s + j);
              (p * (V::load(dp + j) * mk - Dr)).store(dp + j);
            }
          } else {
            for (int64_t j = 0; j < nkp; j += V::W) {
              const V p = vexp2(V::load(s + j) - L);
              p.store(s + j);
              (p * (V::load(dp + j) - Dr)).store(dp + j);
            }
          }
        }
        tile_gemm<true>(nk, Dp, mq, S, LD, dOr.p, dOr.ld, dV + jr * Dp, Dp, true);           // dV += P̃ᵀ dO
        tile_gemm<true>(nk, Dp, mq, dP, LD, Qr.p, Qr.ld, dK + jr * Dp, Dp, true);            // dK += dSᵀ Q
        tile_gemm<false>(mq, Dp, nk, dP, LD, Kr.p + jr * Kr.ld, Kr.ld, dQ, Dp, true);        // dQ += dS K
      }
      for (int64_t r = 0; r < mq; r++) {
        float* dst = dq_out + (i0 + r) * ld_out;
        for (int64_t d = 0; d < D; d++) dst[d] = dQ[r * Dp + d] * a.scale;
      }
    }
  }
};

}  // namespace

void attention_forward(const AttentionArgs& a) {
  if (a.B <= 0 || a.H <= 0 || a.Tq <= 0) return;
  const int64_t nqt = (a.Tq + BQ - 1) / BQ;
  const double flops = 4.0 * a.B * a.H * a.Tq * a.Tk * a.D;
  parallel_for(
      a.B * a.H * nqt,
      [&](int64_t t0, int64_t t1) {
        Forward f(a);
        const int64_t R = a.H / kv_heads(a);
        int64_t packed = -1;
        for (int64_t t = t0; t < t1; t++) {
          const int64_t bh = t / nqt, b = bh / a.H, h = bh % a.H, bg = bh / R;  // bg = b·Hkv + kv head
          if (bg != packed) {
            f.pack(b, h / R);
            packed = bg;
          }
          f.query_tile(b, h, (t % nqt) * BQ);
        }
      },
      flops < kThreadFlops ? 1 : 0);
}

void attention_backward(const AttentionBackwardArgs& g) {
  const AttentionArgs& a = g.fwd;
  if (a.B <= 0 || a.H <= 0 || a.Tq <= 0) return;
  const int64_t BH = a.B * a.H, D = a.D, Hkv = kv_heads(a), BG = a.B * Hkv;
  const int64_t ntk = (a.Tk + BK - 1) / BK;
  const int nt = 10.0 * a.B * a.H * a.Tq * a.Tk * a.D < kThreadFlops ? 1 : num_threads();
  // KV heads go to threads whole, with their query heads; with fewer than kUnits kv heads each one's
  // keys are split too, every part writing its share of dq to a buffer that is summed afterwards in a
  // fixed order. The split depends on the shape only, so the result is the same for any thread count.
  constexpr int64_t kUnits = 16;
  const int64_t parts = BG >= kUnits || ntk <= 1 ? 1 : std::min<int64_t>(ntk, (kUnits + BG - 1) / BG);
  const auto key_range = [&](int64_t p, int64_t* k0, int64_t* k1) {
    *k0 = ntk * p / parts * BK;
    *k1 = std::min(a.Tk, ntk * (p + 1) / parts * BK);
  };
  if (ntk == 0) {  // no keys: dq = 0
    for (int64_t bt = 0; bt < a.B * a.Tq; bt++)
      for (int64_t h = 0; h < a.H; h++) std::fill(g.dq + bt * g.lddq + h * D, g.dq + bt * g.lddq + (h + 1) * D, 0.f);
    return;
  }
  std::vector<float> partial(parts > 1 ? BH * parts * a.Tq * D : 0);
  parallel_for(
      BG * parts,
      [&](int64_t t0, int64_t t1) {
        int64_t most = 0;
        for (int64_t p = 0; p < parts; p++) {
          int64_t k0, k1;
          key_range(p, &k0, &k1);
          most = std::max(most, k1 - k0);
        }
        Backward w(g, most);
        for (int64_t t = t0; t < t1; t++) {
          const int64_t bg = t / parts, p = t % parts;
          int64_t k0, k1;
          key_range(p, &k0, &k1);
          w.run(bg / Hkv, bg % Hkv, k0, k1, p, parts, partial.data());
        }
      },
      nt);
  if (parts == 1) return;
  parallel_for(BH * a.Tq, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const int64_t bh = r / a.Tq, i = r % a.Tq, b = bh / a.H, h = bh % a.H;
      float* dst = g.dq + (b * a.Tq + i) * g.lddq + h * D;
      for (int64_t d = 0; d < D; d++) {
        float s = 0.f;
        for (int64_t p = 0; p < parts; p++) s += partial[((bh * parts + p) * a.Tq + i) * D + d];
        dst[d] = s;
      }
    }
  });
}

}  // namespace TK_ISA
}  // namespace tk
