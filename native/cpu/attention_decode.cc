// Decoding attention (flash-decoding on the CPU): one query token per (batch, head) against a KV cache.
// The work is cut into tasks (batch row, kv head, key chunk); a task reads its keys and values once
// for all H / Hkv query heads of the kv head (grouped-query attention) and leaves, per query head, a
// partial softmax: the chunk's max score, the sum of exp(score − max) and the weighted values. The
// partials are merged in chunk order afterwards, so the result does not depend on the thread count
// and batch 1 still spreads over every core. The products are the fused attention's register tiles
// (tiles.h): with the group's query heads as the rows of one operand, each key is read once.
// GCC 12 flags the _mm512_undefined_* inside AVX-512 intrinsics as uninitialised.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "tunekit/ops.h"
#include "simd.h"
#include "threadpool.h"
#include "tiles.h"

namespace tk {
namespace TK_ISA {
namespace {

using namespace tiles;  // tile_gemm, transpose_block, round_up

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Per (b, h, chunk): m, l, then D weighted values.
struct Partials {
  int64_t nch, D;
  float* base;
  float* at(int64_t bh, int64_t c) const { return base + (bh * nch + c) * (D + 2); }
};

// Keys [*lo, *hi) batch row b sees (lengths and window; the key mask is applied per key).
inline void key_span(const AttentionDecodeArgs& a, int64_t b, int64_t* lo, int64_t* hi) {
  const int64_t len = a.lengths ? a.lengths[b] : a.Tk;
  *hi = len;
  *lo = a.window > 0 ? std::max<int64_t>(0, len - a.window) : 0;
}

// Keys [j0, j0 + n) of kv head g of batch row b, transposed and times `mul`, into Kt [D][ldt]; the
// columns up to the next multiple of 16 are zero (the products read whole vectors).
void pack_keys(const AttentionDecodeArgs& a, int64_t b, int64_t g, int64_t j0, int64_t n, float mul, float* Kt, int64_t ldt) {
  const int64_t D = a.D;
  const float* base = a.k + (b * a.Tmax + j0) * a.ldk + g * D;
  for (int64_t c0 = 0; c0 < n; c0 += 16) {
    const int64_t m = std::min<int64_t>(16, n - c0);
    int64_t d0 = 0;
    if (m == 16)
      for (; d0 + TB <= D; d0 += TB)
        for (int64_t r = 0; r < 16; r += TB) transpose_block(base + (c0 + r) * a.ldk + d0, a.ldk, Kt + d0 * ldt + c0 + r, ldt, mul);
    for (int64_t d = d0; d < D; d++) {
      float* out = Kt + d * ldt + c0;
      for (int64_t r = 0; r < m; r++) out[r] = base[(c0 + r) * a.ldk + d] * mul;
      for (int64_t r = m; r < 16; r++) out[r] = 0.f;
    }
  }
}

// One task: keys [j0, j1) of kv head g of batch row b, for its R query heads (adjacent in q, so they
// are one R x D operand): S = Q·Kᵀ·scale, masked, P = exp(S − max), O = P·V, with the attention kernels'
// register-tiled products.
void chunk_task(const AttentionDecodeArgs& a, int64_t R, int64_t chunk, const Partials& out, int64_t b, int64_t g,
                int64_t c) {
  const int64_t D = a.D, Dp = round_up(D, V::W), Cp = round_up(chunk, 16);
  int64_t lo, hi;
  key_span(a, b, &lo, &hi);
  const int64_t j0 = std::max(c * chunk, lo), n = std::max<int64_t>(0, std::min((c + 1) * chunk, hi) - j0);
  if (n == 0) {  // no visible key in this chunk
    for (int64_t r = 0; r < R; r++) {
      float* part = out.at(b * a.H + g * R + r, c);
      part[0] = kNegInf;
      part[1] = 0.f;
    }
    return;
  }
  const int64_t np = round_up(n, V::W);
  float* Kt = scratch(2, D * Cp + R * Cp + R * Dp + (D == Dp ? 0 : chunk * Dp));
  float* S = Kt + D * Cp;
  float* O = S + R * Cp;
  float* Vn = O + R * Dp;
  pack_keys(a, b, g, j0, n, a.scale, Kt, Cp);
  tile_gemm<false>(R, np, D, a.q + b * a.ldq + g * R * D, D, Kt, Cp, S, Cp, false);
  for (int64_t r = 0; r < R; r++) {
    float* s = S + r * Cp;
    float* part = out.at(b * a.H + g * R + r, c);
    for (int64_t jj = 0; jj < np; jj++)
      if (jj >= n || (a.key_mask && !a.key_mask[b * a.Tk + j0 + jj])) s[jj] = kNegInf;
    float m = kNegInf;
    for (int64_t jj = 0; jj < n; jj++) m = std::max(m, s[jj]);
    part[0] = m;
    if (m == kNegInf) {  // every key of the chunk is padding: weights 0
      std::fill(s, s + np, 0.f);
      part[1] = 0.f;
      continue;
    }
    const V mv = V::set1(m);
    V l = V::zero();
    for (int64_t jj = 0; jj < np; jj += V::W) {
      const V p = vexp(V::load(s + jj) - mv);  // masked keys: exactly 0
      p.store(s + jj);
      l = l + p;
    }
    part[1] = reduce_add(l);
  }
  // Values of the chunk as n rows of Dp floats: the cache itself when D is a multiple of the vector width.
  const float* v = a.v + (b * a.Tmax + j0) * a.ldv + g * D;
  int64_t ldv = a.ldv;
  if (D != Dp) {
    for (int64_t jj = 0; jj < n; jj++) {
      std::copy(v + jj * a.ldv, v + jj * a.ldv + D, Vn + jj * Dp);
      std::fill(Vn + jj * Dp + D, Vn + (jj + 1) * Dp, 0.f);
    }
    v = Vn;
    ldv = Dp;
  }
  tile_gemm<false>(R, Dp, n, S, Cp, v, ldv, O, Dp, false);
  for (int64_t r = 0; r < R; r++) std::copy(O + r * Dp, O + r * Dp + D, out.at(b * a.H + g * R + r, c) + 2);
}

}  // namespace

void attention_decode(const AttentionDecodeArgs& a) {
  if (a.B <= 0 || a.H <= 0) return;
  const int64_t D = a.D, Hkv = a.Hkv > 0 ? a.Hkv : a.H, R = a.H / Hkv;
  const int64_t chunk = decode_chunk(a.Tk), nch = std::max<int64_t>(1, (a.Tk + chunk - 1) / chunk);
  // Every (b, h, chunk) gets m and l; its D values only where l > 0 (the merge reads no others).
  std::unique_ptr<float[]> buf(new float[a.B * a.H * nch * (D + 2)]);
  const Partials parts{nch, D, buf.get()};
  const bool small = 2.0 * a.B * a.H * a.Tk * D < 2e5;
  parallel_for(
      a.B * Hkv * nch,
      [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; t++) chunk_task(a, R, chunk, parts, t / (Hkv * nch), t / nch % Hkv, t % nch);
      },
      small ? 1 : 0);
  // Merge each (b, h)'s chunks in order: o = Σ o_c·e^(m_c − M) / Σ l_c·e^(m_c − M), M the largest m_c.
  parallel_for(
      a.B * a.H,
      [&](int64_t r0, int64_t r1) {
        for (int64_t bh = r0; bh < r1; bh++) {
          float* o = a.o + (bh / a.H) * a.ldo + (bh % a.H) * D;
          float M = kNegInf;
          for (int64_t c = 0; c < nch; c++)
            if (parts.at(bh, c)[1] > 0.f) M = std::max(M, parts.at(bh, c)[0]);
          std::fill(o, o + D, 0.f);
          if (M == kNegInf) continue;  // no key at all: o = 0
          float l = 0.f;
          for (int64_t c = 0; c < nch; c++) {
            const float* p = parts.at(bh, c);
            if (!(p[1] > 0.f)) continue;
            const float e = std::exp(p[0] - M);
            l += p[1] * e;
            for (int64_t d = 0; d < D; d++) o[d] += p[2 + d] * e;
          }
          const float inv = 1.f / l;
          for (int64_t d = 0; d < D; d++) o[d] *= inv;
        }
      },
      small ? 1 : 0);
}

}  // namespace TK_ISA
}  // namespace tk
