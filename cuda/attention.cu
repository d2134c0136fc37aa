// Fused attention, FlashAttention-2 in float32 on CUDA cores. Nothing of size Tq x Tk is ever stored:
//   forward   a block owns BQ queries of one (b, h) and streams the keys in tiles of BK with an online
//             softmax (scores in base 2: Q is pre-scaled by scale·log2 e); saves lse for the backward.
//   backward  P is recomputed from lse. Two kernels instead of atomics, so results are deterministic:
//             dK/dV with a block per key tile looping over the queries, dQ with a block per query tile
//             looping over the keys; rowsum(dO ∘ O) is computed once beforehand.
// 256 threads as a 16 x 16 grid: thread (ty, tx) owns rows ty + 16·i of a tile and columns tx + 16·j,
// so a row's scores sit in 16 lanes of one warp (shuffle reductions) and shared reads are conflict-free
// (rows padded to DMAX + 1). Head dims up to 256; tiles are sized to fit 99 KB of shared memory (sm_86+).
// Dropout uses Philox element ((b·H + h)·Tq + i)·Tk + j, the CPU's indexing, so masks are identical.
// Grouped-query attention: query head h reads kv head h / (H / Hkv); the dK/dV kernel has a block per
// (kv head, key tile) that loops over the group's query heads in order, so their sum is deterministic.
// Causal, sliding-window and query-offset limits bound the tile loops (whole tiles skipped).
#include <algorithm>
#include <vector>

#include "common.cuh"
#include "tunekit/philox.h"

namespace tk {
namespace cuda {
namespace {

constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;

// Tile sizes per head-dim bucket: forward (FQ x FK), dK/dV (KQ x KK), dQ (QQ x QK).
template <int DMAX> struct Tiles;
template <> struct Tiles<64> { static constexpr int FQ = 64, FK = 64, KQ = 32, KK = 64, QQ = 64, QK = 32; };
template <> struct Tiles<128> { static constexpr int FQ = 64, FK = 32, KQ = 32, KK = 32, QQ = 32, QK = 32; };
template <> struct Tiles<256> { static constexpr int FQ = 32, FK = 16, KQ = 16, KK = 16, QQ = 16, QK = 16; };

__device__ __forceinline__ float sum16(float v) {
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float max16(float v) {
#pragma unroll
  for (int o = 8; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// dst[r][d] (row stride DMAX + 1) = src row (row0 + r) of head column col0, times mul; zero past
// nrows rows and D columns (so padded products contribute nothing and nothing reads garbage).
template <int ROWS, int DMAX>
__device__ __forceinline__ void load_rows(float* dst, const float* src, int64_t ld, int64_t row0, int nrows, int64_t col0,
                                          int D, float mul) {
  for (int idx = threadIdx.x; idx < ROWS * DMAX; idx += kBlock) {
    const int r = idx / DMAX, d = idx % DMAX;
    dst[r * (DMAX + 1) + d] = (r < nrows && d < D) ? src[(row0 + r) * ld + col0 + d] * mul : 0.f;
  }
}

__host__ __device__ __forceinline__ int64_t kv_heads(const AttentionArgs& a) { return a.Hkv > 0 ? a.Hkv : a.H; }

// Key j visible to query i: padding, causal (queries at key positions q_offset + i), sliding window.
__device__ __forceinline__ bool key_ok(const AttentionArgs& a, int64_t b, int64_t i, int64_t j) {
  const int64_t qi = a.q_offset + i;
  return j < a.Tk && (!a.key_mask || a.key_mask[b * a.Tk + j]) && (!a.causal || j <= qi) &&
         (!a.causal || a.window <= 0 || j > qi - a.window);
}

// Key tiles [*j_begin, *j_end) (j_begin a multiple of BK) that queries [i0, i0 + nq) may see.
template <int BK>
__device__ __forceinline__ void key_tiles(const AttentionArgs& a, int64_t i0, int64_t nq, int64_t* j_begin, int64_t* j_end) {
  const int64_t p0 = a.q_offset + i0;
  *j_end = a.causal ? (a.Tk < p0 + nq ? a.Tk : p0 + nq) : a.Tk;
  const int64_t first = a.causal && a.window > 0 ? p0 - a.window + 1 : 0;
  *j_begin = first > 0 ? first / BK * BK : 0;
}

// 1/(1-p) when Philox element e is kept, else 0.
__device__ __forceinline__ float dropout_mult(const AttentionArgs& a, int64_t bh, int64_t i, int64_t j, float keep) {
  // philox::uniform with the lane picked by selects: indexing U4::x by a variable would put the
  // block in local memory.
  const uint64_t c = a.offset + static_cast<uint64_t>((bh * a.Tq + i) * a.Tk + j);
  const philox::U4 r = philox::block(c >> 2, a.seed);
  const uint32_t lane = static_cast<uint32_t>(c & 3);
  const uint32_t w = lane == 0 ? r.x[0] : lane == 1 ? r.x[1] : lane == 2 ? r.x[2] : r.x[3];
  return philox::to_uniform(w) >= a.dropout_p ? keep : 0.f;
}

// ---------------------------------------------------------------------------------------------
// Forward

template <int BQ, int BK, int DMAX>
__global__ void __launch_bounds__(kBlock) attn_forward_kernel(AttentionArgs a) {
  constexpr int LD = DMAX + 1, LDP = BK + 1, RQ = BQ / 16, RK = BK / 16, RD = DMAX / 16;
  extern __shared__ float smem[];
  float* Qs = smem;            // [BQ][LD], scaled by scale·log2 e
  float* Ks = Qs + BQ * LD;    // [BK][LD]
  float* Vs = Ks + BK * LD;    // [BK][LD]
  float* Ps = Vs + BK * LD;    // [BQ][LDP]: dropped-out probabilities of this key tile
  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4, D = static_cast<int>(a.D);
  const int64_t bh = blockIdx.x, b = bh / a.H, h = bh % a.H, i0 = int64_t(blockIdx.y) * BQ;
  const int64_t hk = h / (a.H / kv_heads(a));  // kv head
  const int nq = static_cast<int>(a.Tq - i0 < BQ ? a.Tq - i0 : BQ);
  const float keep = a.dropout_p > 0.f ? 1.f / (1.f - a.dropout_p) : 1.f;
  load_rows<BQ, DMAX>(Qs, a.q, a.ldq, b * a.Tq + i0, nq, h * a.D, D, a.scale * kLog2e);

  float o[RQ][RD], m[RQ], l[RQ];
#pragma unroll
  for (int ii = 0; ii < RQ; ii++) {
    m[ii] = -INFINITY;
    l[ii] = 0.f;
#pragma unroll
    for (int dd = 0; dd < RD; dd++) o[ii][dd] = 0.f;
  }
  int64_t kbeg, kend;
  key_tiles<BK>(a, i0, BQ, &kbeg, &kend);
  for (int64_t j0 = kbeg; j0 < kend; j0 += BK) {
    const int nk = static_cast<int>(a.Tk - j0 < BK ? a.Tk - j0 : BK);
    __syncthreads();  // the previous tile's Ks, Vs, Ps are consumed
    load_rows<BK, DMAX>(Ks, a.k, a.ldk, b * a.Tk + j0, nk, hk * a.D, D, 1.f);
    load_rows<BK, DMAX>(Vs, a.v, a.ldv, b * a.Tk + j0, nk, hk * a.D, D, 1.f);
    __syncthreads();

    float s[RQ][RK];
#pragma unroll
    for (int ii = 0; ii < RQ; ii++)
#pragma unroll
      for (int jj = 0; jj < RK; jj++) s[ii][jj] = 0.f;
    for (int d = 0; d < D; d++) {
      float qv[RQ], kv[RK];
#pragma unroll
      for (int ii = 0; ii < RQ; ii++) qv[ii] = Qs[(ty + 16 * ii) * LD + d];
#pragma unroll
      for (int jj = 0; jj < RK; jj++) kv[jj] = Ks[(tx + 16 * jj) * LD + d];
#pragma unroll
      for (int ii = 0; ii < RQ; ii++)
#pragma unroll
        for (int jj = 0; jj < RK; jj++) s[ii][jj] = fmaf(qv[ii], kv[jj], s[ii][jj]);
    }

#pragma unroll
    for (int ii = 0; ii < RQ; ii++) {
      const int64_t i = i0 + ty + 16 * ii;
      float mx = -INFINITY;
#pragma unroll
      for (int jj = 0; jj < RK; jj++) {
        if (!key_ok(a, b, i, j0 + tx + 16 * jj)) s[ii][jj] = -INFINITY;
        mx = fmaxf(mx, s[ii][jj]);
      }
      const float m_new = fmaxf(m[ii], max16(mx));
      const float m_use = m_new == -INFINITY ? 0.f : m_new;  // no key yet: every p is exp2(-inf) = 0
      const float alpha = exp2f(m[ii] - m_use);
      float rs = 0.f;
#pragma unroll
      for (int jj = 0; jj < RK; jj++) {
        float p = exp2f(s[ii][jj] - m_use);
        rs += p;  // the normaliser sums the probabilities before dropout
        if (a.dropout_p > 0.f && p > 0.f && i < a.Tq) p *= dropout_mult(a, bh, i, j0 + tx + 16 * jj, keep);
        Ps[(ty + 16 * ii) * LDP + tx + 16 * jj] = p;
      }
      l[ii] = l[ii] * alpha + sum16(rs);
      m[ii] = m_new;
#pragma unroll
      for (int dd = 0; dd < RD; dd++) o[ii][dd] *= alpha;
    }
    __syncthreads();

#pragma unroll 4
    for (int k = 0; k < BK; k++) {
      float pv[RQ], vv[RD];
#pragma unroll
      for (int ii = 0; ii < RQ; ii++) pv[ii] = Ps[(ty + 16 * ii) * LDP + k];
#pragma unroll
      for (int dd = 0; dd < RD; dd++) vv[dd] = Vs[k * LD + tx + 16 * dd];
#pragma unroll
      for (int ii = 0; ii < RQ; ii++)
#pragma unroll
        for (int dd = 0; dd < RD; dd++) o[ii][dd] = fmaf(pv[ii], vv[dd], o[ii][dd]);
    }
  }

#pragma unroll
  for (int ii = 0; ii < RQ; ii++) {
    const int64_t i = i0 + ty + 16 * ii;
    if (i >= a.Tq) continue;
    const float inv = l[ii] > 0.f ? 1.f / l[ii] : 0.f;  // a row with no key left: O = 0, lse = -inf
    float* out = a.o + (b * a.Tq + i) * a.ldo + h * a.D;
#pragma unroll
    for (int dd = 0; dd < RD; dd++) {
      const int d = tx + 16 * dd;
      if (d < D) out[d] = o[ii][dd] * inv;
    }
    if (tx == 0) a.lse[bh * a.Tq + i] = l[ii] > 0.f ? (m[ii] + log2f(l[ii])) * kLn2 : -INFINITY;
  }
}

// ---------------------------------------------------------------------------------------------
// Backward

// delta[(b·H + h)·Tq + i] = Σ_d dO · O, one warp per (b, i, h).
__global__ void attn_delta_kernel(AttentionBackwardArgs g, float* delta) {
  const AttentionArgs& a = g.fwd;
  const int lane = threadIdx.x & 31;
  const int64_t rows = a.B * a.Tq * a.H, warps = int64_t(gridDim.x) * (blockDim.x >> 5);
  for (int64_t r = blockIdx.x * int64_t(blockDim.x >> 5) + (threadIdx.x >> 5); r < rows; r += warps) {
    const int64_t bt = r / a.H, h = r % a.H, b = bt / a.Tq, i = bt % a.Tq;
    const float* o = a.o + bt * a.ldo + h * a.D;
    const float* dout = g.dout + bt * g.lddo + h * a.D;
    float s = 0.f;
    for (int64_t d = lane; d < a.D; d += 32) s = fmaf(o[d], dout[d], s);
    s = warp_sum(s);
    if (lane == 0) delta[(b * a.H + h) * a.Tq + i] = s;
  }
}

// Shared by both backward kernels: for the BQ x BK tile (queries i0.., keys j0..) computes
// P̃ = P·mask (into Ps when not null) and dS = P ∘ (dP·mask - delta) (into dSs), P from the saved lse.
template <int BQ, int BK, int DMAX>
__device__ __forceinline__ void tile_grads(const AttentionArgs& a, int64_t bh, int64_t b, int64_t i0, int64_t j0,
                                           const float* Qs, const float* dOs, const float* Ks, const float* Vs,
                                           const float* lse2, const float* delta, float* Ps, float* dSs) {
  constexpr int LD = DMAX + 1, LDP = BK + 1, RQ = BQ / 16, RK = BK / 16;
  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4, D = static_cast<int>(a.D);
  const float qs = a.scale * kLog2e, keep = a.dropout_p > 0.f ? 1.f / (1.f - a.dropout_p) : 1.f;
  float s[RQ][RK], dp[RQ][RK];
#pragma unroll
  for (int ii = 0; ii < RQ; ii++)
#pragma unroll
    for (int jj = 0; jj < RK; jj++) s[ii][jj] = dp[ii][jj] = 0.f;
  for (int d = 0; d < D; d++) {
    float qv[RQ], ov[RQ], kv[RK], vv[RK];
#pragma unroll
    for (int ii = 0; ii < RQ; ii++) {
      qv[ii] = Qs[(ty + 16 * ii) * LD + d];
      ov[ii] = dOs[(ty + 16 * ii) * LD + d];
    }
#pragma unroll
    for (int jj = 0; jj < RK; jj++) {
      kv[jj] = Ks[(tx + 16 * jj) * LD + d];
      vv[jj] = Vs[(tx + 16 * jj) * LD + d];
    }
#pragma unroll
    for (int ii = 0; ii < RQ; ii++)
#pragma unroll
      for (int jj = 0; jj < RK; jj++) {
        s[ii][jj] = fmaf(qv[ii], kv[jj], s[ii][jj]);
        dp[ii][jj] = fmaf(ov[ii], vv[jj], dp[ii][jj]);
      }
  }
#pragma unroll
  for (int ii = 0; ii < RQ; ii++) {
    const int r = ty + 16 * ii;
    const int64_t i = i0 + r;
    const float L = lse2[r], di = delta[r];
#pragma unroll
    for (int jj = 0; jj < RK; jj++) {
      const int64_t j = j0 + tx + 16 * jj;
      // Rows past Tq and rows that had no key (lse = -inf) get no gradient.
      const bool ok = i < a.Tq && L != -INFINITY && key_ok(a, b, i, j);
      const float p = ok ? exp2f(s[ii][jj] * qs - L) : 0.f;
      const float mult = ok && a.dropout_p > 0.f ? dropout_mult(a, bh, i, j, keep) : 1.f;
      if (Ps) Ps[r * LDP + tx + 16 * jj] = p * mult;
      dSs[r * LDP + tx + 16 * jj] = p * (dp[ii][jj] * mult - di);
    }
  }
}

// Loads BQ query rows (Q, dO, lse in base 2, delta) of head (b, h) starting at i0.
template <int BQ, int DMAX>
__device__ __forceinline__ void load_queries(const AttentionBackwardArgs& g, const float* delta, int64_t bh, int64_t b,
                                             int64_t h, int64_t i0, float* Qs, float* dOs, float* lse2, float* dl) {
  const AttentionArgs& a = g.fwd;
  const int nq = static_cast<int>(a.Tq - i0 < BQ ? a.Tq - i0 : BQ), D = static_cast<int>(a.D);
  load_rows<BQ, DMAX>(Qs, a.q, a.ldq, b * a.Tq + i0, nq, h * a.D, D, 1.f);
  load_rows<BQ, DMAX>(dOs, g.dout, g.lddo, b * a.Tq + i0, nq, h * a.D, D, 1.f);
  for (int r = threadIdx.x; r < BQ; r += kBlock) {
    lse2[r] = r < nq ? a.lse[bh * a.Tq + i0 + r] * kLog2e : -INFINITY;
    dl[r] = r < nq ? delta[bh * a.Tq + i0 + r] : 0.f;
  }
}

// dK, dV of BK keys (block y) of kv head (b, hk) = block x: Σ over the group's query heads, in order, and
// their query tiles of P̃ᵀ dO and dSᵀ Q.
template <int BQ, int BK, int DMAX>
__global__ void __launch_bounds__(kBlock) attn_dkdv_kernel(AttentionBackwardArgs g, const float* delta) {
  constexpr int LD = DMAX + 1, LDP = BK + 1, RK = BK / 16, RD = DMAX / 16;
  const AttentionArgs& a = g.fwd;
  extern __shared__ float smem[];
  float* Ks = smem;             // [BK][LD]
  float* Vs = Ks + BK * LD;     // [BK][LD]
  float* Qs = Vs + BK * LD;     // [BQ][LD]
  float* dOs = Qs + BQ * LD;    // [BQ][LD]
  float* Ps = dOs + BQ * LD;    // [BQ][LDP]
  float* dSs = Ps + BQ * LDP;   // [BQ][LDP]
  float* lse2 = dSs + BQ * LDP; // [BQ]
  float* dl = lse2 + BQ;        // [BQ]
  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4, D = static_cast<int>(a.D);
  const int64_t Hkv = kv_heads(a), R = a.H / Hkv;
  const int64_t b = blockIdx.x / Hkv, hk = blockIdx.x % Hkv, j0 = int64_t(blockIdx.y) * BK;
  const int nk = static_cast<int>(a.Tk - j0 < BK ? a.Tk - j0 : BK);
  load_rows<BK, DMAX>(Ks, a.k, a.ldk, b * a.Tk + j0, nk, hk * a.D, D, 1.f);
  load_rows<BK, DMAX>(Vs, a.v, a.ldv, b * a.Tk + j0, nk, hk * a.D, D, 1.f);

  float dk[RK][RD], dv[RK][RD];
#pragma unroll
  for (int r = 0; r < RK; r++)
#pragma unroll
    for (int c = 0; c < RD; c++) dk[r][c] = dv[r][c] = 0.f;
  // Queries that may see these keys: causal, i >= j0 − q_offset; window, i < j0 + BK − 1 + window − q_offset.
  const int64_t first = a.causal ? j0 - a.q_offset : 0;
  const int64_t ibegin = first > 0 ? first / BQ * BQ : 0;
  const int64_t last = a.causal && a.window > 0 ? j0 + BK - 1 + a.window - a.q_offset : a.Tq;
  const int64_t iend = last < a.Tq ? last : a.Tq;
  const int64_t ntiles = iend > ibegin ? (iend - ibegin + BQ - 1) / BQ : 0;
  for (int64_t t = 0; t < R * ntiles; t++) {  // the group's query heads in order, each over its query tiles
    const int64_t h = hk * R + t / ntiles, i0 = ibegin + t % ntiles * BQ, bh = b * a.H + h;
    __syncthreads();  // the previous query tile is consumed
    load_queries<BQ, DMAX>(g, delta, bh, b, h, i0, Qs, dOs, lse2, dl);
    __syncthreads();
    tile_grads<BQ, BK, DMAX>(a, bh, b, i0, j0, Qs, dOs, Ks, Vs, lse2, dl, Ps, dSs);
    __syncthreads();
#pragma unroll 2
    for (int q = 0; q < BQ; q++) {
      float pk[RK], sk[RK], ov[RD], qv[RD];
#pragma unroll
      for (int r = 0; r < RK; r++) {
        pk[r] = Ps[q * LDP + ty + 16 * r];
        sk[r] = dSs[q * LDP + ty + 16 * r];
      }
#pragma unroll
      for (int c = 0; c < RD; c++) {
        ov[c] = dOs[q * LD + tx + 16 * c];
        qv[c] = Qs[q * LD + tx + 16 * c];
      }
#pragma unroll
      for (int r = 0; r < RK; r++)
#pragma unroll
        for (int c = 0; c < RD; c++) {
          dv[r][c] = fmaf(pk[r], ov[c], dv[r][c]);
          dk[r][c] = fmaf(sk[r], qv[c], dk[r][c]);
        }
    }
  }
#pragma unroll
  for (int r = 0; r < RK; r++) {
    const int64_t j = j0 + ty + 16 * r;
    if (j >= a.Tk) continue;
    float* dkr = g.dk + (b * a.Tk + j) * g.lddk + hk * a.D;
    float* dvr = g.dv + (b * a.Tk + j) * g.lddv + hk * a.D;
#pragma unroll
    for (int c = 0; c < RD; c++) {
      const int d = tx + 16 * c;
      if (d < D) {
        dkr[d] = dk[r][c] * a.scale;
        dvr[d] = dv[r][c];
      }
    }
  }
}

// dQ of BQ queries (block y) of head (b, h) = block x: Σ over key tiles of dS K.
template <int BQ, int BK, int DMAX>
__global__ void __launch_bounds__(kBlock) attn_dq_kernel(AttentionBackwardArgs g, const float* delta) {
  constexpr int LD = DMAX + 1, LDP = BK + 1, RQ = BQ / 16, RD = DMAX / 16;
  const AttentionArgs& a = g.fwd;
  extern __shared__ float smem[];
  float* Qs = smem;             // [BQ][LD]
  float* dOs = Qs + BQ * LD;    // [BQ][LD]
  float* Ks = dOs + BQ * LD;    // [BK][LD]
  float* Vs = Ks + BK * LD;     // [BK][LD]
  float* dSs = Vs + BK * LD;    // [BQ][LDP]
  float* lse2 = dSs + BQ * LDP; // [BQ]
  float* dl = lse2 + BQ;        // [BQ]
  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4, D = static_cast<int>(a.D);
  const int64_t bh = blockIdx.x, b = bh / a.H, h = bh % a.H, i0 = int64_t(blockIdx.y) * BQ;
  const int64_t hk = h / (a.H / kv_heads(a));
  load_queries<BQ, DMAX>(g, delta, bh, b, h, i0, Qs, dOs, lse2, dl);

  float dq[RQ][RD];
#pragma unroll
  for (int ii = 0; ii < RQ; ii++)
#pragma unroll
    for (int c = 0; c < RD; c++) dq[ii][c] = 0.f;
  int64_t kbeg, kend;
  key_tiles<BK>(a, i0, BQ, &kbeg, &kend);
  for (int64_t j0 = kbeg; j0 < kend; j0 += BK) {
    const int nk = static_cast<int>(a.Tk - j0 < BK ? a.Tk - j0 : BK);
    __syncthreads();  // the previous key tile is consumed
    load_rows<BK, DMAX>(Ks, a.k, a.ldk, b * a.Tk + j0, nk, hk * a.D, D, 1.f);
    load_rows<BK, DMAX>(Vs, a.v, a.ldv, b * a.Tk + j0, nk, hk * a.D, D, 1.f);
    __syncthreads();
    tile_grads<BQ, BK, DMAX>(a, bh, b, i0, j0, Qs, dOs, Ks, Vs, lse2, dl, nullptr, dSs);
    __syncthreads();
#pragma unroll 4
    for (int k = 0; k < BK; k++) {
      float sv[RQ], kv[RD];
#pragma unroll
      for (int ii = 0; ii < RQ; ii++) sv[ii] = dSs[(ty + 16 * ii) * LDP + k];
#pragma unroll
      for (int c = 0; c < RD; c++) kv[c] = Ks[k * LD + tx + 16 * c];
#pragma unroll
      for (int ii = 0; ii < RQ; ii++)
#pragma unroll
        for (int c = 0; c < RD; c++) dq[ii][c] = fmaf(sv[ii], kv[c], dq[ii][c]);
    }
  }
#pragma unroll
  for (int ii = 0; ii < RQ; ii++) {
    const int64_t i = i0 + ty + 16 * ii;
    if (i >= a.Tq) continue;
    float* out = g.dq + (b * a.Tq + i) * g.lddq + h * a.D;
#pragma unroll
    for (int c = 0; c < RD; c++) {
      const int d = tx + 16 * c;
      if (d < D) out[d] = dq[ii][c] * a.scale;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Launch

// Kernels using more than 48 KB of dynamic shared memory must opt in once per kernel.
template <class Kernel>
void opt_in_smem(const char* op, Kernel kernel, size_t smem) {
  static std::vector<const void*> opted_in;  // guarded by the op lock
  const void* key = reinterpret_cast<const void*>(kernel);
  if (std::find(opted_in.begin(), opted_in.end(), key) == opted_in.end()) {
    check(op, cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    opted_in.push_back(key);
  }
}

unsigned tiles(int64_t n, int tile, const char* op) {
  const int64_t t = (n + tile - 1) / tile;
  if (t > 65535) throw std::runtime_error(std::string("cuda ") + op + ": sequence too long for the grid (" + std::to_string(n) + ")");
  return static_cast<unsigned>(t);
}

template <int DMAX>
void forward_impl(const AttentionArgs& a) {
  constexpr int BQ = Tiles<DMAX>::FQ, BK = Tiles<DMAX>::FK, LD = DMAX + 1;
  const size_t smem = sizeof(float) * ((BQ + 2 * BK) * LD + BQ * (BK + 1));
  const dim3 grid(static_cast<unsigned>(a.B * a.H), tiles(a.Tq, BQ, "attention_forward"));
  opt_in_smem("attention_forward", attn_forward_kernel<BQ, BK, DMAX>, smem);
  attn_forward_kernel<BQ, BK, DMAX><<<grid, kBlock, smem>>>(a);
  check_launch("attention_forward");
}

template <int DMAX>
void backward_impl(const AttentionBackwardArgs& g, const float* delta) {
  const AttentionArgs& a = g.fwd;
  constexpr int LD = DMAX + 1;
  if (a.Tk > 0) {
    constexpr int BQ = Tiles<DMAX>::KQ, BK = Tiles<DMAX>::KK;
    const size_t smem = sizeof(float) * ((2 * BK + 2 * BQ) * LD + 2 * BQ * (BK + 1) + 2 * BQ);
    const dim3 grid(static_cast<unsigned>(a.B * kv_heads(a)), tiles(a.Tk, BK, "attention_backward"));
    opt_in_smem("attention_backward", attn_dkdv_kernel<BQ, BK, DMAX>, smem);
    attn_dkdv_kernel<BQ, BK, DMAX><<<grid, kBlock, smem>>>(g, delta);
    check_launch("attention_backward");
  }
  if (a.Tq > 0) {
    constexpr int BQ = Tiles<DMAX>::QQ, BK = Tiles<DMAX>::QK;
    const size_t smem = sizeof(float) * ((2 * BQ + 2 * BK) * LD + BQ * (BK + 1) + 2 * BQ);
    const dim3 grid(static_cast<unsigned>(a.B * a.H), tiles(a.Tq, BQ, "attention_backward"));
    opt_in_smem("attention_backward", attn_dq_kernel<BQ, BK, DMAX>, smem);
    attn_dq_kernel<BQ, BK, DMAX><<<grid, kBlock, smem>>>(g, delta);
    check_launch("attention_backward");
  }
}

void check_head_dim(const AttentionArgs& a, const char* op) {
  if (a.D > 256)
    throw std::runtime_error(std::string("cuda ") + op + ": head dim D=" + std::to_string(a.D) +
                             " is larger than 256, the most the CUDA attention kernels support");
  if (a.B * a.H > 0x7fffffff) throw std::runtime_error(std::string("cuda ") + op + ": B·H too large for the grid");
}

}  // namespace

void attention_forward(const AttentionArgs& a) {
  if (a.B <= 0 || a.H <= 0 || a.Tq <= 0) return;
  check_head_dim(a, "attention_forward");
  if (a.D <= 64) forward_impl<64>(a);
  else if (a.D <= 128) forward_impl<128>(a);
  else forward_impl<256>(a);
}

void attention_backward(const AttentionBackwardArgs& g) {
  const AttentionArgs& a = g.fwd;
  if (a.B <= 0 || a.H <= 0) return;
  check_head_dim(a, "attention_backward");
  float* delta = workspace_of<float>(kSlotAttnDelta, size_t(a.B * a.H * (a.Tq > 0 ? a.Tq : 1)));
  if (a.Tq > 0) {
    attn_delta_kernel<<<grid_for(a.B * a.Tq * a.H * 32), kBlock>>>(g, delta);
    check_launch("attention_backward");
  }
  if (a.D <= 64) backward_impl<64>(g, delta);
  else if (a.D <= 128) backward_impl<128>(g, delta);
  else backward_impl<256>(g, delta);
}

}  // namespace cuda
}  // namespace tk
