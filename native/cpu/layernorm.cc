// PLACEHOLDER
#include <stdexcept>
#include "../kernels.h"
namespace tk { namespace TK_ISA {
void layernorm_forward(const LayerNormArgs&) { throw std::runtime_error("not built yet"); }
void layernorm_backward(const LayerNormBackwardArgs&) { throw std::runtime_error("not built yet"); }
}}
