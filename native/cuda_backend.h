// The CUDA backend as the addon sees it: libtunekit_cuda.so (built from cuda/ by `npm run build:cuda`)
// opened with dlopen the first time it is asked for, never when the addon loads, so the CPU addon has
// no CUDA dependency and a machine without a GPU never touches the library.
#pragma once
#include <string>

#include "tunekit/backend.h"

namespace tk {

struct CudaBackend {
  tk_backend backend{};  // "cuda": ops on device pointers, device memory, copies
  std::string library;   // the file that was loaded
  std::string device;    // "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)"
  // The library's extras outside the op list.
  tk_cuda_gemm_half_fn gemm_half = nullptr;
  tk_cuda_convert_f32_fn convert_f32 = nullptr;
  tk_cuda_peak_gflops_fn peak_gflops = nullptr;
  tk_cuda_memory_fn memory = nullptr;
};

// The backend, loaded on the first call (thread-safe; the outcome is kept for the process). Null when
// unavailable, with *reason set to one line saying what was tried and what to do.
// Candidates, in order: $TUNEKIT_CUDA_LIB, <package>/build-cuda/Release/, <package>/build-cuda/, the
// addon's own folder.
const CudaBackend* cuda_backend(std::string* reason);

}  // namespace tk
