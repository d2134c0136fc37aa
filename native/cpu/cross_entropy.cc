// Softmax cross-entropy fused with its gradient, one row of logits at a time (threaded over rows):
//   m = max(x), s = Σ exp(x - m), loss = (m - x[t]) + log(s),
//   dlogits = (exp(x - m)/s - onehot(t)) · grad_scale / divisor.
// exp(x - m) is written to dlogits in the sum pass and rescaled in place, so exp runs once per
// logit, and x[t] is read first, which is what lets dlogits alias logits.
#include <cmath>
#include <cstring>
#include <limits>

#include "tunekit/ops.h"
#include "simd.h"
#include "threadpool.h"
#include "vtail.h"

namespace tk {
namespace TK_ISA {
namespace {

float row_max(const float* x, int64_t n) {
  const float lowest = -std::numeric_limits<float>::infinity();
  V m0 = V::set1(lowest), m1 = m0;
  int64_t i = 0;
  for (; i + 2 * V::W <= n; i += 2 * V::W) {
    m0 = vmax(m0, V::load(x + i));
    m1 = vmax(m1, V::load(x + i + V::W));
  }
  for (; i + V::W <= n; i += V::W) m0 = vmax(m0, V::load(x + i));
  float m = reduce_max(vmax(m0, m1));
  for (; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}

// Σ exp(x - m); also stores each exp(x - m) to e when e is not null.
float row_sum_exp(const float* x, int64_t n, float m, float* e) {
  const V mv = V::set1(m);
  V s0 = V::zero(), s1 = V::zero();
  int64_t i = 0;
  for (; i + 2 * V::W <= n; i += 2 * V::W) {
    V e0 = vexp(V::load(x + i) - mv), e1 = vexp(V::load(x + i + V::W) - mv);
    if (e) {
      e0.store(e + i);
      e1.store(e + i + V::W);
    }
    s0 = s0 + e0;
    s1 = s1 + e1;
  }
  for (; i + V::W <= n; i += V::W) {
    V e0 = vexp(V::load(x + i) - mv);
    if (e) e0.store(e + i);
    s0 = s0 + e0;
  }
  if (i < n) {  // padding -inf gives exp = 0
    V e0 = vexp(load_part(x + i, n - i, -std::numeric_limits<float>::infinity()) - mv);
    if (e) store_part(e0, e + i, n - i);
    s0 = s0 + e0;
  }
  return reduce_add(s0 + s1);
}

}  // namespace

void cross_entropy(CrossEntropyArgs& a) {
  const int64_t N = a.N, Vn = a.V;
  int64_t count = 0;
  for (int64_t r = 0; r < N; r++) count += a.targets[r] != a.ignore_index;
  // divisor <= 0: PyTorch's mean over rows not ignored; with none left the loss and gradient are 0
  // (PyTorch returns NaN), so a batch of padding cannot poison a run.
  const double divisor = a.divisor > 0.f ? static_cast<double>(a.divisor) : static_cast<double>(count);
  const float g = divisor > 0 ? static_cast<float>(a.grad_scale / divisor) : 0.f;
  float* losses = a.row_loss ? a.row_loss : scratch(2, N);
  run_range(N, N * Vn, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* x = a.logits + r * Vn;
      float* d = a.dlogits ? a.dlogits + r * Vn : nullptr;
      const int32_t t = a.targets[r];
      if (t == a.ignore_index) {
        losses[r] = 0.f;
        if (d) std::memset(d, 0, sizeof(float) * Vn);
        continue;
      }
      const float xt = x[t];  // before d (maybe x) is overwritten
      const float m = row_max(x, Vn);
      const float s = row_sum_exp(x, Vn, m, d);
      losses[r] = (m - xt) + std::log(s);
      if (!d) continue;
      const V k = V::set1(g / s);
      int64_t i = 0;
      for (; i + V::W <= Vn; i += V::W) (V::load(d + i) * k).store(d + i);
      for (; i < Vn; i++) d[i] *= g / s;
      d[t] -= g;
    }
  });
  double total = 0.0;  // in row order: the same sum for any thread count
  for (int64_t r = 0; r < N; r++) total += losses[r];
  a.loss = divisor > 0 ? total / divisor : 0.0;
  a.count = count;
  if (a.loss_out) *a.loss_out = static_cast<float>(a.loss);
}

}  // namespace TK_ISA
}  // namespace tk
