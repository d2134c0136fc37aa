// GEMM, written by hand (no cuBLAS): a shared-memory tiled float32 kernel (each thread an 8x8 or 4x4
// register tile, the next K-slice prefetched into registers while the current one is multiplied), and
// a tensor-core kernel (WMMA 16x16x16) for fp16/bf16 inputs with float32 accumulation.
// Both handle op(A)/op(B) = N or T, any leading dimensions, strided batches and ragged edges.
// GemmArgs::bf16 (bf16 autocast, as the CPU's) and ::fp16 run on the tensor-core kernel: A and a float32
// B rounded to bf16 / fp16 first, a bf16 B (a frozen weight, GemmArgs::b_dtype) read as it is (bf16). Without it a bf16 B is
// read by the float32 kernel, widened as it is loaded (exact).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>

#include <type_traits>

#include "common.cuh"
#include "tunekit/backend.h"

namespace tk {
namespace cuda {
namespace {

// ---------------------------------------------------------------------------------------------
// float32: block tile BM x BN over K-slices of BK; 256 threads as 16 x 16, thread (ty, tx) owns rows
// h·BM/HM + 4·ty + i and columns h·BN/HN + 4·tx + j (i, j < 4): split in halves so the float4 reads of
// shared memory by a warp hit distinct banks.

template <int HM, int HN, int BK>
struct SgemmCfg {
  static constexpr int BM = 64 * HM, BN = 64 * HN, PAD = 4;
  static constexpr int A_PER = BM * BK / kBlock, B_PER = BN * BK / kBlock;  // elements each thread loads
};

// GemmArgs::ep on element (m, n) of matrix bat: v (alpha·AB + beta·C) + bias + residual → pre, then
// the activation (as cuda/elementwise.cu's gelu kernels compute it).
__device__ __forceinline__ float gemm_epilogue(const GemmEpilogue& e, float v, int64_t at, int64_t n) {
  if (e.bias) v += e.bias[n];
  if (e.residual) v += e.residual[at];
  if (e.pre) e.pre[at] = v;
  if (e.act == GEMM_ACT_GELU_ERF) {
    v = 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
  } else if (e.act == GEMM_ACT_GELU_TANH) {
    const float u = 0.79788456080286536f * (v + 0.044715f * v * v * v);
    v = 0.5f * v * (1.f + tanhf(u));
  }
  return v;
}

__device__ __forceinline__ float widen(float x) { return x; }
__device__ __forceinline__ float widen(__nv_bfloat16 x) { return __bfloat162float(x); }

// BE: B's element type (float, or __nv_bfloat16 for a bf16 weight).
template <int HM, int HN, int BK, bool TA, bool TB, class BE>
__global__ void __launch_bounds__(kBlock) sgemm_kernel(GemmArgs g) {
  using Cfg = SgemmCfg<HM, HN, BK>;
  constexpr int BM = Cfg::BM, BN = Cfg::BN, LDA_S = BM + Cfg::PAD, LDB_S = BN + Cfg::PAD;
  __shared__ __align__(16) float As[BK * LDA_S];  // As[k][m]
  __shared__ __align__(16) float Bs[BK * LDB_S];  // Bs[k][n]
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  const int64_t m0 = int64_t(blockIdx.y) * BM, n0 = int64_t(blockIdx.x) * BN;

  for (int64_t bat = blockIdx.z; bat < g.batch; bat += gridDim.z) {
    const float* A = g.A + bat * g.strideA;
    const BE* B = static_cast<const BE*>(g.B) + bat * g.strideB;
    float* C = g.C + bat * g.strideC;
    float ra[Cfg::A_PER], rb[Cfg::B_PER];
    // Element l of the A slice: coalesced along whichever of m / k is contiguous in memory.
    auto load = [&](int64_t k0) {
#pragma unroll
      for (int e = 0; e < Cfg::A_PER; e++) {
        const int l = tid + e * kBlock;
        const int mm = TA ? l % BM : l / BK, kk = TA ? l / BM : l % BK;
        const int64_t m = m0 + mm, k = k0 + kk;
        ra[e] = (m < g.M && k < g.K) ? (TA ? A[k * g.lda + m] : A[m * g.lda + k]) : 0.f;
      }
#pragma unroll
      for (int e = 0; e < Cfg::B_PER; e++) {
        const int l = tid + e * kBlock;
        const int nn = TB ? l / BK : l % BN, kk = TB ? l % BK : l / BN;
        const int64_t n = n0 + nn, k = k0 + kk;
        rb[e] = (n < g.N && k < g.K) ? widen(TB ? B[n * g.ldb + k] : B[k * g.ldb + n]) : 0.f;
      }
    };
    auto store = [&]() {
#pragma unroll
      for (int e = 0; e < Cfg::A_PER; e++) {
        const int l = tid + e * kBlock;
        const int mm = TA ? l % BM : l / BK, kk = TA ? l / BM : l % BK;
        As[kk * LDA_S + mm] = ra[e];
      }
#pragma unroll
      for (int e = 0; e < Cfg::B_PER; e++) {
        const int l = tid + e * kBlock;
        const int nn = TB ? l / BK : l % BN, kk = TB ? l % BK : l / BN;
        Bs[kk * LDB_S + nn] = rb[e];
      }
    };

    float acc[4 * HM][4 * HN];
#pragma unroll
    for (int i = 0; i < 4 * HM; i++)
#pragma unroll
      for (int j = 0; j < 4 * HN; j++) acc[i][j] = 0.f;

    load(0);
    for (int64_t k0 = 0; k0 < g.K; k0 += BK) {
      store();
      __syncthreads();
      if (k0 + BK < g.K) load(k0 + BK);  // in flight while this slice is multiplied
#pragma unroll
      for (int kk = 0; kk < BK; kk++) {
        float a[4 * HM], b[4 * HN];
#pragma unroll
        for (int h = 0; h < HM; h++) {
          const float4 v = *reinterpret_cast<const float4*>(&As[kk * LDA_S + h * (BM / HM) + 4 * ty]);
          a[4 * h] = v.x; a[4 * h + 1] = v.y; a[4 * h + 2] = v.z; a[4 * h + 3] = v.w;
        }
#pragma unroll
        for (int h = 0; h < HN; h++) {
          const float4 v = *reinterpret_cast<const float4*>(&Bs[kk * LDB_S + h * (BN / HN) + 4 * tx]);
          b[4 * h] = v.x; b[4 * h + 1] = v.y; b[4 * h + 2] = v.z; b[4 * h + 3] = v.w;
        }
#pragma unroll
        for (int i = 0; i < 4 * HM; i++)
#pragma unroll
          for (int j = 0; j < 4 * HN; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
      }
      __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < 4 * HM; i++) {
      const int64_t m = m0 + (i / 4) * (BM / HM) + 4 * ty + (i % 4);
      if (m >= g.M) continue;
#pragma unroll
      for (int j = 0; j < 4 * HN; j++) {
        const int64_t n = n0 + (j / 4) * (BN / HN) + 4 * tx + (j % 4);
        if (n >= g.N) continue;
        float* c = C + m * g.ldc + n;
        const float v = g.beta == 0.f ? g.alpha * acc[i][j] : fmaf(g.alpha, acc[i][j], g.beta * *c);
        *c = gemm_epilogue(g.ep, v, bat * g.strideC + m * g.ldc + n, n);
      }
    }
  }
}

template <int HM, int HN, int BK, class BE>
void launch_sgemm(const GemmArgs& g) {
  using Cfg = SgemmCfg<HM, HN, BK>;
  const dim3 grid(static_cast<unsigned>((g.N + Cfg::BN - 1) / Cfg::BN), static_cast<unsigned>((g.M + Cfg::BM - 1) / Cfg::BM),
                  static_cast<unsigned>(g.batch < 65535 ? g.batch : 65535));
  if (g.transA) {
    if (g.transB) sgemm_kernel<HM, HN, BK, true, true, BE><<<grid, kBlock>>>(g);
    else sgemm_kernel<HM, HN, BK, true, false, BE><<<grid, kBlock>>>(g);
  } else {
    if (g.transB) sgemm_kernel<HM, HN, BK, false, true, BE><<<grid, kBlock>>>(g);
    else sgemm_kernel<HM, HN, BK, false, false, BE><<<grid, kBlock>>>(g);
  }
}

template <int HM, int HN, int BK>
void launch_sgemm_for(const GemmArgs& g) {
  if (g.b_dtype == TK_BF16) launch_sgemm<HM, HN, BK, __nv_bfloat16>(g);
  else launch_sgemm<HM, HN, BK, float>(g);
}

// ---------------------------------------------------------------------------------------------
// fp16 / bf16 on tensor cores. Block tile 128 x 128 x 32, 8 warps as 2 (M) x 4 (N), each warp a
// 64 x 32 tile = 4 x 2 WMMA accumulators. Shared tiles keep the global layout (so loads are straight
// 16-byte copies when aligned) and the fragments read them row- or column-major to match.

namespace wmma = nvcuda::wmma;
constexpr int HBM = 128, HBN = 128, HBK = 32, HPAD = 8;  // PAD keeps rows 16-byte aligned and off-bank

template <bool T>
struct TileShape {  // a tile of R rows x C columns of the stored matrix, padded rows
  static constexpr int R = T ? HBK : HBM, C = T ? HBM : HBK, LD = C + HPAD;
};

// Loads an R x C tile (origin r0, c0; rows/cols beyond nr/nc read as 0) of a row-major matrix with
// leading dimension ld into registers, 8 elements per chunk; `vec` when 16-byte loads are safe.
template <int R, int C, class E>
struct TileLoader {
  static constexpr int CHUNKS = R * C / 8 / kBlock;
  uint4 r[CHUNKS];
  __device__ void load(const E* src, int64_t ld, int64_t r0, int64_t c0, int64_t nr, int64_t nc, bool vec) {
#pragma unroll
    for (int e = 0; e < CHUNKS; e++) {
      const int q = threadIdx.x + e * kBlock, row = q / (C / 8), col = (q % (C / 8)) * 8;
      const int64_t gr = r0 + row, gc = c0 + col;
      if (vec && gr < nr && gc + 8 <= nc) {
        r[e] = *reinterpret_cast<const uint4*>(src + gr * ld + gc);
      } else {
        __align__(16) E tmp[8];
#pragma unroll
        for (int t = 0; t < 8; t++) tmp[t] = (gr < nr && gc + t < nc) ? src[gr * ld + gc + t] : E(0.f);
        r[e] = *reinterpret_cast<const uint4*>(tmp);
      }
    }
  }
  __device__ void store(E* dst) const {
#pragma unroll
    for (int e = 0; e < CHUNKS; e++) {
      const int q = threadIdx.x + e * kBlock, row = q / (C / 8), col = (q % (C / 8)) * 8;
      *reinterpret_cast<uint4*>(dst + row * (C + HPAD) + col) = r[e];
    }
  }
};

template <class E, bool TA, bool TB>
__global__ void __launch_bounds__(kBlock) hgemm_kernel(tk_cuda_gemm_half_args g, bool vecA, bool vecB, GemmEpilogue ep) {
  using SA = TileShape<TA>;   // TA: A stored K x M
  using SB = TileShape<!TB>;  // B stored K x N (not TB) or N x K (TB)
  using LayoutA = typename std::conditional<TA, wmma::col_major, wmma::row_major>::type;
  using LayoutB = typename std::conditional<TB, wmma::col_major, wmma::row_major>::type;
  __shared__ __align__(128) E As[SA::R * SA::LD];
  __shared__ __align__(128) E Bs[SB::R * SB::LD];
  __shared__ __align__(128) float Cs[8][16 * 16];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, wm = warp >> 2, wn = warp & 3;
  const int64_t m0 = int64_t(blockIdx.y) * HBM, n0 = int64_t(blockIdx.x) * HBN;

  for (int64_t bat = blockIdx.z; bat < g.batch; bat += gridDim.z) {
    const E* A = static_cast<const E*>(g.A) + bat * g.strideA;
    const E* B = static_cast<const E*>(g.B) + bat * g.strideB;
    float* C = g.C + bat * g.strideC;
    TileLoader<SA::R, SA::C, E> la;
    TileLoader<SB::R, SB::C, E> lb;
    // Stored-matrix coordinates of this block's K-slice k0.
    auto load = [&](int64_t k0) {
      if (TA) la.load(A, g.lda, k0, m0, g.K, g.M, vecA);
      else la.load(A, g.lda, m0, k0, g.M, g.K, vecA);
      if (TB) lb.load(B, g.ldb, n0, k0, g.N, g.K, vecB);
      else lb.load(B, g.ldb, k0, n0, g.K, g.N, vecB);
    };

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[4][2];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.f);

    load(0);
    for (int64_t k0 = 0; k0 < g.K; k0 += HBK) {
      la.store(As);
      lb.store(Bs);
      __syncthreads();
      if (k0 + HBK < g.K) load(k0 + HBK);
#pragma unroll
      for (int kk = 0; kk < HBK; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, E, LayoutA> fa[4];
        wmma::fragment<wmma::matrix_b, 16, 16, 16, E, LayoutB> fb[2];
#pragma unroll
        for (int i = 0; i < 4; i++) {
          const int row = wm * 64 + i * 16;  // m within the tile
          wmma::load_matrix_sync(fa[i], TA ? As + kk * SA::LD + row : As + row * SA::LD + kk, SA::LD);
        }
#pragma unroll
        for (int j = 0; j < 2; j++) {
          const int col = wn * 32 + j * 16;  // n within the tile
          wmma::load_matrix_sync(fb[j], TB ? Bs + col * SB::LD + kk : Bs + kk * SB::LD + col, SB::LD);
        }
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
          for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
      }
      __syncthreads();
    }

    // Epilogue through a per-warp 16 x 16 staging tile: alpha, beta and the ragged edges.
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int j = 0; j < 2; j++) {
        wmma::store_matrix_sync(Cs[warp], acc[i][j], 16, wmma::mem_row_major);
        __syncwarp();
        for (int e = lane; e < 256; e += 32) {
          const int64_t m = m0 + wm * 64 + i * 16 + e / 16, n = n0 + wn * 32 + j * 16 + e % 16;
          if (m < g.M && n < g.N) {
            float* c = C + m * g.ldc + n;
            const float v = g.beta == 0.f ? g.alpha * Cs[warp][e] : fmaf(g.alpha, Cs[warp][e], g.beta * *c);
            *c = gemm_epilogue(ep, v, bat * g.strideC + m * g.ldc + n, n);
          }
        }
        __syncwarp();
      }
  }
}

template <class E>
void launch_hgemm(const tk_cuda_gemm_half_args& g, const GemmEpilogue& ep = GemmEpilogue{}) {
  const dim3 grid(static_cast<unsigned>((g.N + HBN - 1) / HBN), static_cast<unsigned>((g.M + HBM - 1) / HBM),
                  static_cast<unsigned>(g.batch < 65535 ? g.batch : 65535));
  // 16-byte loads need every row start (and batch start) 8-element aligned.
  auto aligned = [&](const void* p, int64_t ld, int64_t stride) {
    return reinterpret_cast<uintptr_t>(p) % 16 == 0 && ld % 8 == 0 && (g.batch == 1 || stride % 8 == 0);
  };
  const bool va = aligned(g.A, g.lda, g.strideA), vb = aligned(g.B, g.ldb, g.strideB);
  if (g.transA) {
    if (g.transB) hgemm_kernel<E, true, true><<<grid, kBlock>>>(g, va, vb, ep);
    else hgemm_kernel<E, true, false><<<grid, kBlock>>>(g, va, vb, ep);
  } else {
    if (g.transB) hgemm_kernel<E, false, true><<<grid, kBlock>>>(g, va, vb, ep);
    else hgemm_kernel<E, false, false><<<grid, kBlock>>>(g, va, vb, ep);
  }
}

template <class E>
__global__ void convert_kernel(int64_t n, const float* src, E* dst) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = E(src[i]);
}

__device__ inline __nv_bfloat16 round_to(float x, __nv_bfloat16*) { return __float2bfloat16_rn(x); }
__device__ inline __half round_to(float x, __half*) { return __float2half_rn(x); }

// dst (batch x rows x cols, dense) = src (rows x cols with leading dim ld, matrices stride apart), rounded to E.
template <class E>
__global__ void pack_kernel(int64_t batch, int64_t rows, int64_t cols, const float* src, int64_t ld, int64_t stride, E* dst) {
  const int64_t n = batch * rows * cols;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = i / (rows * cols), r = i / cols % rows, c = i % cols;
    dst[i] = round_to(src[b * stride + r * ld + c], static_cast<E*>(nullptr));
  }
}

// Rounds a (batch x rows x cols, leading dim ld, stride apart) float32 operand into workspace slot
// `slot` as a dense E one; returns it.
template <class E>
E* packed(Slot slot, int64_t batch, int64_t rows, int64_t cols, const float* src, int64_t ld, int64_t stride) {
  const int64_t n = batch * rows * cols;
  E* dst = workspace_of<E>(slot, size_t(n > 0 ? n : 1));
  if (n > 0) {
    pack_kernel<E><<<grid_for(n), kBlock>>>(batch, rows, cols, src, ld, stride, dst);
    check_launch("gemm");
  }
  return dst;
}

// Autocast (GemmArgs::bf16 or ::fp16): A rounded to E, B too unless it is stored as bf16 (a frozen
// weight, read as it is on the bf16 path), then the tensor-core kernel with float32 accumulation.
template <class E>
void gemm_autocast(const GemmArgs& g) {
  const int64_t ar = g.transA ? g.K : g.M, ac = g.transA ? g.M : g.K;
  const int64_t br = g.transB ? g.N : g.K, bc = g.transB ? g.K : g.N;
  tk_cuda_gemm_half_args h{};
  h.dtype = std::is_same<E, __half>::value ? TK_CUDA_F16 : TK_CUDA_BF16; h.transA = g.transA; h.transB = g.transB;
  h.M = g.M; h.N = g.N; h.K = g.K; h.alpha = g.alpha; h.beta = g.beta;
  h.A = packed<E>(kSlotGemmA, g.batch, ar, ac, g.A, g.lda, g.strideA); h.lda = ac; h.strideA = ar * ac;
  if (g.b_dtype == TK_BF16) {
    h.B = g.B; h.ldb = g.ldb; h.strideB = g.strideB;
  } else {
    h.B = packed<E>(kSlotGemmB, g.batch, br, bc, static_cast<const float*>(g.B), g.ldb, g.strideB);
    h.ldb = bc; h.strideB = br * bc;
  }
  h.C = g.C; h.ldc = g.ldc; h.strideC = g.strideC;
  h.batch = g.batch;
  launch_hgemm<E>(h, g.ep);
}

}  // namespace

void gemm_f32(const GemmArgs& g) {
  if (g.M <= 0 || g.N <= 0 || g.batch <= 0) return;
  // The 128 x 128 tile when it still gives every SM a block, else 64 x 64 for more blocks.
  const int64_t big_tiles = ((g.M + 127) / 128) * ((g.N + 127) / 128) * g.batch;
  if (big_tiles >= sm_count()) launch_sgemm_for<2, 2, 8>(g);
  else launch_sgemm_for<1, 1, 16>(g);
  check_launch("gemm");
}

void gemm(const GemmArgs& g) {
  if (!g.bf16 && !g.fp16) return gemm_f32(g);
  if (g.M <= 0 || g.N <= 0 || g.batch <= 0) return;
  if (g.fp16 && g.b_dtype != TK_BF16) gemm_autocast<__half>(g);
  else gemm_autocast<__nv_bfloat16>(g);
  check_launch("gemm");
}

void gemm_half(const tk_cuda_gemm_half_args& g) {
  if (g.M <= 0 || g.N <= 0 || g.batch <= 0) return;
  if (g.dtype == TK_CUDA_BF16) launch_hgemm<__nv_bfloat16>(g);
  else launch_hgemm<__half>(g);
  check_launch("gemm_half");
}

void convert_f32(int64_t n, const float* src, void* dst, int dtype) {
  if (n <= 0) return;
  if (dtype == TK_CUDA_BF16) convert_kernel<__nv_bfloat16><<<grid_for(n), kBlock>>>(n, src, static_cast<__nv_bfloat16*>(dst));
  else convert_kernel<__half><<<grid_for(n), kBlock>>>(n, src, static_cast<__half*>(dst));
  check_launch("convert_f32");
}

}  // namespace cuda
}  // namespace tk
