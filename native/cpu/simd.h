// One vector type V per ISA, chosen by the flags this translation unit is compiled with. The kernel
// sources are compiled once per ISA (binding.gyp: tk_scalar, tk_avx2, tk_avx512), each time inside
// namespace tk::TK_ISA, so the three copies never clash and dispatch.cc picks one at run time.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#ifndef TK_ISA
#error "TK_ISA must name the instruction set this file is compiled for (scalar, avx2, avx512)"
#endif

namespace tk {
namespace TK_ISA {

// A bfloat16 (the top 16 bits of a float) widened to float: exact.
inline float bf16_to_float(uint16_t h) {
  const uint32_t x = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

#if defined(__AVX512F__)
struct V {
  __m512 v;
  static constexpr int W = 16;
  static V load(const float* p) { return {_mm512_loadu_ps(p)}; }
  // W bfloat16 values widened to float (exact: a bf16 is the top half of a float's bits)
  static V load_bf16(const uint16_t* p) {
    return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16))};
  }
  static V set1(float x) { return {_mm512_set1_ps(x)}; }
  static V zero() { return {_mm512_setzero_ps()}; }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
};
inline V fma(V a, V b, V c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
inline V operator+(V a, V b) { return {_mm512_add_ps(a.v, b.v)}; }
inline V operator-(V a, V b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline V operator*(V a, V b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline V operator/(V a, V b) { return {_mm512_div_ps(a.v, b.v)}; }
inline V vmax(V a, V b) { return {_mm512_max_ps(a.v, b.v)}; }
inline V vmin(V a, V b) { return {_mm512_min_ps(a.v, b.v)}; }
inline V vabs(V a) { return {_mm512_abs_ps(a.v)}; }
inline V vsqrt(V a) { return {_mm512_sqrt_ps(a.v)}; }
inline float reduce_add(V a) { return _mm512_reduce_add_ps(a.v); }
inline float reduce_max(V a) { return _mm512_reduce_max_ps(a.v); }
// 2^n for integer-valued float n
inline V pow2i(V n) {
  return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n.v), _mm512_set1_epi32(127)), 23))};
}
inline V vround(V a) { return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
// Lane-wise select: m ? a : b, with m from a < comparison.
inline V select_lt(V x, V y, V a, V b) { return {_mm512_mask_blend_ps(_mm512_cmp_ps_mask(x.v, y.v, _CMP_LT_OQ), b.v, a.v)}; }
#elif defined(__AVX2__)
struct V {
  __m256 v;
  static constexpr int W = 8;
  static V load(const float* p) { return {_mm256_loadu_ps(p)}; }
  static V load_bf16(const uint16_t* p) {
    return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16))};
  }
  static V set1(float x) { return {_mm256_set1_ps(x)}; }
  static V zero() { return {_mm256_setzero_ps()}; }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
};
inline V fma(V a, V b, V c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
inline V operator+(V a, V b) { return {_mm256_add_ps(a.v, b.v)}; }
inline V operator-(V a, V b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline V operator*(V a, V b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline V operator/(V a, V b) { return {_mm256_div_ps(a.v, b.v)}; }
inline V vmax(V a, V b) { return {_mm256_max_ps(a.v, b.v)}; }
inline V vmin(V a, V b) { return {_mm256_min_ps(a.v, b.v)}; }
inline V vabs(V a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.f), a.v)}; }
inline V vsqrt(V a) { return {_mm256_sqrt_ps(a.v)}; }
inline float reduce_add(V a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float reduce_max(V a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline V pow2i(V n) {
  return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127)), 23))};
}
inline V vround(V a) { return {_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
inline V select_lt(V x, V y, V a, V b) { return {_mm256_blendv_ps(b.v, a.v, _mm256_cmp_ps(x.v, y.v, _CMP_LT_OQ))}; }
#else
struct V {
  float v;
  static constexpr int W = 1;
  static V load(const float* p) { return {*p}; }
  static V load_bf16(const uint16_t* p) { return {bf16_to_float(*p)}; }
  static V set1(float x) { return {x}; }
  static V zero() { return {0.f}; }
  void store(float* p) const { *p = v; }
};
inline V fma(V a, V b, V c) { return {a.v * b.v + c.v}; }  // std::fma is a slow libm call without -mfma
inline V operator+(V a, V b) { return {a.v + b.v}; }
inline V operator-(V a, V b) { return {a.v - b.v}; }
inline V operator*(V a, V b) { return {a.v * b.v}; }
inline V operator/(V a, V b) { return {a.v / b.v}; }
inline V vmax(V a, V b) { return {a.v > b.v ? a.v : b.v}; }
inline V vmin(V a, V b) { return {a.v < b.v ? a.v : b.v}; }
inline V vabs(V a) { return {std::fabs(a.v)}; }
inline V vsqrt(V a) { return {std::sqrt(a.v)}; }
inline float reduce_add(V a) { return a.v; }
inline float reduce_max(V a) { return a.v; }
inline V pow2i(V n) { return {std::ldexp(1.f, static_cast<int>(n.v))}; }
inline V vround(V a) { return {std::nearbyint(a.v)}; }
inline V select_lt(V x, V y, V a, V b) { return x.v < y.v ? a : b; }
#endif

// exp(x) to ~1 ulp for x in [-87, 88]; below -87 it returns 0 (softmax of masked entries).
// Cody-Waite range reduction x = n·ln2 + r, then a degree-6 polynomial for e^r.
inline V vexp(V x) {
  const V lo = V::set1(-87.3f);
  V xc = vmin(V::set1(88.3f), vmax(lo, x));  // x last: a NaN x stays NaN
  V n = vround(xc * V::set1(1.44269504088896341f));
  V r = fma(n, V::set1(-0.693359375f), xc);
  r = fma(n, V::set1(2.12194440e-4f), r);
  V p = V::set1(1.9875691500e-4f);
  p = fma(p, r, V::set1(1.3981999507e-3f));
  p = fma(p, r, V::set1(8.3334519073e-3f));
  p = fma(p, r, V::set1(4.1665795894e-2f));
  p = fma(p, r, V::set1(1.6666665459e-1f));
  p = fma(p, r, V::set1(5.0000001201e-1f));
  p = fma(p * r, r, r + V::set1(1.f));
  V y = p * pow2i(n);
  return select_lt(x, lo, V::zero(), y);
}

// erf(x) as a rational approximation (the one Eigen uses for float), a few ulp on all of R.
inline V verf(V x) {
  V xc = vmin(V::set1(4.f), vmax(V::set1(-4.f), x));
  V x2 = xc * xc;
  V p = V::set1(-2.72614225801306e-10f);
  p = fma(p, x2, V::set1(2.77068142495902e-08f));
  p = fma(p, x2, V::set1(-2.10102402082508e-06f));
  p = fma(p, x2, V::set1(-5.69250639462346e-05f));
  p = fma(p, x2, V::set1(-7.34990630326855e-04f));
  p = fma(p, x2, V::set1(-2.95459980854025e-03f));
  p = fma(p, x2, V::set1(-1.60960333262415e-02f));
  p = p * xc;
  V q = V::set1(-1.45660718464996e-05f);
  q = fma(q, x2, V::set1(-2.13374055278905e-04f));
  q = fma(q, x2, V::set1(-1.68282697438203e-03f));
  q = fma(q, x2, V::set1(-7.37332916720468e-03f));
  q = fma(q, x2, V::set1(-1.42647390514189e-02f));
  return p / q;
}

// tanh(x) as a 13/6 rational approximation (Eigen's float coefficients), a few ulp on all of R. Unlike
// 1 - 2/(e^{2x}+1) it keeps its relative accuracy near 0 (that form cancels: 100% error at |x| ~ 1e-7).
// Clamped at ±9, where the rational reaches 1 (float tanh is ±1 from 9.01 on), and to [-1, 1] after,
// so a saturated tanh is exactly ±1 and 1 - tanh² exactly 0.
inline V vtanh(V x) {
  V xc = vmin(V::set1(9.f), vmax(V::set1(-9.f), x));
  V x2 = xc * xc;
  V p = V::set1(-2.76076847742355e-16f);
  p = fma(p, x2, V::set1(2.00018790482477e-13f));
  p = fma(p, x2, V::set1(-8.60467152213735e-11f));
  p = fma(p, x2, V::set1(5.12229709037114e-08f));
  p = fma(p, x2, V::set1(1.48572235717979e-05f));
  p = fma(p, x2, V::set1(6.37261928875436e-04f));
  p = fma(p, x2, V::set1(4.89352455891786e-03f));
  p = p * xc;
  V q = V::set1(1.19825839466702e-06f);
  q = fma(q, x2, V::set1(1.18534705686654e-04f));
  q = fma(q, x2, V::set1(2.26843463243900e-03f));
  q = fma(q, x2, V::set1(4.89352518554385e-03f));
  return vmin(V::set1(1.f), vmax(V::set1(-1.f), p / q));
}

}  // namespace TK_ISA
}  // namespace tk
