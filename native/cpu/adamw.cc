// AdamW (torch.optim.AdamW semantics) and the sum of squares behind global-norm clipping.
// Both are memory bound: one pass, vectorised, threaded once a tensor is big enough to pay for it.
#include <algorithm>
#include <cmath>

#include "tunekit/ops.h"
#include "simd.h"
#include "threadpool.h"

namespace tk {
namespace TK_ISA {
namespace {

constexpr int64_t kThreadMin = int64_t(1) << 15;  // below this a pool dispatch costs more than it saves
constexpr int64_t kChunk = int64_t(1) << 16;      // sum_squares partials: fixed chunks, reduced in order

struct AdamWConsts {
  V b1, nb1, b2, nb2, decay, neg_step, inv_sqrt_bc2, eps, gscale;
};

// One vector of parameters. Every element goes through this same code (the tail too, padded), so an
// element's result does not depend on where a call's range starts or how threads split it.
inline void adamw_vec(const AdamWConsts& c, float* p, const float* g, float* m, float* v) {
  V gv = V::load(g) * c.gscale;
  V mv = fma(c.b1, V::load(m), c.nb1 * gv);
  V vv = fma(c.b2, V::load(v), c.nb2 * gv * gv);
  V denom = fma(vsqrt(vv), c.inv_sqrt_bc2, c.eps);
  V pv = fma(c.neg_step, mv / denom, V::load(p) * c.decay);
  mv.store(m);
  vv.store(v);
  pv.store(p);
}

void adamw_range(const AdamWConsts& c, const AdamWArgs& a, int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + V::W <= end; i += V::W) adamw_vec(c, a.param + i, a.grad + i, a.m + i, a.v + i);
  if (i < end) {
    float p[V::W] = {}, g[V::W] = {}, m[V::W] = {}, v[V::W] = {};
    const int64_t k = end - i;
    std::copy(a.param + i, a.param + end, p);
    std::copy(a.grad + i, a.grad + end, g);
    std::copy(a.m + i, a.m + end, m);
    std::copy(a.v + i, a.v + end, v);
    adamw_vec(c, p, g, m, v);
    std::copy(p, p + k, a.param + i);
    std::copy(m, m + k, a.m + i);
    std::copy(v, v + k, a.v + i);
  }
}

// Sum of squares of one chunk: short float partial sums (16 terms per lane) added up in double.
double sum_squares_serial(int64_t n, const float* x) {
  constexpr int64_t kBlock = 64 * V::W;
  double total = 0.0;
  int64_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    V s0 = V::zero(), s1 = V::zero(), s2 = V::zero(), s3 = V::zero();
    for (int64_t j = i; j < i + kBlock; j += 4 * V::W) {
      V x0 = V::load(x + j), x1 = V::load(x + j + V::W), x2 = V::load(x + j + 2 * V::W), x3 = V::load(x + j + 3 * V::W);
      s0 = fma(x0, x0, s0);
      s1 = fma(x1, x1, s1);
      s2 = fma(x2, x2, s2);
      s3 = fma(x3, x3, s3);
    }
    total += static_cast<double>(reduce_add((s0 + s1) + (s2 + s3)));
  }
  for (; i < n; i++) total += static_cast<double>(x[i]) * x[i];
  return total;
}

}  // namespace

void adamw(const AdamWArgs& a) {
  if (a.n <= 0) return;
  const double t = static_cast<double>(a.step);
  const double bc1 = 1.0 - std::pow(static_cast<double>(a.beta1), t);
  const double bc2 = 1.0 - std::pow(static_cast<double>(a.beta2), t);
  AdamWConsts c;
  c.b1 = V::set1(a.beta1);
  c.nb1 = V::set1(1.f - a.beta1);
  c.b2 = V::set1(a.beta2);
  c.nb2 = V::set1(1.f - a.beta2);
  c.decay = V::set1(static_cast<float>(1.0 - static_cast<double>(a.lr) * a.weight_decay));
  c.neg_step = V::set1(static_cast<float>(-static_cast<double>(a.lr) / bc1));
  c.inv_sqrt_bc2 = V::set1(static_cast<float>(1.0 / std::sqrt(bc2)));
  c.eps = V::set1(a.eps);
  c.gscale = V::set1(a.grad_scale);
  if (a.n < kThreadMin) return adamw_range(c, a, 0, a.n);
  parallel_for(a.n, [&](int64_t b, int64_t e) { adamw_range(c, a, b, e); });
}

// Deterministic whatever the thread count: the chunks are fixed, their partials summed in order.
void sum_squares(SumSquaresArgs& a) {
  const int64_t n = a.n;
  const float* x = a.x;
  a.result = 0.0;
  if (n <= kChunk) {
    if (n > 0) a.result = sum_squares_serial(n, x);
    return;
  }
  constexpr int64_t kRound = 512;  // chunks per pool dispatch (partials live on the stack)
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  double total = 0.0;
  for (int64_t c0 = 0; c0 < chunks; c0 += kRound) {
    const int64_t cn = std::min(kRound, chunks - c0);
    double part[kRound];
    parallel_for(cn, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; c++) {
        const int64_t i0 = (c0 + c) * kChunk;
        part[c] = sum_squares_serial(std::min(kChunk, n - i0), x + i0);
      }
    });
    for (int64_t c = 0; c < cn; c++) total += part[c];
  }
  a.result = total;
}

}  // namespace TK_ISA
}  // namespace tk
