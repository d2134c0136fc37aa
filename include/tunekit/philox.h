// Philox 4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"), the counter-based
// generator behind every random number in tunekit. Element e of a call keyed by (seed, offset) is
// lane (offset + e) % 4 of the block counter (offset + e) / 4, so any element can be drawn on its
// own, in any order, on CPU or GPU, and a dropout mask is recomputed rather than stored. This is the
// definition every backend shares; native/cpu/philox.h adds the CPU's SIMD batches of the same blocks.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define TK_HD __host__ __device__ __forceinline__
#else
#define TK_HD static inline
#endif

namespace tk {
namespace philox {

struct U4 { uint32_t x[4]; };

TK_HD U4 block(uint64_t counter, uint64_t seed) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; round++) {
    uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0; c1 = lo1; c2 = hi0 ^ c3 ^ k1; c3 = lo0;
    k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
  }
  return U4{{c0, c1, c2, c3}};
}

// Uniform in [0, 1) with 24 random bits.
TK_HD float to_uniform(uint32_t u) { return static_cast<float>(u >> 8) * (1.0f / 16777216.0f); }

TK_HD float uniform(uint64_t seed, uint64_t offset, uint64_t e) {
  uint64_t i = offset + e;
  return to_uniform(block(i >> 2, seed).x[i & 3]);
}

}  // namespace philox
}  // namespace tk
