// Runs cuda_check_ops (native/cuda_check.cc, the same comparison test/cuda.test.ts runs on a GPU)
// against the emulated libtunekit_cuda.so, each case with its own tolerance. Exit status 1 on any miss.
#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <vector>

#include "cpu/table.h"
#include "cuda_check.h"

namespace tk {
// The emulator links the scalar kernels only; dispatch.cc asks for all three tables.
const CpuTable* cpu_table_scalar();
const CpuTable* cpu_table_avx2() { return cpu_table_scalar(); }
const CpuTable* cpu_table_avx512() { return cpu_table_scalar(); }
}  // namespace tk

int main() {
  std::string why;
  const tk::CudaBackend* be = tk::cuda_backend(&why);
  if (!be) {
    std::printf("emu: %s\n", why.c_str());
    return 1;
  }
  int failed = 0;
  std::vector<tk::CudaOpCheck> checks;
  try {
    checks = tk::cuda_check_ops(*be);
  } catch (const std::exception& e) {
    std::printf("emu: the comparison stopped: %s\n", e.what());
    return 1;
  }
  for (const auto& c : checks) {
    const double tol = c.tolerance * std::max(1.0, c.ref_max_abs);
    const bool ok = c.max_abs_diff <= tol;
    failed += !ok;
    std::printf("%s %-20s %-48s |diff| %-10.3g |ref| %-10.3g tol %.3g\n", ok ? "ok  " : "FAIL", c.op.c_str(),
                c.name.c_str(), c.max_abs_diff, c.ref_max_abs, tol);
  }
  std::printf("emu: %zu comparisons on %s, %d failed\n", checks.size(), be->device.c_str(), failed);
  return failed ? 1 : 0;
}
