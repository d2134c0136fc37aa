// LayerNorm over the last dim: one row at a time, vectorised over C, threaded over rows.
// The forward keeps mean and rstd per row; the backward recomputes xhat from them. With a residual
// the row x + residual is summed into a per-thread row buffer (in L1) and normalised from there.
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

float row_mean(const float* x, int64_t C) {
  V s0 = V::zero(), s1 = V::zero();
  int64_t c = 0;
  for (; c + 2 * V::W <= C; c += 2 * V::W) {
    s0 = s0 + V::load(x + c);
    s1 = s1 + V::load(x + c + V::W);
  }
  for (; c + V::W <= C; c += V::W) s0 = s0 + V::load(x + c);
  float s = reduce_add(s0 + s1);
  for (; c < C; c++) s += x[c];
  return s / static_cast<float>(C);
}

// Two-pass variance (the row is in L1 by now): no cancellation for rows with a large mean.
float row_var(const float* x, int64_t C, float mean) {
  const V m = V::set1(mean);
  V s0 = V::zero(), s1 = V::zero();
  int64_t c = 0;
  for (; c + 2 * V::W <= C; c += 2 * V::W) {
    V d0 = V::load(x + c) - m, d1 = V::load(x + c + V::W) - m;
    s0 = fma(d0, d0, s0);
    s1 = fma(d1, d1, s1);
  }
  for (; c + V::W <= C; c += V::W) {
    V d = V::load(x + c) - m;
    s0 = fma(d, d, s0);
  }
  float s = reduce_add(s0 + s1);
  for (; c < C; c++) s += (x[c] - mean) * (x[c] - mean);
  return s / static_cast<float>(C);
}

// Row r of the LayerNorm's input: x itself, or x + residual summed into buf (C floats).
inline const float* input_row(const float* x, const float* residual, int64_t C, int64_t r, float* buf) {
  x += r * C;
  if (!residual) return x;
  const float* res = residual + r * C;
  int64_t c = 0;
  for (; c + V::W <= C; c += V::W) (V::load(x + c) + V::load(res + c)).store(buf + c);
  for (; c < C; c++) buf[c] = x[c] + res[c];
  return buf;
}

template <bool kGamma, bool kBeta>
void forward_rows(const LayerNormArgs& a, int64_t r0, int64_t r1) {
  const int64_t C = a.C;
  float* buf = a.residual ? scratch(6, C) : nullptr;
  for (int64_t r = r0; r < r1; r++) {
    const float* x = input_row(a.x, a.residual, C, r, buf);
    float* y = a.y + r * C;
    const float mean = row_mean(x, C);
    const float rstd = 1.f / std::sqrt(row_var(x, C, mean) + a.eps);
    a.mean[r] = mean;
    a.rstd[r] = rstd;
    const V m = V::set1(mean), rs = V::set1(rstd);
    auto norm = [&](V xv, int64_t c, int64_t n) {
      V v = (xv - m) * rs;
      if (kGamma) v = v * (n == V::W ? V::load(a.gamma + c) : load_part(a.gamma + c, n, 0.f));
      if (kBeta) v = v + (n == V::W ? V::load(a.beta + c) : load_part(a.beta + c, n, 0.f));
      return v;
    };
    int64_t c = 0;
    for (; c + V::W <= C; c += V::W) norm(V::load(x + c), c, V::W).store(y + c);
    if (c < C) store_part(norm(load_part(x + c, C - c, 0.f), c, C - c), y + c, C - c);
  }
}

// One row of the backward. xhat = (x - mean)·rstd, g = dy·gamma:
//   dx = rstd · (g - mean(g) - xhat · mean(g·xhat)),  dgamma += dy·xhat,  dbeta += dy.
// pg / pb: this chunk's partial dgamma / dbeta (null when neither is wanted).
template <bool kGamma>
void backward_row(const LayerNormBackwardArgs& a, int64_t r, float* pg, float* pb, float* buf) {
  const int64_t C = a.C;
  const float* x = input_row(a.x, a.residual, C, r, buf);
  const float* dy = a.dy + r * C;
  const V m = V::set1(a.mean[r]), rs = V::set1(a.rstd[r]);
  V s1 = V::zero(), s2 = V::zero();
  auto step = [&](V xv, V dyv, V gv, int64_t c, int64_t n) {
    V xh = (xv - m) * rs;
    V g = kGamma ? dyv * gv : dyv;
    s1 = s1 + g;
    s2 = fma(g, xh, s2);
    if (pg) {  // lanes past n carry dy = 0, so they add nothing
      if (n == V::W) {
        fma(dyv, xh, V::load(pg + c)).store(pg + c);
        (V::load(pb + c) + dyv).store(pb + c);
      } else {
        store_part(fma(dyv, xh, load_part(pg + c, n, 0.f)), pg + c, n);
        store_part(load_part(pb + c, n, 0.f) + dyv, pb + c, n);
      }
    }
  };
  int64_t c = 0;
  for (; c + V::W <= C; c += V::W)
    step(V::load(x + c), V::load(dy + c), kGamma ? V::load(a.gamma + c) : V::zero(), c, V::W);
  const int64_t n = C - c;
  if (n > 0)
    step(load_part(x + c, n, 0.f), load_part(dy + c, n, 0.f), kGamma ? load_part(a.gamma + c, n, 0.f) : V::zero(), c,
         n);
  if (!a.dx) return;
  const float invC = 1.f / static_cast<float>(C);
  const V mg = V::set1(reduce_add(s1) * invC), mgx = V::set1(reduce_add(s2) * invC);
  float* dx = a.dx + r * C;
  auto grad = [&](V xv, V dyv, V gv) {
    V xh = (xv - m) * rs;
    V g = kGamma ? dyv * gv : dyv;
    return rs * (g - mg - xh * mgx);
  };
  for (c = 0; c + V::W <= C; c += V::W)
    grad(V::load(x + c), V::load(dy + c), kGamma ? V::load(a.gamma + c) : V::zero()).store(dx + c);
  if (n > 0)
    store_part(grad(load_part(x + c, n, 0.f), load_part(dy + c, n, 0.f), kGamma ? load_part(a.gamma + c, n, 0.f) : V::zero()),
               dx + c, n);
}

}  // namespace

void layernorm_forward(const LayerNormArgs& a) {
  if (a.rows <= 0 || a.C <= 0) return;
  auto body = [&](int64_t r0, int64_t r1) {
    if (a.gamma && a.beta) forward_rows<true, true>(a, r0, r1);
    else if (a.gamma) forward_rows<true, false>(a, r0, r1);
    else if (a.beta) forward_rows<false, true>(a, r0, r1);
    else forward_rows<false, false>(a, r0, r1);
  };
  run_range(a.rows, a.rows * a.C, body);
}

// Rows are split into K fixed chunks (K depends only on the shape and the thread count); each chunk
// sums its own dgamma/dbeta partial, and the partials are added in chunk order: deterministic.
void layernorm_backward(const LayerNormBackwardArgs& a) {
  if (a.rows <= 0 || a.C <= 0) return;
  const int64_t C = a.C;
  const bool params = a.dgamma || a.dbeta;
  const int64_t K = a.rows * C < kParallelMin ? 1 : std::min<int64_t>(num_threads(), a.rows);
  float* partial = params ? scratch(2, K * 2 * C) : nullptr;  // [K][dgamma C | dbeta C]
  auto chunk = [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; k++) {
      float* pg = params ? partial + k * 2 * C : nullptr;
      float* pb = params ? pg + C : nullptr;
      if (params) std::memset(pg, 0, sizeof(float) * 2 * C);
      const int64_t r0 = a.rows * k / K, r1 = a.rows * (k + 1) / K;
      float* buf = a.residual ? scratch(6, C) : nullptr;
      for (int64_t r = r0; r < r1; r++) {
        if (a.gamma) backward_row<true>(a, r, pg, pb, buf);
        else backward_row<false>(a, r, pg, pb, buf);
      }
    }
  };
  if (K == 1) chunk(0, 1);
  else parallel_for(K, [&](int64_t k0, int64_t k1) { chunk(k0, k1); });
  if (!params) return;
  for (int which = 0; which < 2; which++) {
    float* out = which == 0 ? a.dgamma : a.dbeta;
    if (!out) continue;
    const float* p = partial + which * C;
    int64_t c = 0;
    for (; c + V::W <= C; c += V::W) {
      V s = V::load(p + c);
      for (int64_t k = 1; k < K; k++) s = s + V::load(p + k * 2 * C + c);
      (V::load(out + c) + s).store(out + c);
    }
    for (; c < C; c++) {
      float s = p[c];
      for (int64_t k = 1; k < K; k++) s += p[k * 2 * C + c];
      out[c] += s;
    }
  }
}

}  // namespace TK_ISA
}  // namespace tk
