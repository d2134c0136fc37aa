// The CPU-vs-CUDA comparison of every op (ggml's test-backend-ops): each op's cases run on the CPU
// backend and on the CUDA backend with the same inputs, outputs compared within the case's tolerance.
// test/cuda.test.ts runs it wherever a GPU is present, cuda/dev/emu/check.sh against the emulator.
#pragma once
#include <string>
#include <vector>

#include "cuda_backend.h"

namespace tk {

struct CudaOpCheck {
  std::string op;       // the op of TK_OPS ("attention_backward"), or "gemm_half" (a CUDA library extra)
  std::string name;     // the case and the output compared: "attention D=64 mask backward dq"
  double max_abs_diff;  // between the CPU and CUDA results (infinities of the same sign count as equal)
  double ref_max_abs;   // largest |CPU result|
  double tolerance;     // passes when max_abs_diff <= tolerance · max(1, ref_max_abs)
};

// Every case of every op the CUDA backend supports. An op the backend supports but no case covers
// gives a failing entry ("no case"), so a new CUDA kernel cannot go unchecked. Throws
// std::runtime_error when a backend call fails.
std::vector<CudaOpCheck> cuda_check_ops(const CudaBackend& cuda);

}  // namespace tk
