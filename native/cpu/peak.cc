// Measured FMA peak of this ISA: independent FMA chains on every thread for a fixed time. The
// benchmarks print kernel rates as a fraction of this roofline.
#include <chrono>
#include <vector>

#include "simd.h"
#include "threadpool.h"

namespace tk {
namespace TK_ISA {

double peak_gflops(double seconds) {
  constexpr int CHAINS = 12;  // more independent chains than FMA latency x pipes, so none waits
  constexpr int INNER = 1024;
  const int nt = num_threads();
  std::vector<double> rate(nt, 0.0);
  parallel_for(nt, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      V acc[CHAINS];
      for (int c = 0; c < CHAINS; c++) acc[c] = V::set1(0.001f * c);
      const V a = V::set1(0.999999f), b = V::set1(1e-7f);
      using clock = std::chrono::steady_clock;
      const auto start = clock::now();
      int64_t rounds = 0;
      double elapsed = 0;
      do {
        for (int it = 0; it < INNER; it++)
#pragma GCC unroll 12
          for (int c = 0; c < CHAINS; c++) acc[c] = fma(acc[c], a, b);
        rounds++;
        elapsed = std::chrono::duration<double>(clock::now() - start).count();
      } while (elapsed < seconds);
      float sink = 0;
      for (int c = 0; c < CHAINS; c++) sink += reduce_add(acc[c]);
      volatile float keep = sink;
      (void)keep;
      rate[t] = 2.0 * V::W * CHAINS * INNER * static_cast<double>(rounds) / elapsed / 1e9;
    }
  });
  double total = 0;
  for (double r : rate) total += r;
  return total;
}

}  // namespace TK_ISA
}  // namespace tk
