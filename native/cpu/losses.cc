// Scalar losses over n elements and their backward: MSE, BCE with logits, and the weighted sum x·w.
// The sums are taken in double over fixed chunks whose partials are added in chunk order, so the result
// is the same for any thread count. The value is written to a one-float buffer (loss, y); a backward
// reads the upstream gradient from one as well (dy).
#include <algorithm>
#include <cmath>

#include "tunekit/ops.h"
#include "simd.h"
#include "threadpool.h"
#include "vtail.h"

namespace tk {
namespace TK_ISA {
namespace {

constexpr int64_t kChunk = int64_t(1) << 14;  // elements per partial sum

// Σ term(i) over [0, n) in double: serial within a chunk, chunks on the pool, partials in order.
template <class F>
double chunked_sum(int64_t n, F term) {
  auto chunk = [&](int64_t i0, int64_t i1) {
    double s = 0.0;
    for (int64_t i = i0; i < i1; i++) s += term(i);
    return s;
  };
  if (n <= kChunk) return chunk(0, n);
  constexpr int64_t kRound = 512;  // chunks per pool dispatch (partials live on the stack)
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  double total = 0.0;
  for (int64_t c0 = 0; c0 < chunks; c0 += kRound) {
    const int64_t cn = std::min(kRound, chunks - c0);
    double part[kRound];
    parallel_for(cn, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; c++) {
        const int64_t i0 = (c0 + c) * kChunk;
        part[c] = chunk(i0, std::min(n, i0 + kChunk));
      }
    });
    for (int64_t c = 0; c < cn; c++) total += part[c];
  }
  return total;
}

double divisor_of(float divisor, int64_t n) { return divisor > 0.f ? static_cast<double>(divisor) : static_cast<double>(n); }

// loss[0] = total / divisor (0 when there is nothing to divide by: n = 0 with the mean).
void write_loss(float* loss, double total, double divisor) { loss[0] = static_cast<float>(divisor > 0 ? total / divisor : 0.0); }

// dx[i] = f(x[i], target[i]) · k, threaded over [0, n).
template <class F>
void scaled_grad(int64_t n, const float* x, const float* t, float* dx, float k, F f) {
  run_range(n, n * 4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) dx[i] = f(x[i], t[i]) * k;
  });
}

}  // namespace

void mse_forward(const LossArgs& a) {
  const float *x = a.x, *t = a.target;
  const double total = chunked_sum(a.n, [=](int64_t i) {
    const double d = static_cast<double>(x[i]) - t[i];
    return d * d;
  });
  write_loss(a.loss, total, divisor_of(a.divisor, a.n));
}

void mse_backward(const LossBackwardArgs& a) {
  const float k = static_cast<float>(2.0 * a.dy[0] / divisor_of(a.divisor, a.n));
  scaled_grad(a.n, a.x, a.target, a.dx, k, [](float x, float t) { return x - t; });
}

// max(z, 0) - z·t + log1p(exp(-|z|)), in double: stable for any z.
void bce_forward(const LossArgs& a) {
  const float *x = a.x, *t = a.target;
  const double total = chunked_sum(a.n, [=](int64_t i) {
    const double z = x[i];
    return std::max(z, 0.0) - z * t[i] + std::log1p(std::exp(-std::fabs(z)));
  });
  write_loss(a.loss, total, divisor_of(a.divisor, a.n));
}

void bce_backward(const LossBackwardArgs& a) {
  const float k = static_cast<float>(a.dy[0] / divisor_of(a.divisor, a.n));
  scaled_grad(a.n, a.x, a.target, a.dx, k, [](float z, float t) { return 1.f / (1.f + std::exp(-z)) - t; });
}

void dot_forward(const DotArgs& a) {
  const float *x = a.x, *w = a.w;
  a.y[0] = static_cast<float>(chunked_sum(a.n, [=](int64_t i) { return static_cast<double>(x[i]) * w[i]; }));
}

}  // namespace TK_ISA
}  // namespace tk
