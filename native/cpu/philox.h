// Philox 4x32-10 on the CPU: the block function of tunekit/philox.h, drawn 16 blocks at a time with
// SIMD (AVX-512 / AVX2) where the ISA has it. Same words, same order as tunekit/philox.h.
#pragma once
#include <cstdint>
#include <cstring>

#include "tunekit/philox.h"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace tk {
namespace philox {

// 16 consecutive blocks at once, one per SIMD lane, the words stored in element order:
// w[4·l + k] = word k of block c + l (the same rounds as block()). The dropout passes draw millions
// of numbers; one block at a time would cost more than the arithmetic they mask.
constexpr int NB = 16;
#if defined(__AVX512F__) || defined(__AVX2__)
namespace simd {
#if defined(__AVX512F__)
using I = __m512i;
constexpr int IW = 16;
static inline I iset1(uint32_t x) { return _mm512_set1_epi32(static_cast<int>(x)); }
static inline I ixor3(I a, I b, I c) { return _mm512_ternarylogic_epi32(a, b, c, 0x96); }
// hi and lo words of the 32x32-bit products a·m lane by lane (m the same in every lane).
static inline void mulhilo(I a, I m, I& hi, I& lo) {
  const I even = _mm512_mul_epu32(a, m), odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
  hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
  lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
}
// u_k holds blocks 4g + k in 128-bit lane g; out holds blocks 0..15 in order (a 4x4 lane transpose).
static inline void store_blocks(I u0, I u1, I u2, I u3, uint32_t* out) {
  const I v0 = _mm512_shuffle_i32x4(u0, u1, 0x44), v1 = _mm512_shuffle_i32x4(u2, u3, 0x44);
  const I v2 = _mm512_shuffle_i32x4(u0, u1, 0xEE), v3 = _mm512_shuffle_i32x4(u2, u3, 0xEE);
  _mm512_storeu_si512(out, _mm512_shuffle_i32x4(v0, v1, 0x88));
  _mm512_storeu_si512(out + 16, _mm512_shuffle_i32x4(v0, v1, 0xDD));
  _mm512_storeu_si512(out + 32, _mm512_shuffle_i32x4(v2, v3, 0x88));
  _mm512_storeu_si512(out + 48, _mm512_shuffle_i32x4(v2, v3, 0xDD));
}
#define TK_UNPACK(op, a, b) _mm512_##op(a, b)
#else
using I = __m256i;
constexpr int IW = 8;
static inline I iset1(uint32_t x) { return _mm256_set1_epi32(static_cast<int>(x)); }
static inline I ixor3(I a, I b, I c) { return _mm256_xor_si256(_mm256_xor_si256(a, b), c); }
static inline void mulhilo(I a, I m, I& hi, I& lo) {
  const I even = _mm256_mul_epu32(a, m), odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}
static inline void store_blocks(I u0, I u1, I u2, I u3, uint32_t* out) {
  _mm256_storeu_si256(reinterpret_cast<I*>(out), _mm256_permute2x128_si256(u0, u1, 0x20));
  _mm256_storeu_si256(reinterpret_cast<I*>(out + 8), _mm256_permute2x128_si256(u2, u3, 0x20));
  _mm256_storeu_si256(reinterpret_cast<I*>(out + 16), _mm256_permute2x128_si256(u0, u1, 0x31));
  _mm256_storeu_si256(reinterpret_cast<I*>(out + 24), _mm256_permute2x128_si256(u2, u3, 0x31));
}
#define TK_UNPACK(op, a, b) _mm256_##op(a, b)
#endif
static inline void blocks16(uint64_t c, uint64_t seed, uint32_t* w) {
  alignas(64) uint32_t lo[NB], hi[NB];
  for (int l = 0; l < NB; l++) {
    lo[l] = static_cast<uint32_t>(c + l);
    hi[l] = static_cast<uint32_t>((c + l) >> 32);
  }
  const I m0 = iset1(0xD2511F53u), m1 = iset1(0xCD9E8D57u);
  for (int v = 0; v < NB / IW; v++) {
    I x0, x1, x2, x3;
    std::memcpy(&x0, lo + v * IW, sizeof(I));
    std::memcpy(&x1, hi + v * IW, sizeof(I));
    x2 = x3 = iset1(0);
    uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
    for (int round = 0; round < 10; round++) {
      I hi0, lo0, hi1, lo1;
      mulhilo(x0, m0, hi0, lo0);
      mulhilo(x2, m1, hi1, lo1);
      x0 = ixor3(hi1, x1, iset1(k0));
      x2 = ixor3(hi0, x3, iset1(k1));
      x1 = lo1;
      x3 = lo0;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    // Interleave the four words of each block: within each 128-bit lane, then across lanes.
    const I t0 = TK_UNPACK(unpacklo_epi32, x0, x1), t1 = TK_UNPACK(unpackhi_epi32, x0, x1);
    const I t2 = TK_UNPACK(unpacklo_epi32, x2, x3), t3 = TK_UNPACK(unpackhi_epi32, x2, x3);
    store_blocks(TK_UNPACK(unpacklo_epi64, t0, t2), TK_UNPACK(unpackhi_epi64, t0, t2), TK_UNPACK(unpacklo_epi64, t1, t3),
                 TK_UNPACK(unpackhi_epi64, t1, t3), w + 4 * v * IW);
  }
}
#undef TK_UNPACK
}  // namespace simd
using simd::blocks16;
#else
static inline void blocks16(uint64_t c, uint64_t seed, uint32_t* w) {
  for (int l = 0; l < NB; l++) {
    const philox::U4 u = philox::block(c + l, seed);
    for (int k = 0; k < 4; k++) w[4 * l + k] = u.x[k];
  }
}
#endif

// Blocks counter .. counter+nb-1 into out[4·j + w] = word w of block counter + j.
static inline void blocks(uint64_t counter, uint64_t seed, int64_t nb, uint32_t* out) {
  int64_t j = 0;
  for (; j + NB <= nb; j += NB) blocks16(counter + static_cast<uint64_t>(j), seed, out + 4 * j);
  for (; j < nb; j++) {
    const U4 u = block(counter + static_cast<uint64_t>(j), seed);
    for (int k = 0; k < 4; k++) out[4 * j + k] = u.x[k];
  }
}

// Fills u[0, n) with the uniforms of elements [first, first + n) of (seed, offset), one Philox
// block per four elements.
static inline void uniforms(uint64_t seed, uint64_t offset, uint64_t first, int64_t n, float* u) {
  uint64_t i = offset + first;
  int64_t k = 0;
  while (k < n) {
    U4 b = block(i >> 2, seed);
    for (uint64_t lane = i & 3; lane < 4 && k < n; lane++, k++, i++) u[k] = to_uniform(b.x[lane]);
  }
}

}  // namespace philox
}  // namespace tk
