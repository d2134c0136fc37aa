// Runs cuda_compare_with_cpu (native/cuda_backend.cc, the same comparison test/cuda.test.ts runs on a
// GPU) against the emulated libtunekit_cuda.so, with the test's tolerances. Exit status 1 on any miss.
#include <algorithm>
#include <cstdio>
#include <regex>
#include <stdexcept>
#include <vector>

#include "cuda_backend.h"

namespace tk {
// The emulator links the scalar kernels only; dispatch.cc asks for all three tables.
const Kernels* kernels_scalar();
const Kernels* kernels_avx2() { return kernels_scalar(); }
const Kernels* kernels_avx512() { return kernels_scalar(); }
}  // namespace tk

int main() {
  std::string why;
  const tk::CudaBackend* be = tk::cuda_backend(&why);
  if (!be) {
    std::printf("emu: %s\n", why.c_str());
    return 1;
  }
  const std::regex exact("^(dropout|embedding|add|scale|bias_add|cross_entropy .* count)");
  int failed = 0;
  std::vector<tk::CudaOpCheck> checks;
  try {
    checks = tk::cuda_compare_with_cpu(*be);
  } catch (const std::exception& e) {  // e.g. a CPU kernel that is still a placeholder
    std::printf("emu: the comparison stopped: %s\n", e.what());
    return 1;
  }
  for (const auto& c : checks) {
    double tol = std::regex_search(c.op, exact) ? 0 : c.op.rfind("sum_squares", 0) == 0 ? 1e-6 : 1e-4;
    tol *= std::max(1.0, c.ref_max_abs);
    const bool ok = c.max_abs_diff <= tol;
    failed += !ok;
    std::printf("%s %-48s |diff| %-10.3g |ref| %-10.3g tol %.3g\n", ok ? "ok  " : "FAIL", c.op.c_str(), c.max_abs_diff,
                c.ref_max_abs, tol);
  }
  std::printf("emu: %zu comparisons on %s, %d failed\n", checks.size(), be->device.c_str(), failed);
  return failed ? 1 : 0;
}
