// Decoding attention (flash-decoding on the CPU): one query token per (batch, head) against a KV cache.
// The work is cut into tasks (batch row, kv head, key chunk); a task reads its keys and values once
// for all H / Hkv query heads of the kv head (grouped-query attention) and leaves, per query head, a
// partial softmax: the chunk's max score, the sum of exp(score − max) and the weighted values. The
// partials are merged in chunk order afterwards, so the result does not depend on the thread count
// and batch 1 still spreads over every core.
// GCC 12 flags the _mm512_undefined_* inside AVX-512 intrinsics as uninitialised.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "tunekit/ops.h"
#include "simd.h"
#include "threadpool.h"
#include "vtail.h"

namespace tk {
namespace TK_ISA {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

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

// One task: keys [j0, j1) of kv head g of batch row b, for its R query heads.
void chunk_task(const AttentionDecodeArgs& a, int64_t R, int64_t chunk, const Partials& out, int64_t b, int64_t g,
                int64_t c) {
  const int64_t D = a.D, Dp = round_up(D, V::W), Cp = round_up(chunk, V::W);
  int64_t lo, hi;
  key_span(a, b, &lo, &hi);
  const int64_t j0 = std::max(c * chunk, lo), j1 = std::min((c + 1) * chunk, hi), n = std::max<int64_t>(0, j1 - j0);
  float* Q = scratch(2, R * Dp + R * Cp + R * Dp);  // scaled queries, scores, weighted values
  float* S = Q + R * Dp;
  float* O = S + R * Cp;
  for (int64_t r = 0; r < R; r++) {
    const float* q = a.q + b * a.ldq + (g * R + r) * D;
    for (int64_t d = 0; d < Dp; d++) Q[r * Dp + d] = d < D ? q[d] * a.scale : 0.f;
  }
  // Scores: one key row against each query head of the group.
  const int64_t tail = D % V::W, full = D - tail;
  for (int64_t jj = 0; jj < n; jj++) {
    const int64_t j = j0 + jj;
    if (a.key_mask && !a.key_mask[b * a.Tk + j]) {
      for (int64_t r = 0; r < R; r++) S[r * Cp + jj] = kNegInf;
      continue;
    }
    const float* k = a.k + (b * a.Tmax + j) * a.ldk + g * D;
    for (int64_t r = 0; r < R; r++) {
      const float* q = Q + r * Dp;
      V s0 = V::zero(), s1 = V::zero();
      int64_t d = 0;
      for (; d + 2 * V::W <= full; d += 2 * V::W) {
        s0 = fma(V::load(q + d), V::load(k + d), s0);
        s1 = fma(V::load(q + d + V::W), V::load(k + d + V::W), s1);
      }
      for (; d < full; d += V::W) s0 = fma(V::load(q + d), V::load(k + d), s0);
      if (tail) s1 = fma(V::load(q + d), load_part(k + d, tail, 0.f), s1);
      S[r * Cp + jj] = reduce_add(s0 + s1);
    }
  }
  std::fill(O, O + R * Dp, 0.f);
  for (int64_t r = 0; r < R; r++) {
    float* s = S + r * Cp;
    float* part = out.at((b * a.H) + g * R + r, c);
    float m = kNegInf;
    for (int64_t jj = 0; jj < n; jj++) m = std::max(m, s[jj]);
    if (m == kNegInf) {  // no visible key in this chunk: weights 0
      std::fill(s, s + n, 0.f);
      part[0] = kNegInf;
      part[1] = 0.f;
      continue;
    }
    for (int64_t jj = n; jj < round_up(n, V::W); jj++) s[jj] = kNegInf;
    const V mv = V::set1(m);
    V l = V::zero();
    for (int64_t jj = 0; jj < n; jj += V::W) {
      const V p = vexp(V::load(s + jj) - mv);  // masked keys: exactly 0
      p.store(s + jj);
      l = l + p;
    }
    part[0] = m;
    part[1] = reduce_add(l);
  }
  // Weighted values: each value row once, for every query head of the group.
  for (int64_t jj = 0; jj < n; jj++) {
    const float* v = a.v + (b * a.Tmax + j0 + jj) * a.ldv + g * D;
    for (int64_t d = 0; d < Dp; d += V::W) {
      const V vv = d < full ? V::load(v + d) : load_part(v + d, tail, 0.f);
      for (int64_t r = 0; r < R; r++) {
        float* o = O + r * Dp + d;
        fma(V::set1(S[r * Cp + jj]), vv, V::load(o)).store(o);
      }
    }
  }
  for (int64_t r = 0; r < R; r++) {
    float* part = out.at((b * a.H) + g * R + r, c);
    std::copy(O + r * Dp, O + r * Dp + D, part + 2);
  }
}

}  // namespace

void attention_decode(const AttentionDecodeArgs& a) {
  if (a.B <= 0 || a.H <= 0) return;
  const int64_t D = a.D, Hkv = a.Hkv > 0 ? a.Hkv : a.H, R = a.H / Hkv;
  const int64_t chunk = decode_chunk(a.Tk), nch = std::max<int64_t>(1, (a.Tk + chunk - 1) / chunk);
  std::vector<float> buf(a.B * a.H * nch * (D + 2));
  const Partials parts{nch, D, buf.data()};
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
