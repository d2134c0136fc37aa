// Buffer ops every backend has: fill (zeroing pooled storage, constants) and convert between float
// dtypes (bf16/f16 weights to and from float32). Plain loops: the compiler vectorises them per ISA.
#include <cstring>

#include "threadpool.h"
#include "tunekit/ops.h"

namespace tk {
namespace TK_ISA {
namespace {

// Small buffers run on the calling thread (waking the pool costs more than the copy).
constexpr int64_t kSerial = int64_t(1) << 15;

template <class F>
void over(int64_t n, F&& f) {
  if (n <= kSerial) f(int64_t(0), n);
  else parallel_for(n, [&f](int64_t b, int64_t e) { f(b, e); });
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
inline float bf16_to_f32(uint16_t h) {
  const uint32_t x = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}
// IEEE half, round to nearest even, with subnormals, infinities and NaN.
inline uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u, abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {                                              // below 2^-14: subnormal or 0
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);          // below 2^-25: 0
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const int shift = 126 - static_cast<int>(abs >> 23);                // 14..24
    const uint32_t half = 1u << (shift - 1), rest = mant & ((1u << shift) - 1);
    uint32_t h = mant >> shift;
    if (rest > half || (rest == half && (h & 1u))) h++;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = ((abs - 0x38000000u) >> 13);
  const uint32_t rest = abs & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
  return static_cast<uint16_t>(sign | h);
}
inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  uint32_t x;
  if (e == 0x1f) x = sign | 0x7f800000u | (m << 13);
  else if (e) x = sign | ((e + 112u) << 23) | (m << 13);
  else if (!m) x = sign;
  else {  // subnormal: normalise
    int k = 0;
    uint32_t mm = m;
    while (!(mm & 0x400u)) { mm <<= 1; k++; }
    x = sign | ((113u - k) << 23) | ((mm & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

inline float load(const void* p, int dtype, int64_t i) {
  switch (dtype) {
    case TK_BF16: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case TK_F16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    default: return static_cast<const float*>(p)[i];
  }
}
inline void store(void* p, int dtype, int64_t i, float v) {
  switch (dtype) {
    case TK_BF16: static_cast<uint16_t*>(p)[i] = f32_to_bf16(v); break;
    case TK_F16: static_cast<uint16_t*>(p)[i] = f32_to_f16(v); break;
    default: static_cast<float*>(p)[i] = v;
  }
}

template <class T>
void fill_as(const FillArgs& a) {
  const T v = static_cast<T>(a.bits);
  T* x = static_cast<T*>(a.x);
  over(a.n, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) x[i] = v;
  });
}

}  // namespace

void fill(const FillArgs& a) {
  if (a.elem_bytes == 1) fill_as<uint8_t>(a);
  else if (a.elem_bytes == 2) fill_as<uint16_t>(a);
  else fill_as<uint32_t>(a);
}

void convert(const ConvertArgs& a) {
  over(a.n, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) store(a.dst, a.dst_dtype, i, load(a.src, a.src_dtype, i));
  });
}

}  // namespace TK_ISA
}  // namespace tk
