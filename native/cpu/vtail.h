// Helpers shared by the row and element-wise kernels (layernorm, elementwise, cross_entropy,
// embedding): partial vectors for the n % V::W tail, so the tail goes through the same vector math
// as the body, and the size below which threads cost more than they save.
#pragma once
#include <cstdint>

#include "simd.h"
#include "threadpool.h"

namespace tk {
namespace TK_ISA {

// Below this many elements a kernel runs on the calling thread.
constexpr int64_t kParallelMin = 16384;

// The first n (< V::W) floats of p, the other lanes set to pad.
inline V load_part(const float* p, int64_t n, float pad) {
  alignas(64) float b[V::W];
  for (int i = 0; i < V::W; i++) b[i] = i < n ? p[i] : pad;
  return V::load(b);
}

// Stores the first n (< V::W) lanes of v to p.
inline void store_part(V v, float* p, int64_t n) {
  alignas(64) float b[V::W];
  v.store(b);
  for (int64_t i = 0; i < n; i++) p[i] = b[i];
}

// body(begin, end) over [0, n): on the calling thread when work (elements touched) is small,
// else in contiguous chunks on the pool.
template <class F>
inline void run_range(int64_t n, int64_t work, F&& body) {
  if (n <= 0) return;
  if (work < kParallelMin || num_threads() <= 1) return body(int64_t(0), n);
  parallel_for(n, [&](int64_t b, int64_t e) { body(b, e); });
}

}  // namespace TK_ISA
}  // namespace tk
