// Decoder layer kernels (Llama / Mistral / Qwen2 / Qwen3): RMSNorm, rotary position embedding and the
// SwiGLU gate. All three are bandwidth-bound, so each is one pass over its rows (the row is in L1 for
// RMSNorm's second read), vectorised over the last dim with the tail through the same vector math.
// GCC 12 flags the _mm512_undefined_* inside AVX-512 intrinsics as uninitialised.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <algorithm>
#include <cmath>
#include <cstring>

#include "tunekit/ops.h"
#include "simd.h"
#include "threadpool.h"
#include "vtail.h"

namespace tk {
namespace TK_ISA {
namespace {

// The first n (<= V::W) floats of p as a vector (zero past n).
inline V load_n(const float* p, int64_t n) { return n == V::W ? V::load(p) : load_part(p, n, 0.f); }
inline void store_n(V v, float* p, int64_t n) {
  if (n == V::W) v.store(p);
  else store_part(v, p, n);
}

// ---- RMSNorm ----------------------------------------------------------------------------------------

// Address of row r in the grouped layout: group r / G at ld, row r % G within it.
inline int64_t row_at(int64_t r, int64_t G, int64_t C, int64_t ld) { return (r / G) * ld + (r % G) * C; }

float sum_squares(const float* x, int64_t C) {
  V s0 = V::zero(), s1 = V::zero();
  int64_t c = 0;
  for (; c + 2 * V::W <= C; c += 2 * V::W) {
    const V a = V::load(x + c), b = V::load(x + c + V::W);
    s0 = fma(a, a, s0);
    s1 = fma(b, b, s1);
  }
  for (; c < C; c += V::W) {
    const V a = load_n(x + c, std::min<int64_t>(V::W, C - c));
    s0 = fma(a, a, s0);
  }
  return reduce_add(s0 + s1);
}

template <bool kWeight>
void rmsnorm_rows(const RmsNormArgs& a, int64_t r0, int64_t r1) {
  const int64_t C = a.C;
  for (int64_t r = r0; r < r1; r++) {
    const float* x = a.x + row_at(r, a.G, C, a.ldx);
    float* y = a.y + row_at(r, a.G, C, a.ldy);
    const float rstd = 1.f / std::sqrt(sum_squares(x, C) / static_cast<float>(C) + a.eps);
    a.rstd[r] = rstd;
    const V rs = V::set1(rstd);
    for (int64_t c = 0; c < C; c += V::W) {
      const int64_t n = std::min<int64_t>(V::W, C - c);
      V v = load_n(x + c, n) * rs;
      if (kWeight) v = v * load_n(a.weight + c, n);
      store_n(v, y + c, n);
    }
  }
}

// One row of the backward: dx = rstd·(g − x̂·mean(g·x̂)), g = dy·w; pw (this chunk's dweight partial,
// or null) += dy·x̂.
template <bool kWeight>
void rmsnorm_backward_row(const RmsNormBackwardArgs& a, int64_t r, float* pw) {
  const int64_t C = a.C;
  const float* x = a.x + row_at(r, a.G, C, a.ldx);
  const float* dy = a.dy + row_at(r, a.G, C, a.lddy);
  const V rs = V::set1(a.rstd[r]);
  V s = V::zero();
  for (int64_t c = 0; c < C; c += V::W) {
    const int64_t n = std::min<int64_t>(V::W, C - c);
    const V xh = load_n(x + c, n) * rs, dyv = load_n(dy + c, n);
    s = fma(kWeight ? dyv * load_n(a.weight + c, n) : dyv, xh, s);
    if (pw) store_n(fma(dyv, xh, load_n(pw + c, n)), pw + c, n);
  }
  if (!a.dx) return;
  float* dx = a.dx + row_at(r, a.G, C, a.lddx);
  const V m = V::set1(reduce_add(s) / static_cast<float>(C));
  for (int64_t c = 0; c < C; c += V::W) {
    const int64_t n = std::min<int64_t>(V::W, C - c);
    const V xh = load_n(x + c, n) * rs, dyv = load_n(dy + c, n);
    const V g = kWeight ? dyv * load_n(a.weight + c, n) : dyv;
    store_n(rs * (g - xh * m), dx + c, n);
  }
}

// ---- RoPE ---------------------------------------------------------------------------------------------

// Rotates one head (D floats at x) by the angles of table row p; kInverse rotates by −θ.
template <bool kInverse>
inline void rotate(float* x, int64_t half, const float* cs, const float* sn) {
  for (int64_t d = 0; d < half; d += V::W) {
    const int64_t n = std::min<int64_t>(V::W, half - d);
    const V x1 = load_n(x + d, n), x2 = load_n(x + half + d, n), c = load_n(cs + d, n), s = load_n(sn + d, n);
    if (kInverse) {
      store_n(fma(x1, c, x2 * s), x + d, n);
      store_n(x2 * c - x1 * s, x + half + d, n);
    } else {
      store_n(x1 * c - x2 * s, x + d, n);
      store_n(fma(x2, c, x1 * s), x + half + d, n);
    }
  }
}

template <bool kInverse>
void rope(const RopeArgs& a) {
  const int64_t N = a.B * a.T, half = a.D / 2;
  if (N <= 0 || a.H <= 0 || half <= 0) return;
  run_range(N, N * a.H * a.D, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t p = a.pos[t];
      const float* cs = a.cos + p * half;
      const float* sn = a.sin + p * half;
      for (int64_t h = 0; h < a.H; h++) rotate<kInverse>(a.x + t * a.ld + h * a.D, half, cs, sn);
    }
  });
}

// ---- SwiGLU -------------------------------------------------------------------------------------------

inline V sigmoid(V x) { return V::set1(1.f) / (V::set1(1.f) + vexp(V::zero() - x)); }

}  // namespace

void rmsnorm_forward(const RmsNormArgs& a) {
  if (a.rows <= 0 || a.C <= 0) return;
  run_range(a.rows, a.rows * a.C, [&](int64_t r0, int64_t r1) {
    if (a.weight) rmsnorm_rows<true>(a, r0, r1);
    else rmsnorm_rows<false>(a, r0, r1);
  });
}

// The rows are cut into K chunks, K from the shape alone; each chunk sums its dweight partial in row
// order and the partials are added in chunk order: the same bits for any thread count.
void rmsnorm_backward(const RmsNormBackwardArgs& a) {
  if (a.rows <= 0 || a.C <= 0) return;
  const int64_t C = a.C;
  const int64_t K = std::max<int64_t>(1, std::min<int64_t>({64, a.rows, a.rows * C / kParallelMin}));
  float* partial = a.dweight ? scratch(2, K * C) : nullptr;
  auto chunk = [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; k++) {
      float* pw = partial ? partial + k * C : nullptr;
      if (pw) std::memset(pw, 0, sizeof(float) * C);
      for (int64_t r = a.rows * k / K; r < a.rows * (k + 1) / K; r++) {
        if (a.weight) rmsnorm_backward_row<true>(a, r, pw);
        else rmsnorm_backward_row<false>(a, r, pw);
      }
    }
  };
  if (K == 1) chunk(0, 1);
  else parallel_for(K, [&](int64_t k0, int64_t k1) { chunk(k0, k1); });
  if (!partial) return;
  for (int64_t c = 0; c < C; c += V::W) {
    const int64_t n = std::min<int64_t>(V::W, C - c);
    V s = load_n(partial + c, n);
    for (int64_t k = 1; k < K; k++) s = s + load_n(partial + k * C + c, n);
    store_n(load_n(a.dweight + c, n) + s, a.dweight + c, n);
  }
}

void rope_forward(const RopeArgs& a) { rope<false>(a); }
void rope_backward(const RopeArgs& a) { rope<true>(a); }

void swiglu_forward(const SwigluArgs& a) {
  if (a.rows <= 0 || a.C <= 0) return;
  run_range(a.rows, a.rows * a.C, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* g = a.gate + r * a.ldg;
      const float* u = a.up + r * a.ldu;
      float* y = a.y + r * a.ldy;
      for (int64_t c = 0; c < a.C; c += V::W) {
        const int64_t n = std::min<int64_t>(V::W, a.C - c);
        const V gv = load_n(g + c, n);
        store_n(gv * sigmoid(gv) * load_n(u + c, n), y + c, n);
      }
    }
  });
}

void swiglu_backward(const SwigluBackwardArgs& a) {
  if (a.rows <= 0 || a.C <= 0 || (!a.dgate && !a.dup)) return;
  run_range(a.rows, a.rows * a.C, [&](int64_t r0, int64_t r1) {
    const V one = V::set1(1.f);
    for (int64_t r = r0; r < r1; r++) {
      const float* g = a.gate + r * a.ldg;
      const float* u = a.up + r * a.ldu;
      const float* dy = a.dy + r * a.lddy;
      for (int64_t c = 0; c < a.C; c += V::W) {
        const int64_t n = std::min<int64_t>(V::W, a.C - c);
        const V gv = load_n(g + c, n), dyv = load_n(dy + c, n), s = sigmoid(gv);
        if (a.dgate) store_n(dyv * load_n(u + c, n) * (s * fma(gv, one - s, one)), a.dgate + r * a.lddg + c, n);
        if (a.dup) store_n(dyv * (gv * s), a.dup + r * a.lddu + c, n);
      }
    }
  });
}

}  // namespace TK_ISA
}  // namespace tk
