// Decoding attention on CUDA (flash-decoding): one query token per (batch, head) against a KV cache.
//   partials  a block per (batch·head, key chunk), chunks of decode_chunk(Tk) keys (ops.h, as the CPU);
//             its 8 warps take every 8th key with an online softmax (a lane holds D/32 of the query and
//             of the weighted values), then the warps are merged in warp order into the chunk's max, sum
//             of exp(score − max) and weighted values;
//   merge     a warp per (batch, head) adds the chunks in chunk order.
// No atomics: the result is bitwise repeatable. Head dims up to 256. The partials live in the attention
// workspace slot (the backward's delta buffer; the two never run inside one op).
#include "common.cuh"

namespace tk {
namespace cuda {
namespace {

constexpr int kWarps = kBlock / 32;

// Keys [*lo, *hi) batch row b sees (lengths and window; the key mask is applied per key).
__device__ __forceinline__ void key_span(const AttentionDecodeArgs& a, int64_t b, int64_t* lo, int64_t* hi) {
  const int64_t len = a.lengths ? a.lengths[b] : a.Tk;
  *hi = len;
  *lo = a.window > 0 && len - a.window > 0 ? len - a.window : 0;
}

template <int DMAX>
__global__ void __launch_bounds__(kBlock) decode_partial_kernel(AttentionDecodeArgs a, int64_t chunk, int64_t nch, float* part) {
  constexpr int PER = DMAX / 32;  // head dims per lane
  __shared__ float sm[kWarps], sl[kWarps], so[kWarps][DMAX];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, D = static_cast<int>(a.D);
  const int64_t bh = blockIdx.x, b = bh / a.H, h = bh % a.H, c = blockIdx.y;
  const int64_t Hkv = a.Hkv > 0 ? a.Hkv : a.H, g = h / (a.H / Hkv);
  int64_t lo, hi;
  key_span(a, b, &lo, &hi);
  const int64_t j0 = c * chunk > lo ? c * chunk : lo, j1 = (c + 1) * chunk < hi ? (c + 1) * chunk : hi;
  float q[PER], o[PER];
  const float* qr = a.q + b * a.ldq + h * a.D;
#pragma unroll
  for (int t = 0; t < PER; t++) {
    const int d = lane + 32 * t;
    q[t] = d < D ? qr[d] * a.scale : 0.f;
    o[t] = 0.f;
  }
  float m = -INFINITY, l = 0.f;
  for (int64_t j = j0 + warp; j < j1; j += kWarps) {
    if (a.key_mask && !a.key_mask[b * a.Tk + j]) continue;  // the same for every lane of the warp
    const float* k = a.k + (b * a.Tmax + j) * a.ldk + g * a.D;
    const float* v = a.v + (b * a.Tmax + j) * a.ldv + g * a.D;
    float s = 0.f;
#pragma unroll
    for (int t = 0; t < PER; t++) {
      const int d = lane + 32 * t;
      if (d < D) s = fmaf(q[t], k[d], s);
    }
    s = warp_sum(s);
    const float m_new = fmaxf(m, s), alpha = expf(m - m_new), p = expf(s - m_new);
    l = l * alpha + p;
#pragma unroll
    for (int t = 0; t < PER; t++) {
      const int d = lane + 32 * t;
      o[t] = fmaf(p, d < D ? v[d] : 0.f, o[t] * alpha);
    }
    m = m_new;
  }
  if (lane == 0) {
    sm[warp] = m;
    sl[warp] = l;
  }
#pragma unroll
  for (int t = 0; t < PER; t++) so[warp][lane + 32 * t] = o[t];
  __syncthreads();
  // Warp 0 merges the warps in order; a warp without keys (l = 0) adds nothing.
  if (warp != 0) return;
  float M = -INFINITY;
  for (int w = 0; w < kWarps; w++)
    if (sl[w] > 0.f) M = fmaxf(M, sm[w]);
  float L = 0.f, acc[PER];
#pragma unroll
  for (int t = 0; t < PER; t++) acc[t] = 0.f;
  for (int w = 0; w < kWarps; w++) {
    if (!(sl[w] > 0.f)) continue;
    const float e = expf(sm[w] - M);
    L = fmaf(sl[w], e, L);
#pragma unroll
    for (int t = 0; t < PER; t++) acc[t] = fmaf(so[w][lane + 32 * t], e, acc[t]);
  }
  float* out = part + (bh * nch + c) * (a.D + 2);
  if (lane == 0) {
    out[0] = M;
    out[1] = L;
  }
#pragma unroll
  for (int t = 0; t < PER; t++) {
    const int d = lane + 32 * t;
    if (d < D) out[2 + d] = acc[t];
  }
}

// o = Σ_c o_c·e^(m_c − M) / Σ_c l_c·e^(m_c − M) in chunk order, one warp per (b, h); 0 without keys.
__global__ void decode_merge_kernel(AttentionDecodeArgs a, int64_t nch, const float* part) {
  const int lane = threadIdx.x & 31;
  const int64_t rows = a.B * a.H, warps = int64_t(gridDim.x) * (blockDim.x >> 5);
  for (int64_t bh = blockIdx.x * int64_t(blockDim.x >> 5) + (threadIdx.x >> 5); bh < rows; bh += warps) {
    const float* p = part + bh * nch * (a.D + 2);
    float M = -INFINITY;
    for (int64_t c = 0; c < nch; c++)
      if (p[c * (a.D + 2) + 1] > 0.f) M = fmaxf(M, p[c * (a.D + 2)]);
    float L = 0.f;
    for (int64_t c = 0; c < nch; c++) {
      const float* pc = p + c * (a.D + 2);
      if (pc[1] > 0.f) L = fmaf(pc[1], expf(pc[0] - M), L);
    }
    float* o = a.o + (bh / a.H) * a.ldo + (bh % a.H) * a.D;
    for (int64_t d = lane; d < a.D; d += 32) {
      float s = 0.f;
      for (int64_t c = 0; c < nch; c++) {
        const float* pc = p + c * (a.D + 2);
        if (pc[1] > 0.f) s = fmaf(pc[2 + d], expf(pc[0] - M), s);
      }
      o[d] = L > 0.f ? s / L : 0.f;
    }
  }
}

template <int DMAX>
void launch(const AttentionDecodeArgs& a, int64_t chunk, int64_t nch, float* part) {
  const dim3 grid(static_cast<unsigned>(a.B * a.H), static_cast<unsigned>(nch));
  decode_partial_kernel<DMAX><<<grid, kBlock>>>(a, chunk, nch, part);
  check_launch("attention_decode");
}

}  // namespace

void attention_decode(const AttentionDecodeArgs& a) {
  if (a.B <= 0 || a.H <= 0) return;
  if (a.D > 256)
    throw std::runtime_error("cuda attention_decode: head dim D=" + std::to_string(a.D) +
                             " is larger than 256, the most the CUDA decode kernel supports");
  if (a.B * a.H > 0x7fffffff) throw std::runtime_error("cuda attention_decode: B·H too large for the grid");
  const int64_t chunk = decode_chunk(a.Tk), nch = a.Tk > chunk ? (a.Tk + chunk - 1) / chunk : 1;
  float* part = workspace_of<float>(kSlotAttnDelta, size_t(a.B * a.H * nch * (a.D + 2)));
  if (a.D <= 64) launch<64>(a, chunk, nch, part);
  else if (a.D <= 128) launch<128>(a, chunk, nch, part);
  else launch<256>(a, chunk, nch, part);
  decode_merge_kernel<<<grid_for(a.B * a.H * 32), kBlock>>>(a, nch, part);
  check_launch("attention_decode");
}

}  // namespace cuda
}  // namespace tk
