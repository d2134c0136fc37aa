// GELU's two forms on a vector, shared by the element-wise kernels and the GEMM epilogue (so a fused
// GEMM + GELU gives bit for bit what the GEMM then gelu_forward gives).
#pragma once
#include "simd.h"

namespace tk {
namespace TK_ISA {

constexpr float kSqrtHalf = 0.70710678118654752f;     // 1/sqrt(2)
constexpr float kInvSqrt2Pi = 0.39894228040143268f;   // 1/sqrt(2·pi)
constexpr float kSqrt2OverPi = 0.79788456080286536f;  // sqrt(2/pi)
constexpr float kKappa = 0.044715f;

// 0.5·x·(1 + erf(x/√2))
inline V gelu_erf(V x) {
  V h = x * V::set1(0.5f);
  return fma(h, verf(x * V::set1(kSqrtHalf)), h);
}
// 0.5·x·(1 + tanh(√(2/π)·(x + κx³))), as PyTorch's approximate='tanh'
inline V gelu_tanh(V x) {
  V u = x * fma(V::set1(kSqrt2OverPi * kKappa), x * x, V::set1(kSqrt2OverPi));
  V h = x * V::set1(0.5f);
  return fma(h, vtanh(u), h);
}

}  // namespace TK_ISA
}  // namespace tk
