// Deterministic column sums (bias and LayerNorm parameter gradients): no atomics. The rows are cut
// into a number of chunks that depends only on `rows`; block (column group, chunk) sums its rows in a
// fixed order into partial[k][chunk][c], and a second pass adds the chunks in order into out[k][c].
#pragma once
#include "common.cuh"

namespace tk {
namespace cuda {

constexpr int kColsumW = 32, kColsumH = 8;  // a block: 32 columns x 8 row lanes

inline int64_t colsum_chunks(int64_t rows) {
  const int64_t c = (rows + 63) / 64;
  return c < 1 ? 1 : (c > 128 ? 128 : c);
}

// Op::N values per (row, column): op(r, c, v) fills v[0 .. N).
template <class Op>
__global__ void __launch_bounds__(kColsumW * kColsumH)
    colsum_partial_kernel(Op op, int64_t rows, int64_t C, int64_t chunk_rows, float* partial) {
  __shared__ float s[Op::N][kColsumH][kColsumW + 1];
  const int tx = threadIdx.x % kColsumW, ty = threadIdx.x / kColsumW;
  const int64_t c = int64_t(blockIdx.x) * kColsumW + tx, chunk = blockIdx.y;
  const int64_t r0 = chunk * chunk_rows, r1 = r0 + chunk_rows < rows ? r0 + chunk_rows : rows;
  float acc[Op::N];
#pragma unroll
  for (int k = 0; k < Op::N; k++) acc[k] = 0.f;
  if (c < C)
    for (int64_t r = r0 + ty; r < r1; r += kColsumH) {
      float v[Op::N];
      op(r, c, v);
#pragma unroll
      for (int k = 0; k < Op::N; k++) acc[k] += v[k];
    }
#pragma unroll
  for (int k = 0; k < Op::N; k++) s[k][ty][tx] = acc[k];
  __syncthreads();
  if (ty == 0 && c < C) {
    const int64_t chunks = gridDim.y;
#pragma unroll
    for (int k = 0; k < Op::N; k++) {
      float t = 0.f;
      for (int y = 0; y < kColsumH; y++) t += s[k][y][tx];
      partial[(k * chunks + chunk) * C + c] = t;
    }
  }
}

template <int N>
struct ColsumOut { float* out[N]; };

template <int N>
__global__ void colsum_final_kernel(ColsumOut<N> dst, int64_t C, int64_t chunks, const float* partial) {
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < C; c += int64_t(gridDim.x) * blockDim.x)
#pragma unroll
    for (int k = 0; k < N; k++) {
      if (!dst.out[k]) continue;
      float t = 0.f;
      for (int64_t ch = 0; ch < chunks; ch++) t += partial[(k * chunks + ch) * C + c];
      dst.out[k][c] += t;
    }
}

// out[k] (C) += Σ_rows op(r, c)[k]; null outputs are skipped. Caller holds the op lock.
template <class Op>
void column_sums_op(const Op& op, int64_t rows, int64_t C, ColsumOut<Op::N> out, const char* name) {
  if (rows <= 0 || C <= 0) return;
  const int64_t chunks = colsum_chunks(rows), chunk_rows = (rows + chunks - 1) / chunks;
  float* partial = workspace_of<float>(kSlotColsum, size_t(Op::N) * chunks * C);
  const dim3 grid(static_cast<unsigned>((C + kColsumW - 1) / kColsumW), static_cast<unsigned>(chunks));
  colsum_partial_kernel<Op><<<grid, kColsumW * kColsumH>>>(op, rows, C, chunk_rows, partial);
  check_launch(name);
  colsum_final_kernel<Op::N><<<grid_for(C), kBlock>>>(out, C, chunks, partial);
  check_launch(name);
}

}  // namespace cuda
}  // namespace tk
