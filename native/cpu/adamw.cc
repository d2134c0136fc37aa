// PLACEHOLDER
#include <stdexcept>
#include "../kernels.h"
namespace tk { namespace TK_ISA {
void adamw(const AdamWArgs&) { throw std::runtime_error("not built yet"); }
double sum_squares(int64_t, const float*) { throw std::runtime_error("not built yet"); }
}}
