// Element-wise kernels: GELU (erf and tanh forms) and its backward, bias add and its column-sum
// backward, add, scale, dropout. Vector body plus a partial-vector tail through the same math;
// threaded in contiguous chunks when large.
#include <algorithm>
#include <cstring>

#include "tunekit/ops.h"
#include "gelu.h"
#include "philox.h"
#include "simd.h"
#include "threadpool.h"
#include "vtail.h"

namespace tk {
namespace TK_ISA {
namespace {

// y[i] = f(x[i]) (and the two-input form), threaded over [0, n).
template <class F>
void map1(int64_t n, const float* x, float* y, F f) {
  run_range(n, n, [&](int64_t b, int64_t e) {
    int64_t i = b;
    for (; i + V::W <= e; i += V::W) f(V::load(x + i)).store(y + i);
    if (i < e) store_part(f(load_part(x + i, e - i, 0.f)), y + i, e - i);
  });
}
template <class F>
void map2(int64_t n, const float* a, const float* b, float* y, F f) {
  run_range(n, n, [&](int64_t s, int64_t e) {
    int64_t i = s;
    for (; i + V::W <= e; i += V::W) f(V::load(a + i), V::load(b + i)).store(y + i);
    if (i < e) store_part(f(load_part(a + i, e - i, 0.f), load_part(b + i, e - i, 0.f)), y + i, e - i);
  });
}

// Φ(x) + x·φ(x)
inline V gelu_erf_grad(V x) {
  V cdf = fma(V::set1(0.5f), verf(x * V::set1(kSqrtHalf)), V::set1(0.5f));
  V pdf = vexp(x * x * V::set1(-0.5f)) * V::set1(kInvSqrt2Pi);
  return fma(x, pdf, cdf);
}
// 0.5·(1 + t) + 0.5·x·sech²(u)·√(2/π)·(1 + 3κx²), t = tanh(u). sech² is 4e/(1+e)² with
// e = exp(-2|u|), not 1 - t²: near saturation 1 - t² is only the rounding error of t, and the
// x·(1 + 3κx²) factor multiplies it by ~x³ (1e-3 off at x = 30).
inline V gelu_tanh_grad(V x) {
  V x2 = x * x;
  V u = x * fma(V::set1(kSqrt2OverPi * kKappa), x2, V::set1(kSqrt2OverPi));
  V e = vexp(V::set1(-2.f) * vabs(u));
  V s = V::set1(1.f) / (V::set1(1.f) + e);
  V ta = (V::set1(1.f) - e) * s;  // |t|, good to an ulp of 1, enough for 1 + t
  V t = select_lt(u, V::zero(), V::zero() - ta, ta);
  V sech2 = V::set1(4.f) * e * s * s;
  V du = fma(V::set1(3.f * kSqrt2OverPi * kKappa), x2, V::set1(kSqrt2OverPi));
  V left = fma(V::set1(0.5f), t, V::set1(0.5f));
  return fma(x * V::set1(0.5f) * sech2, du, left);
}

}  // namespace

void gelu_forward(const GeluArgs& a) {
  if (a.approx == GELU_TANH) map1(a.n, a.x, a.y, gelu_tanh);
  else map1(a.n, a.x, a.y, gelu_erf);
}

void gelu_backward(const GeluBackwardArgs& a) {
  if (a.approx == GELU_TANH) map2(a.n, a.x, a.dy, a.dx, [](V xv, V g) { return g * gelu_tanh_grad(xv); });
  else map2(a.n, a.x, a.dy, a.dx, [](V xv, V g) { return g * gelu_erf_grad(xv); });
}

void bias_add(const BiasAddArgs& a) {
  const int64_t rows = a.rows, C = a.C;
  const float *x = a.x, *bias = a.bias;
  float* y = a.y;
  run_range(rows, rows * C, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x + r * C;
      float* yr = y + r * C;
      int64_t c = 0;
      for (; c + V::W <= C; c += V::W) (V::load(xr + c) + V::load(bias + c)).store(yr + c);
      for (; c < C; c++) yr[c] = xr[c] + bias[c];
    }
  });
}

// Threads own disjoint column ranges (whole cache lines) and walk every row in order, so each
// column is summed exactly as a serial loop would: deterministic for any thread count.
void bias_backward(const BiasBackwardArgs& a) {
  const int64_t rows = a.rows, C = a.C;
  const float* dy = a.dy;
  float* dbias = a.dbias;
  if (rows <= 0 || C <= 0) return;
  constexpr int64_t kUnit = 16;
  const int64_t units = (C + kUnit - 1) / kUnit;
  run_range(units, rows * C, [&](int64_t u0, int64_t u1) {
    const int64_t c0 = u0 * kUnit, c1 = std::min(C, u1 * kUnit), w = c1 - c0;
    float* acc = scratch(2, w);
    std::memset(acc, 0, sizeof(float) * w);
    for (int64_t r = 0; r < rows; r++) {
      const float* d = dy + r * C + c0;
      int64_t c = 0;
      for (; c + V::W <= w; c += V::W) (V::load(acc + c) + V::load(d + c)).store(acc + c);
      for (; c < w; c++) acc[c] += d[c];
    }
    for (int64_t c = 0; c < w; c++) dbias[c0 + c] += acc[c];
  });
}

void add(const AddArgs& a) {
  map2(a.n, a.a, a.b, a.y, [](V u, V v) { return u + v; });
}

void scale(const ScaleArgs& a) {
  const V sv = V::set1(a.sp ? a.s * a.sp[0] : a.s);
  map1(a.n, a.x, a.x, [sv](V v) { return v * sv; });
}

namespace {

constexpr int kBatch = 64;  // Philox blocks per draw (philox::blocks runs 16 per SIMD pass)

// u[k] = philox::uniform(seed, offset, first + k) for k in [0, n).
void uniforms(uint64_t seed, uint64_t offset, uint64_t first, int64_t n, float* u) {
  alignas(64) uint32_t words[kBatch * 4];
  uint64_t i = offset + first;
  for (int64_t k = 0; k < n;) {
    const int lane = static_cast<int>(i & 3);
    const int64_t want = std::min<int64_t>(n - k, kBatch * 4 - lane);
    philox::blocks(i >> 2, seed, static_cast<int>((lane + want + 3) / 4), words);
    for (int64_t t = 0; t < want; t++) u[k + t] = philox::to_uniform(words[lane + t]);
    k += want;
    i += want;
  }
}

}  // namespace

// Element e keeps x[e] when philox::uniform(seed, offset, e) >= p. Uniforms are drawn 1024 at a time
// into a stack buffer; any chunk split gives the same mask.
void dropout(const DropoutArgs& a) {
  const int64_t n = a.n;
  const float* x = a.x;
  float* y = a.y;
  const float p = a.p;
  const uint64_t seed = a.seed, offset = a.offset;
  if (n <= 0) return;
  if (p <= 0.f) {
    if (y != x) std::memcpy(y, x, sizeof(float) * n);
    return;
  }
  const V pv = V::set1(p), sv = V::set1(1.f / (1.f - p)), zero = V::zero();
  // Philox costs more than the multiply: thread at a lower size than pure copies.
  run_range(n, n * 4, [&](int64_t b, int64_t e) {
    constexpr int64_t kBlock = 1024;
    alignas(64) float u[kBlock];
    for (int64_t i0 = b; i0 < e; i0 += kBlock) {
      const int64_t len = std::min(kBlock, e - i0);
      uniforms(seed, offset, static_cast<uint64_t>(i0), len, u);
      int64_t i = 0;
      for (; i + V::W <= len; i += V::W)
        (V::load(x + i0 + i) * select_lt(V::load(u + i), pv, zero, sv)).store(y + i0 + i);
      const int64_t t = len - i;
      if (t > 0) store_part(load_part(x + i0 + i, t, 0.f) * select_lt(load_part(u + i, t, 1.f), pv, zero, sv), y + i0 + i, t);
    }
  });
}

}  // namespace TK_ISA
}  // namespace tk
