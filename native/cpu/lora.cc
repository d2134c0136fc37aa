// PLACEHOLDER
#include <stdexcept>
#include "../kernels.h"
namespace tk { namespace TK_ISA {
void lora_forward(const LoraArgs&) { throw std::runtime_error("not built yet"); }
void lora_backward(const LoraBackwardArgs&) { throw std::runtime_error("not built yet"); }
}}
