// Kernels of the task heads: tanh / relu / sigmoid / silu and their backward, strided copies (a column
// of QA's logits, slices of packed rows), masked mean pooling, row-wise cosine similarity, row L2
// normalisation (the cosine matrix is l2norm + GEMM), and y = alpha·a + beta·b. Row reductions are
// summed in double, one row at a time in index order, so threads (over rows) never change a result.
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

constexpr float kNormEps = 1e-8f;  // the clamp of l2norm's saved norm
constexpr double kCosEps = 1e-8;   // the clamp of each of cosine's norms

// y[i] = f(x[i]) and the two- and three-input forms, threaded over [0, n). A null input is passed as
// zeros (the backward reads only what its kind needs).
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

inline V sigmoid(V x) { return V::set1(1.f) / (V::set1(1.f) + vexp(V::zero() - x)); }
// x < 0 ? 0 : x, so NaN stays NaN (as torch.relu)
inline V relu(V x) { return select_lt(x, V::zero(), V::zero(), x); }

}  // namespace

void unary_forward(const UnaryArgs& a) {
  switch (a.kind) {
    case UNARY_TANH: return map1(a.n, a.x, a.y, [](V x) { return vtanh(x); });
    case UNARY_RELU: return map1(a.n, a.x, a.y, relu);
    case UNARY_SIGMOID: return map1(a.n, a.x, a.y, sigmoid);
    default: return map1(a.n, a.x, a.y, [](V x) { return x * sigmoid(x); });  // UNARY_SILU
  }
}

void unary_backward(const UnaryBackwardArgs& a) {
  const V one = V::set1(1.f);
  switch (a.kind) {
    case UNARY_TANH: return map2(a.n, a.y, a.dy, a.dx, [one](V y, V g) { return g * (one - y * y); });
    case UNARY_RELU: return map2(a.n, a.y, a.dy, a.dx, [](V y, V g) { return select_lt(V::zero(), y, g, V::zero()); });
    case UNARY_SIGMOID: return map2(a.n, a.y, a.dy, a.dx, [one](V y, V g) { return g * (y * (one - y)); });
    default:  // UNARY_SILU: σ(x)·(1 + x·(1 - σ(x)))
      return map2(a.n, a.x, a.dy, a.dx, [one](V x, V g) {
        V s = sigmoid(x);
        return g * (s * fma(x, one - s, one));
      });
  }
}

void copy_strided(const CopyStridedArgs& a) {
  const int64_t rows = a.rows, cols = a.cols;
  if (rows <= 0 || cols <= 0) return;
  run_range(rows, rows * cols, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* s = a.src + r * a.src_ld;
      float* d = a.dst + r * a.dst_ld;
      if (!a.accumulate) {
        std::memcpy(d, s, sizeof(float) * cols);
        continue;
      }
      int64_t c = 0;
      for (; c + V::W <= cols; c += V::W) (V::load(d + c) + V::load(s + c)).store(d + c);
      for (; c < cols; c++) d[c] += s[c];
    }
  });
}

// Per (b, c) the real rows are added in t order in float, then divided by the count: the same
// operations in the same order as the CUDA kernel (bitwise equal results).
void masked_mean_forward(const MaskedMeanArgs& a) {
  const int64_t B = a.B, T = a.T, C = a.C;
  run_range(B, B * T * C, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; b++) {
      float* y = a.y + b * C;
      std::memset(y, 0, sizeof(float) * C);
      int64_t count = 0;
      for (int64_t t = 0; t < T; t++) {
        if (!a.mask[b * T + t]) continue;
        count++;
        const float* x = a.x + (b * T + t) * C;
        int64_t c = 0;
        for (; c + V::W <= C; c += V::W) (V::load(y + c) + V::load(x + c)).store(y + c);
        for (; c < C; c++) y[c] += x[c];
      }
      if (count == 0) continue;  // sum 0 / 1e-9 = 0
      const float n = static_cast<float>(count);
      for (int64_t c = 0; c < C; c++) y[c] /= n;
    }
  });
}

void masked_mean_backward(const MaskedMeanBackwardArgs& a) {
  const int64_t B = a.B, T = a.T, C = a.C;
  run_range(B, B * T * C, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; b++) {
      int64_t count = 0;
      for (int64_t t = 0; t < T; t++) count += a.mask[b * T + t] != 0;
      const float n = static_cast<float>(count);
      const float* dy = a.dy + b * C;
      for (int64_t t = 0; t < T; t++) {
        float* dx = a.dx + (b * T + t) * C;
        if (!a.mask[b * T + t]) {
          std::memset(dx, 0, sizeof(float) * C);
          continue;
        }
        for (int64_t c = 0; c < C; c++) dx[c] = dy[c] / n;
      }
    }
  });
}

namespace {

struct CosineRow {
  double dot, na, nb;      // a·b and the clamped norms
  bool a_free, b_free;     // the norm was not clamped (it depends on the row)
};
CosineRow cosine_row(const float* a, const float* b, int64_t C) {
  double dot = 0, saa = 0, sbb = 0;
  for (int64_t c = 0; c < C; c++) {
    const double u = a[c], v = b[c];
    dot += u * v;
    saa += u * u;
    sbb += v * v;
  }
  const double na = std::sqrt(saa), nb = std::sqrt(sbb);
  return {dot, std::max(na, kCosEps), std::max(nb, kCosEps), na > kCosEps, nb > kCosEps};
}

}  // namespace

void cosine_forward(const CosineArgs& a) {
  const int64_t N = a.N, C = a.C;
  run_range(N, N * C * 2, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const CosineRow k = cosine_row(a.a + r * C, a.b + r * C, C);
      a.y[r] = static_cast<float>(k.dot / (k.na * k.nb));
    }
  });
}

// d cos / d a = b/(na·nb) - cos·a/na² (the second term only when na was not clamped); same for b.
void cosine_backward(const CosineBackwardArgs& a) {
  const int64_t N = a.N, C = a.C;
  if (!a.da && !a.db) return;
  run_range(N, N * C * 4, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float *u = a.a + r * C, *v = a.b + r * C;
      const CosineRow k = cosine_row(u, v, C);
      const double g = a.dy[r], cos = k.dot / (k.na * k.nb), cross = g / (k.na * k.nb);
      const double self_a = k.a_free ? g * cos / (k.na * k.na) : 0.0;
      const double self_b = k.b_free ? g * cos / (k.nb * k.nb) : 0.0;
      if (float* da = a.da ? a.da + r * C : nullptr)
        for (int64_t c = 0; c < C; c++) da[c] = static_cast<float>(cross * v[c] - self_a * u[c]);
      if (float* db = a.db ? a.db + r * C : nullptr)
        for (int64_t c = 0; c < C; c++) db[c] = static_cast<float>(cross * u[c] - self_b * v[c]);
    }
  });
}

void l2norm_forward(const L2NormArgs& a) {
  const int64_t N = a.N, C = a.C;
  run_range(N, N * C * 2, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* x = a.x + r * C;
      double ss = 0;
      for (int64_t c = 0; c < C; c++) ss += static_cast<double>(x[c]) * x[c];
      const float n = std::max(static_cast<float>(std::sqrt(ss)), kNormEps);
      a.norm[r] = n;
      float* y = a.y + r * C;
      for (int64_t c = 0; c < C; c++) y[c] = x[c] / n;
    }
  });
}

void l2norm_backward(const L2NormBackwardArgs& a) {
  const int64_t N = a.N, C = a.C;
  run_range(N, N * C * 2, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float *y = a.y + r * C, *dy = a.dy + r * C;
      const double n = a.norm[r];
      double s = 0;  // y·dy, only where the norm depends on x
      if (a.norm[r] > kNormEps)
        for (int64_t c = 0; c < C; c++) s += static_cast<double>(y[c]) * dy[c];
      float* dx = a.dx + r * C;
      for (int64_t c = 0; c < C; c++) dx[c] = static_cast<float>((dy[c] - y[c] * s) / n);
    }
  });
}

void axpby(const AxpbyArgs& a) {
  const float k = a.alpha * (a.ap ? a.ap[0] : 1.f);
  const V kv = V::set1(k), bv = V::set1(a.beta);
  if (!a.b || a.beta == 0.f) return map1(a.n, a.a, a.y, [kv](V u) { return kv * u; });
  map2(a.n, a.a, a.b, a.y, [kv, bv](V u, V w) { return fma(kv, u, bv * w); });
}

}  // namespace TK_ISA
}  // namespace tk
