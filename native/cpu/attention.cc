// PLACEHOLDER until the attention kernels land (owned by the attention helper).
#include <stdexcept>
#include "../kernels.h"
namespace tk { namespace TK_ISA {
void attention_forward(const AttentionArgs&) { throw std::runtime_error("attention_forward: not built yet"); }
void attention_backward(const AttentionBackwardArgs&) { throw std::runtime_error("attention_backward: not built yet"); }
}}
