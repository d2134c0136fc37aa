// Embedding lookup (a row gather) and its backward (a scatter-add into the table).
#include <algorithm>
#include <cstring>

#include "tunekit/ops.h"
#include "simd.h"
#include "threadpool.h"
#include "vtail.h"

namespace tk {
namespace TK_ISA {

void embedding_forward(const EmbeddingArgs& a) {
  const int64_t N = a.N, C = a.C;
  const int32_t* ids = a.ids;
  float* out = a.out;
  if (C <= 0) return;
  if (a.table_dtype == TK_BF16) {  // a bf16 table: each row widened to float (exact)
    const uint16_t* table = static_cast<const uint16_t*>(a.table);
    run_range(N, N * C, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) {
        const uint16_t* src = table + static_cast<int64_t>(ids[i]) * C;
        float* dst = out + i * C;
        int64_t c = 0;
        for (; c + V::W <= C; c += V::W) V::load_bf16(src + c).store(dst + c);
        for (; c < C; c++) dst[c] = bf16_to_float(src[c]);
      }
    });
    return;
  }
  const float* table = static_cast<const float*>(a.table);
  run_range(N, N * C, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) std::memcpy(out + i * C, table + static_cast<int64_t>(ids[i]) * C, sizeof(float) * C);
  });
}

// Repeated ids make a row-parallel scatter race. Threads instead own disjoint column ranges (whole
// cache lines) and each walks all N ids in order: every dtable element gets its additions in the
// serial order, for any thread count.
void embedding_backward(const EmbeddingBackwardArgs& a) {
  const int64_t N = a.N, C = a.C;
  const int32_t* ids = a.ids;
  const float* dout = a.dout;
  float* dtable = a.dtable;
  const int32_t padding_idx = a.padding_idx;
  if (N <= 0 || C <= 0) return;
  constexpr int64_t kUnit = 16;
  const int64_t units = (C + kUnit - 1) / kUnit;
  run_range(units, N * C, [&](int64_t u0, int64_t u1) {
    const int64_t c0 = u0 * kUnit, w = std::min(C, u1 * kUnit) - c0;
    for (int64_t i = 0; i < N; i++) {
      if (ids[i] == padding_idx) continue;
      const float* src = dout + i * C + c0;
      float* dst = dtable + static_cast<int64_t>(ids[i]) * C + c0;
      int64_t c = 0;
      for (; c + V::W <= w; c += V::W) (V::load(dst + c) + V::load(src + c)).store(dst + c);
      for (; c < w; c++) dst[c] += src[c];
    }
  });
}

}  // namespace TK_ISA
}  // namespace tk
