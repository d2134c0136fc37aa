// The kernel table of one ISA: dispatch.cc picks one of these at run time.
#include "../kernels.h"

#define TK_CAT2(a, b) a##b
#define TK_CAT(a, b) TK_CAT2(a, b)

namespace tk {
namespace TK_ISA {
void gemm(const GemmArgs&);
void attention_forward(const AttentionArgs&);
void attention_backward(const AttentionBackwardArgs&);
void layernorm_forward(const LayerNormArgs&);
void layernorm_backward(const LayerNormBackwardArgs&);
void gelu_forward(int64_t, const float*, float*, int);
void gelu_backward(int64_t, const float*, const float*, float*, int);
void bias_add(int64_t, int64_t, const float*, const float*, float*);
void bias_backward(int64_t, int64_t, const float*, float*);
void add(int64_t, const float*, const float*, float*);
void cross_entropy(CrossEntropyArgs&);
void embedding_forward(int64_t, int64_t, const int32_t*, const float*, float*);
void embedding_backward(int64_t, int64_t, const int32_t*, const float*, float*, int32_t);
void adamw(const AdamWArgs&);
double sum_squares(int64_t, const float*);
void scale(int64_t, float*, float);
void lora_forward(const LoraArgs&);
void lora_backward(const LoraBackwardArgs&);
void dropout(int64_t, const float*, float*, float, uint64_t, uint64_t);
double peak_gflops(double);
}  // namespace TK_ISA

#define TK_STR2(x) #x
#define TK_STR(x) TK_STR2(x)

const Kernels* TK_CAT(kernels_, TK_ISA)() {
  using namespace TK_ISA;
  static const Kernels k = {
      TK_STR(TK_ISA), gemm, attention_forward, attention_backward, layernorm_forward, layernorm_backward,
      gelu_forward, gelu_backward, bias_add, bias_backward, add, cross_entropy, embedding_forward,
      embedding_backward, adamw, sum_squares, scale, lora_forward, lora_backward, dropout, peak_gflops,
  };
  return &k;
}

}  // namespace tk
