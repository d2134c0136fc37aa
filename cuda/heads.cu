// Kernels of the task heads: tanh / relu / sigmoid / silu and their backward, strided copies, masked
// mean pooling, row-wise cosine similarity, row L2 normalisation, y = alpha·a + beta·b. The formulas are
// those of native/cpu/heads.cc; row reductions are one block per row, summed in double in a fixed tree.
#include "common.cuh"

namespace tk {
namespace cuda {
namespace {

constexpr float kNormEps = 1e-8f;  // the clamp of l2norm's saved norm
constexpr double kCosEps = 1e-8;   // the clamp of each of cosine's norms

#define TK_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)
// Row r of n for each block in turn; the condition is the same for every thread of a block, so block
// reductions inside stay safe.
#define TK_ROWS(r, n) for (int64_t r = blockIdx.x; r < (n); r += gridDim.x)

__device__ __forceinline__ float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

__device__ __forceinline__ float unary(int kind, float x) {
  switch (kind) {
    case UNARY_TANH: return tanhf(x);
    case UNARY_RELU: return x < 0.f ? 0.f : x;  // NaN stays NaN
    case UNARY_SIGMOID: return sigmoid(x);
    default: return x * sigmoid(x);  // UNARY_SILU
  }
}

// dy · f'(x) from the forward's output y (tanh, relu, sigmoid) or input x (silu).
__device__ __forceinline__ float unary_grad(int kind, const float* x, const float* y, int64_t i, float g) {
  switch (kind) {
    case UNARY_TANH: return g * (1.f - y[i] * y[i]);
    case UNARY_RELU: return 0.f < y[i] ? g : 0.f;
    case UNARY_SIGMOID: return g * (y[i] * (1.f - y[i]));
    default: {  // UNARY_SILU
      const float s = sigmoid(x[i]);
      return g * (s * fmaf(x[i], 1.f - s, 1.f));
    }
  }
}

__global__ void unary_forward_kernel(int64_t n, const float* x, float* y, int kind) {
  TK_GRID_STRIDE(i, n) y[i] = unary(kind, x[i]);
}

__global__ void unary_backward_kernel(int64_t n, const float* x, const float* y, const float* dy, float* dx, int kind) {
  TK_GRID_STRIDE(i, n) dx[i] = unary_grad(kind, x, y, i, dy[i]);
}

__global__ void copy_strided_kernel(CopyStridedArgs a) {
  TK_GRID_STRIDE(i, a.rows * a.cols) {
    const int64_t r = i / a.cols, c = i - r * a.cols;
    const float v = a.src[r * a.src_ld + c];
    float* d = a.dst + r * a.dst_ld + c;
    *d = a.accumulate ? *d + v : v;
  }
}

// One thread per (b, c): the real rows in t order, then / count (as the CPU kernel: the same bits).
__global__ void masked_mean_forward_kernel(MaskedMeanArgs a) {
  TK_GRID_STRIDE(i, a.B * a.C) {
    const int64_t b = i / a.C, c = i - b * a.C;
    float s = 0.f;
    int64_t count = 0;
    for (int64_t t = 0; t < a.T; t++)
      if (a.mask[b * a.T + t]) {
        s += a.x[(b * a.T + t) * a.C + c];
        count++;
      }
    a.y[i] = count ? s / static_cast<float>(count) : 0.f;
  }
}

// counts[b] = real tokens of row b (exact in float: far below 2^24).
__global__ void __launch_bounds__(kBlock) mask_count_kernel(int64_t B, int64_t T, const uint8_t* mask, float* counts) {
  TK_ROWS(b, B) {
    float s = 0.f;
    for (int64_t t = threadIdx.x; t < T; t += blockDim.x) s += mask[b * T + t] ? 1.f : 0.f;
    s = block_sum(s);
    if (threadIdx.x == 0) counts[b] = s;
  }
}

__global__ void masked_mean_backward_kernel(MaskedMeanBackwardArgs a, const float* counts) {
  TK_GRID_STRIDE(i, a.B * a.T * a.C) {
    const int64_t bt = i / a.C, b = bt / a.T, c = i - bt * a.C;
    a.dx[i] = a.mask[bt] ? a.dy[b * a.C + c] / counts[b] : 0.f;
  }
}

struct CosineRow {
  double dot, na, nb;
  bool a_free, b_free;  // the norm was not clamped
};
// Every thread of the block gets the row's sums (a fixed tree).
__device__ CosineRow cosine_row(const float* a, const float* b, int64_t C) {
  double dot = 0, saa = 0, sbb = 0;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const double u = a[c], v = b[c];
    dot += u * v;
    saa += u * u;
    sbb += v * v;
  }
  dot = block_sum(dot);
  saa = block_sum(saa);
  sbb = block_sum(sbb);
  const double na = sqrt(saa), nb = sqrt(sbb);
  return {dot, fmax(na, kCosEps), fmax(nb, kCosEps), na > kCosEps, nb > kCosEps};
}

__global__ void __launch_bounds__(kBlock) cosine_forward_kernel(CosineArgs a) {
  TK_ROWS(r, a.N) {
    const CosineRow k = cosine_row(a.a + r * a.C, a.b + r * a.C, a.C);
    if (threadIdx.x == 0) a.y[r] = static_cast<float>(k.dot / (k.na * k.nb));
  }
}

__global__ void __launch_bounds__(kBlock) cosine_backward_kernel(CosineBackwardArgs a) {
  const int64_t C = a.C;
  TK_ROWS(r, a.N) {
    const float *u = a.a + r * C, *v = a.b + r * C;
    const CosineRow k = cosine_row(u, v, C);
    const double g = a.dy[r], cos = k.dot / (k.na * k.nb), cross = g / (k.na * k.nb);
    const double self_a = k.a_free ? g * cos / (k.na * k.na) : 0.0;
    const double self_b = k.b_free ? g * cos / (k.nb * k.nb) : 0.0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      if (a.da) a.da[r * C + c] = static_cast<float>(cross * v[c] - self_a * u[c]);
      if (a.db) a.db[r * C + c] = static_cast<float>(cross * u[c] - self_b * v[c]);
    }
  }
}

// y may alias x: every read of x for the sum precedes the barriers of block_sum, every write follows.
__global__ void __launch_bounds__(kBlock) l2norm_forward_kernel(L2NormArgs a) {
  const int64_t C = a.C;
  TK_ROWS(r, a.N) {
    const float* x = a.x + r * C;
    double ss = 0;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) ss += double(x[c]) * x[c];
    ss = block_sum(ss);
    const float n = fmaxf(static_cast<float>(sqrt(ss)), kNormEps);
    if (threadIdx.x == 0) a.norm[r] = n;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) a.y[r * C + c] = x[c] / n;
  }
}

// dx may alias dy: the same ordering as above.
__global__ void __launch_bounds__(kBlock) l2norm_backward_kernel(L2NormBackwardArgs a) {
  const int64_t C = a.C;
  TK_ROWS(r, a.N) {
    const float *y = a.y + r * C, *dy = a.dy + r * C;
    const float nf = a.norm[r];
    double s = 0;  // y·dy, only where the norm depends on x
    if (nf > kNormEps)
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += double(y[c]) * dy[c];
    s = block_sum(s);
    const double n = nf;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) a.dx[r * C + c] = static_cast<float>((dy[c] - y[c] * s) / n);
  }
}

// ap: one float on the device (the upstream gradient), read by every thread; null means 1.
__global__ void axpby_kernel(AxpbyArgs a) {
  const float k = a.alpha * (a.ap ? a.ap[0] : 1.f);
  if (!a.b || a.beta == 0.f) {
    TK_GRID_STRIDE(i, a.n) a.y[i] = k * a.a[i];
  } else {
    TK_GRID_STRIDE(i, a.n) a.y[i] = fmaf(k, a.a[i], a.beta * a.b[i]);
  }
}

// Blocks for the TK_ROWS loop: one per row up to a cap (a row's block sums stay block-local).
unsigned rows_grid(int64_t rows) {
  const int64_t cap = int64_t(sm_count()) * 32;
  return static_cast<unsigned>(rows < cap ? rows : cap);
}

}  // namespace

void unary_forward(const UnaryArgs& a) {
  if (a.n <= 0) return;
  unary_forward_kernel<<<grid_for(a.n), kBlock>>>(a.n, a.x, a.y, a.kind);
  check_launch("unary_forward");
}

void unary_backward(const UnaryBackwardArgs& a) {
  if (a.n <= 0) return;
  unary_backward_kernel<<<grid_for(a.n), kBlock>>>(a.n, a.x, a.y, a.dy, a.dx, a.kind);
  check_launch("unary_backward");
}

void copy_strided(const CopyStridedArgs& a) {
  if (a.rows <= 0 || a.cols <= 0) return;
  copy_strided_kernel<<<grid_for(a.rows * a.cols), kBlock>>>(a);
  check_launch("copy_strided");
}

void masked_mean_forward(const MaskedMeanArgs& a) {
  if (a.B <= 0) return;
  masked_mean_forward_kernel<<<grid_for(a.B * a.C), kBlock>>>(a);
  check_launch("masked_mean_forward");
}

void masked_mean_backward(const MaskedMeanBackwardArgs& a) {
  if (a.B <= 0 || a.T <= 0) return;
  float* counts = workspace_of<float>(kSlotReduce, size_t(a.B));
  mask_count_kernel<<<rows_grid(a.B), kBlock>>>(a.B, a.T, a.mask, counts);
  check_launch("masked_mean_backward");
  masked_mean_backward_kernel<<<grid_for(a.B * a.T * a.C), kBlock>>>(a, counts);
  check_launch("masked_mean_backward");
}

void cosine_forward(const CosineArgs& a) {
  if (a.N <= 0) return;
  cosine_forward_kernel<<<rows_grid(a.N), kBlock>>>(a);
  check_launch("cosine_forward");
}

void cosine_backward(const CosineBackwardArgs& a) {
  if (a.N <= 0 || (!a.da && !a.db)) return;
  cosine_backward_kernel<<<rows_grid(a.N), kBlock>>>(a);
  check_launch("cosine_backward");
}

void l2norm_forward(const L2NormArgs& a) {
  if (a.N <= 0) return;
  l2norm_forward_kernel<<<rows_grid(a.N), kBlock>>>(a);
  check_launch("l2norm_forward");
}

void l2norm_backward(const L2NormBackwardArgs& a) {
  if (a.N <= 0) return;
  l2norm_backward_kernel<<<rows_grid(a.N), kBlock>>>(a);
  check_launch("l2norm_backward");
}

void axpby(const AxpbyArgs& a) {
  if (a.n <= 0) return;
  axpby_kernel<<<grid_for(a.n), kBlock>>>(a);
  check_launch("axpby");
}

}  // namespace cuda
}  // namespace tk
