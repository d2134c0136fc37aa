// PLACEHOLDER
#include <stdexcept>
#include "../kernels.h"
namespace tk { namespace TK_ISA {
void gelu_forward(int64_t, const float*, float*, int) { throw std::runtime_error("not built yet"); }
void gelu_backward(int64_t, const float*, const float*, float*, int) { throw std::runtime_error("not built yet"); }
void bias_add(int64_t, int64_t, const float*, const float*, float*) { throw std::runtime_error("not built yet"); }
void bias_backward(int64_t, int64_t, const float*, float*) { throw std::runtime_error("not built yet"); }
void add(int64_t, const float*, const float*, float*) { throw std::runtime_error("not built yet"); }
void scale(int64_t, float*, float) { throw std::runtime_error("not built yet"); }
void dropout(int64_t, const float*, float*, float, uint64_t, uint64_t) { throw std::runtime_error("not built yet"); }
}}
