// The CUDA backend as the addon sees it: libtunekit_cuda.so (built from cuda/ by `npm run build:cuda`)
// opened with dlopen the first time it is asked for, never when the addon loads, so the CPU addon has
// no CUDA dependency and a machine without a GPU never touches the library.
#pragma once
#include <string>
#include <vector>

#include "../cuda/tk_cuda.h"

namespace tk {

struct CudaBackend {
  const Kernels* kernels = nullptr;  // device pointers wherever kernels.h has pointers
  std::string library;               // the file that was loaded
  std::string device;                // "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)"
  tk_cuda_malloc_fn malloc = nullptr;
  tk_cuda_free_fn free = nullptr;
  tk_cuda_memcpy_fn memcpy_h2d = nullptr, memcpy_d2h = nullptr, memcpy_d2d = nullptr;
  tk_cuda_synchronize_fn synchronize = nullptr;
  tk_cuda_gemm_bf16_fn gemm_bf16 = nullptr;
  tk_cuda_convert_f32_fn convert_f32 = nullptr;
};

// The backend, loaded on the first call (thread-safe; the outcome is kept for the process). Null when
// unavailable, with *reason set to one line saying what was tried and what to do.
// Candidates, in order: $TUNEKIT_CUDA_LIB, <package>/build-cuda/Release/, <package>/build-cuda/, the
// addon's own folder.
const CudaBackend* cuda_backend(std::string* reason);

// Runs a few cases of every op on the CPU table (kernels()) and on the backend with the same inputs;
// one entry per compared output. Throws std::runtime_error on a CUDA or CPU kernel error.
struct CudaOpCheck {
  std::string op;
  double max_abs_diff;  // between the CPU and CUDA results (infinities of the same sign count as equal)
  double ref_max_abs;   // largest |CPU result|, for relative tolerances
};
std::vector<CudaOpCheck> cuda_compare_with_cpu(const CudaBackend& be);

}  // namespace tk
