// GEMM entry points shared by the kernels of one ISA (attention and LoRA call the serial one per tile).
#pragma once
#include "tunekit/ops.h"

namespace tk {
namespace TK_ISA {

void gemm(const GemmArgs& g);         // all threads
void gemm_serial(const GemmArgs& g);  // the calling thread only (for use inside parallel kernels)

}  // namespace TK_ISA
}  // namespace tk
