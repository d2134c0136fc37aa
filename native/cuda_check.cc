// The CPU-vs-CUDA comparison (ggml's test-backend-ops): one section per op below, each with its cases
// (shapes, options) and its tolerance. A case is written once: Tensor holds the same data on both
// backends, Check::run fills the op's args for either side and runs it through tk_backend, compare
// reads both results back. Everything goes through the backend interface (alloc, copy, run,
// synchronize), so the comparison exercises the same path the addon uses.
#include "cuda_check.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "backend.h"

namespace tk {
namespace {

void ok(int rc, const char* err) {
  if (rc != TK_OK) throw std::runtime_error(err);
}

enum Side { kCpu = 0, kGpu = 1 };

// n elements of T on both backends, freed on scope exit; t[kCpu] and t[kGpu] are the two copies.
template <class T>
class Tensor {
 public:
  Tensor(const tk_backend* be[2], const std::vector<T>& host) : n_(host.size()) {
    for (int s = 0; s < 2; s++) {
      be_[s] = be[s];
      char err[512] = "";
      ok(be_[s]->alloc(&p_[s], std::max<size_t>(n_, 1) * sizeof(T), err, sizeof err), err);
      ok(be_[s]->copy(p_[s], host.data(), n_ * sizeof(T), TK_COPY_H2D, err, sizeof err), err);
    }
  }
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;
  ~Tensor() {
    char err[512];
    for (int s = 0; s < 2; s++) be_[s]->free(p_[s], err, sizeof err);
  }
  T* operator[](int side) const { return static_cast<T*>(p_[side]); }
  std::vector<T> read(int side) const {
    std::vector<T> host(n_);
    char err[512] = "";
    ok(be_[side]->copy(host.data(), p_[side], n_ * sizeof(T), TK_COPY_D2H, err, sizeof err), err);
    return host;
  }

 private:
  const tk_backend* be_[2];
  void* p_[2] = {nullptr, nullptr};
  size_t n_;
};
using TensorF = Tensor<float>;

// Deterministic test data: xorshift64* uniforms, normals by Box-Muller.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  double uniform() {
    s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
    return static_cast<double>((s * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
  }
  std::vector<float> normal(size_t n, float scale = 1.f) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; i++) {
      const double u = std::max(uniform(), 1e-12), w = uniform();
      v[i] = static_cast<float>(std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * w)) * scale;
    }
    return v;
  }
};

class Check {
 public:
  explicit Check(const CudaBackend& cuda) : cuda_(cuda) {
    be_[kCpu] = &cpu_backend();
    be_[kGpu] = &cuda.backend;
  }
  const CudaBackend& cuda() const { return cuda_; }
  Rng rng{1234};
  std::vector<CudaOpCheck> out;

  template <class T>
  Tensor<T> tensor(const std::vector<T>& host) { return Tensor<T>(be_, host); }
  TensorF normal(size_t n, float scale = 1.f) { return tensor(rng.normal(n, scale)); }
  // Filled with NaN: an output the op must write entirely.
  TensorF output(size_t n) { return tensor(std::vector<float>(n, NAN)); }

  // Runs op on both backends; fill(args, side) sets the args for one side. Returns both args structs
  // (for ops that write results into them).
  template <int op, class F>
  std::pair<std::remove_const_t<typename OpArgs<op>::type>, std::remove_const_t<typename OpArgs<op>::type>> run(F fill) {
    std::remove_const_t<typename OpArgs<op>::type> a[2];
    for (int s = 0; s < 2; s++) {
      fill(a[s], s);
      run_op(*be_[s], op, &a[s]);
    }
    return {a[kCpu], a[kGpu]};
  }

  void compare(int op, const std::string& name, const TensorF& t, double tolerance) {
    sync();
    compare(op, name, t.read(kCpu), t.read(kGpu), tolerance);
  }
  void compare(int op, const std::string& name, const std::vector<float>& ref, const std::vector<float>& got,
               double tolerance) {
    double diff = 0, big = 0;
    for (size_t i = 0; i < ref.size(); i++) {
      const double r = ref[i], g = got[i];
      if (std::isinf(r) || std::isinf(g)) {
        if (r != g) diff = INFINITY;
        continue;
      }
      const double d = std::fabs(r - g);
      diff = std::isnan(d) ? INFINITY : std::max(diff, d);
      big = std::max(big, std::fabs(r));
    }
    add(op, name, diff, big, tolerance);
  }
  void compare_scalar(int op, const std::string& name, double ref, double got, double tolerance) {
    add(op, name, std::isnan(got - ref) ? INFINITY : std::fabs(got - ref), std::fabs(ref), tolerance);
  }

 private:
  const CudaBackend& cuda_;
  const tk_backend* be_[2];

  void sync() {
    char err[512] = "";
    for (const tk_backend* be : be_) ok(be->synchronize(err, sizeof err), err);
  }
  void add(int op, const std::string& name, double diff, double big, double tolerance) {
    out.push_back({op >= 0 ? tk_op_name(op) : "gemm_half", name, diff, big, tolerance});
  }
};

// Tolerances, relative to max(1, largest |CPU value|).
constexpr double kExact = 0;      // both sides do the same float operations in the same order
constexpr double kFloat = 1e-4;   // float32 results of different summation orders
constexpr double kDouble = 1e-6;  // results accumulated in double

// ---- gemm ------------------------------------------------------------------------------------------
uint16_t float_to_bf16(float f) {  // round to nearest even (no NaN in these inputs)
  uint32_t x;
  std::memcpy(&x, &f, 4);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
float bf16_to_float(uint16_t b);

// How B is stored and multiplied: float; bf16 (a frozen weight) widened to float on both sides; bf16 B
// with GemmArgs::bf16, which CUDA runs on tensor cores with A rounded to bf16: the CPU side gets A
// rounded already and multiplies in float, so both sides multiply the same values; a float B with
// GemmArgs::bf16 (bf16 autocast), which CUDA rounds to bf16 with A: the CPU side gets both rounded.
enum GemmMode { kGemmF32, kGemmBf16B, kGemmBf16Cores, kGemmAutocast };

void check_gemm(Check& c) {
  // pad: extra columns in every leading dimension (the matrices are sub-matrices of wider ones).
  struct Case { const char* name; int ta, tb; int64_t M, N, K, batch; float alpha, beta; int64_t pad; GemmMode mode; };
  const Case cases[] = {
      {"gemm NN", 0, 0, 67, 45, 130, 1, 0.7f, 0.5f, 0, kGemmF32},    {"gemm TN", 1, 0, 67, 45, 130, 1, 1.f, 0.f, 0, kGemmF32},
      {"gemm NT", 0, 1, 33, 70, 17, 1, 1.f, -1.f, 0, kGemmF32},      {"gemm TT", 1, 1, 5, 129, 64, 1, 2.f, 0.f, 0, kGemmF32},
      {"gemm 1x1x1", 0, 0, 1, 1, 1, 1, 1.f, 0.f, 0, kGemmF32},       {"gemm sub-matrix TN", 1, 0, 40, 30, 20, 1, 1.f, 1.f, 3, kGemmF32},
      {"gemm batched", 0, 1, 300, 260, 200, 2, 1.f, 0.f, 0, kGemmF32}, {"gemm large tile", 0, 0, 1600, 1500, 70, 1, 1.f, 0.f, 0, kGemmF32},
      {"gemm bf16 B NN", 0, 0, 67, 45, 130, 1, 0.7f, 0.5f, 0, kGemmBf16B},
      {"gemm bf16 B NT (linear forward)", 0, 1, 33, 70, 17, 1, 1.f, -1.f, 0, kGemmBf16B},
      {"gemm bf16 B TT", 1, 1, 5, 129, 64, 1, 2.f, 0.f, 0, kGemmBf16B},
      {"gemm bf16 B sub-matrix TN", 1, 0, 40, 30, 20, 1, 1.f, 1.f, 3, kGemmBf16B},
      {"gemm bf16 B batched", 0, 1, 300, 260, 200, 2, 1.f, 0.f, 0, kGemmBf16B},
      {"gemm bf16 B large tile", 0, 0, 1600, 1500, 70, 1, 1.f, 0.f, 0, kGemmBf16B},
      {"gemm bf16 cores NT", 0, 1, 200, 136, 96, 1, 1.f, 0.f, 0, kGemmBf16Cores},
      {"gemm bf16 cores NN beta", 0, 0, 77, 51, 45, 1, 0.5f, 1.f, 0, kGemmBf16Cores},
      {"gemm bf16 cores TN sub-matrix", 1, 0, 40, 30, 20, 1, 1.f, 1.f, 3, kGemmBf16Cores},
      {"gemm bf16 cores batched TT", 1, 1, 70, 50, 33, 2, 1.f, 0.5f, 1, kGemmBf16Cores},
      {"gemm bf16 autocast NT (linear forward)", 0, 1, 200, 136, 96, 1, 1.f, 0.f, 0, kGemmAutocast},
      {"gemm bf16 autocast NN (linear dX) beta", 0, 0, 77, 51, 45, 1, 0.5f, 1.f, 0, kGemmAutocast},
      {"gemm bf16 autocast TN (linear dW) sub-matrix", 1, 0, 40, 30, 20, 1, 1.f, 1.f, 3, kGemmAutocast},
      {"gemm bf16 autocast batched TT", 1, 1, 70, 50, 33, 2, 1.f, 0.5f, 1, kGemmAutocast},
  };
  for (const Case& k : cases) {
    const int64_t lda = (k.ta ? k.M : k.K) + k.pad, ldb = (k.tb ? k.K : k.N) + k.pad, ldc = k.N + k.pad;
    const int64_t sa = (k.ta ? k.K : k.M) * lda, sb = (k.tb ? k.N : k.K) * ldb, sc = k.M * ldc;
    std::vector<float> A0 = c.rng.normal(sa * k.batch), B0 = c.rng.normal(sb * k.batch), Ar(A0), Br(B0);
    std::vector<uint16_t> B16(B0.size());
    for (size_t i = 0; i < B0.size(); i++) B16[i] = float_to_bf16(B0[i]);
    for (float& a : Ar) a = bf16_to_float(float_to_bf16(a));
    for (float& b : Br) b = bf16_to_float(float_to_bf16(b));
    TensorF A = c.tensor(A0), A_rounded = c.tensor(Ar), B = c.tensor(B0), B_rounded = c.tensor(Br);
    const bool cores = k.mode == kGemmBf16Cores || k.mode == kGemmAutocast;
    Tensor<uint16_t> Bh = c.tensor(B16);
    std::vector<float> C0 = c.rng.normal(sc * k.batch);
    if (k.beta == 0.f) std::fill(C0.begin(), C0.end(), NAN);  // beta = 0 must not read C
    TensorF C = c.tensor(C0);
    c.run<TK_OP_gemm>([&](GemmArgs& g, int s) {
      g.transA = k.ta; g.transB = k.tb; g.M = k.M; g.N = k.N; g.K = k.K; g.alpha = k.alpha; g.beta = k.beta;
      g.lda = lda; g.ldb = ldb; g.ldc = ldc; g.strideA = sa; g.strideB = sb; g.strideC = sc; g.batch = k.batch;
      g.A = cores && s == kCpu ? A_rounded[s] : A[s];
      const bool f32_b = k.mode == kGemmF32 || k.mode == kGemmAutocast;
      g.B = !f32_b ? static_cast<const void*>(Bh[s]) : k.mode == kGemmAutocast && s == kCpu ? B_rounded[s] : B[s];
      g.b_dtype = f32_b ? TK_F32 : TK_BF16;
      g.bf16 = cores && s == kGpu;
      g.C = C[s];
    });
    c.compare(TK_OP_gemm, k.name, C, kFloat);
  }
  // The epilogue (GemmArgs::ep): bias + GELU with the pre-activation, bias + residual, batched, on the
  // float32 kernel and on tensor cores (bf16 B).
  struct EpCase { const char* name; int64_t M, N, K, batch; int act; bool residual; GemmMode mode; };
  const EpCase ep_cases[] = {
      {"gemm epilogue bias+gelu+pre", 70, 45, 130, 1, GEMM_ACT_GELU_ERF, false, kGemmF32},
      {"gemm epilogue bias+gelu_tanh batched", 33, 70, 17, 2, GEMM_ACT_GELU_TANH, false, kGemmF32},
      {"gemm epilogue bias+residual", 67, 45, 130, 1, GEMM_ACT_NONE, true, kGemmF32},
      {"gemm epilogue bf16 cores bias+gelu+pre", 200, 136, 96, 1, GEMM_ACT_GELU_ERF, false, kGemmBf16Cores},
      {"gemm epilogue bf16 cores bias+residual", 77, 51, 45, 2, GEMM_ACT_NONE, true, kGemmBf16Cores},
  };
  for (const EpCase& k : ep_cases) {
    const int64_t nA = k.batch * k.M * k.K, nB = k.batch * k.N * k.K, nC = k.batch * k.M * k.N;
    std::vector<float> A0 = c.rng.normal(nA), B0 = c.rng.normal(nB), Ar(A0);
    std::vector<uint16_t> B16(B0.size());
    for (size_t i = 0; i < B0.size(); i++) B16[i] = float_to_bf16(B0[i]);
    for (float& a : Ar) a = bf16_to_float(float_to_bf16(a));
    TensorF A = c.tensor(A0), A_rounded = c.tensor(Ar), B = c.tensor(B0), bias = c.normal(k.N), res = c.normal(nC);
    Tensor<uint16_t> Bh = c.tensor(B16);
    TensorF C = c.output(nC), pre = c.output(nC);
    const bool cores = k.mode == kGemmBf16Cores;
    c.run<TK_OP_gemm>([&](GemmArgs& g, int s) {
      g.transB = 1; g.M = k.M; g.N = k.N; g.K = k.K; g.batch = k.batch;
      g.lda = k.K; g.ldb = k.K; g.ldc = k.N; g.strideA = k.M * k.K; g.strideB = k.N * k.K; g.strideC = k.M * k.N;
      g.A = cores && s == kCpu ? A_rounded[s] : A[s];
      g.B = cores ? static_cast<const void*>(Bh[s]) : B[s];
      g.b_dtype = cores ? TK_BF16 : TK_F32;
      g.bf16 = cores && s == kGpu;
      g.C = C[s];
      g.ep.bias = bias[s]; g.ep.act = k.act;
      g.ep.residual = k.residual ? res[s] : nullptr;
      g.ep.pre = k.act != GEMM_ACT_NONE ? pre[s] : nullptr;
    });
    c.compare(TK_OP_gemm, k.name, C, kFloat);
    if (k.act != GEMM_ACT_NONE) c.compare(TK_OP_gemm, std::string(k.name) + " pre", pre, kFloat);
  }
}

// ---- gemm_half: the CUDA library's 16-bit tensor-core GEMM (not an op of the list) -------------------
float half_to_float(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 31, man = h & 1023;
  float v;
  if (exp == 0) v = std::ldexp(static_cast<float>(man), -24);
  else if (exp == 31) v = man ? NAN : INFINITY;
  else v = std::ldexp(static_cast<float>(man | 1024), static_cast<int>(exp) - 25);
  return sign ? -v : v;
}
float bf16_to_float(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

// Inputs rounded to 16 bits on the device; the reference is the CPU GEMM on the rounded values.
void check_gemm_half(Check& c) {
  struct Case { const char* name; int dtype, ta, tb; int64_t M, N, K; float beta; };
  const Case cases[] = {
      {"gemm_bf16 NN", TK_CUDA_BF16, 0, 0, 200, 136, 96, 0.f}, {"gemm_bf16 TT", TK_CUDA_BF16, 1, 1, 77, 51, 45, 1.f},
      {"gemm_f16 NT", TK_CUDA_F16, 0, 1, 130, 129, 33, 0.f},   {"gemm_f16 TN", TK_CUDA_F16, 1, 0, 64, 64, 64, 0.5f},
  };
  const CudaBackend& cu = c.cuda();
  for (const Case& k : cases) {
    TensorF A = c.normal(k.M * k.K), B = c.normal(k.K * k.N), C = c.normal(k.M * k.N);
    Tensor<uint16_t> A16 = c.tensor(std::vector<uint16_t>(k.M * k.K)), B16 = c.tensor(std::vector<uint16_t>(k.K * k.N));
    char err[512] = "";
    ok(cu.convert_f32(k.M * k.K, A[kGpu], A16[kGpu], k.dtype, err, sizeof err), err);
    ok(cu.convert_f32(k.K * k.N, B[kGpu], B16[kGpu], k.dtype, err, sizeof err), err);
    tk_cuda_gemm_half_args h{};
    h.dtype = k.dtype; h.transA = k.ta; h.transB = k.tb; h.M = k.M; h.N = k.N; h.K = k.K; h.alpha = 1.f; h.beta = k.beta;
    h.A = A16[kGpu]; h.lda = k.ta ? k.M : k.K; h.B = B16[kGpu]; h.ldb = k.tb ? k.K : k.N;
    h.C = C[kGpu]; h.ldc = k.N; h.batch = 1;
    ok(cu.gemm_half(&h, err, sizeof err), err);
    auto widen = [&](const std::vector<uint16_t>& v) {
      std::vector<float> f(v.size());
      for (size_t i = 0; i < v.size(); i++) f[i] = k.dtype == TK_CUDA_BF16 ? bf16_to_float(v[i]) : half_to_float(v[i]);
      return f;
    };
    std::vector<float> Ar = widen(A16.read(kGpu)), Br = widen(B16.read(kGpu)), ref = C.read(kCpu);
    GemmArgs g;
    g.transA = k.ta; g.transB = k.tb; g.M = k.M; g.N = k.N; g.K = k.K; g.alpha = 1.f; g.beta = k.beta;
    g.A = Ar.data(); g.lda = h.lda; g.B = Br.data(); g.ldb = h.ldb; g.C = ref.data(); g.ldc = k.N;
    run<TK_OP_gemm>(cpu_backend(), g);
    c.compare(-1, k.name, ref, C.read(kGpu), kFloat);
  }
}

// GemmArgs::fp16 (fp16 autocast, CUDA only): A and B rounded to IEEE half on the device; the reference is
// the CPU GEMM on the values the device's own conversion gives.
void check_gemm_fp16(Check& c) {
  struct Case { const char* name; int ta, tb; int64_t M, N, K; float beta; };
  const Case cases[] = {{"gemm fp16 autocast NT (linear forward)", 0, 1, 200, 136, 96, 0.f},
                        {"gemm fp16 autocast TN (linear dW) beta", 1, 0, 64, 70, 45, 1.f},
                        {"gemm fp16 autocast NN (linear dX)", 0, 0, 33, 129, 64, 0.f}};
  const CudaBackend& cu = c.cuda();
  for (const Case& k : cases) {
    TensorF A = c.normal(k.M * k.K), B = c.normal(k.K * k.N), C = c.normal(k.M * k.N);
    Tensor<uint16_t> A16 = c.tensor(std::vector<uint16_t>(k.M * k.K)), B16 = c.tensor(std::vector<uint16_t>(k.K * k.N));
    char err[512] = "";
    ok(cu.convert_f32(k.M * k.K, A[kGpu], A16[kGpu], TK_CUDA_F16, err, sizeof err), err);
    ok(cu.convert_f32(k.K * k.N, B[kGpu], B16[kGpu], TK_CUDA_F16, err, sizeof err), err);
    GemmArgs g;
    g.transA = k.ta; g.transB = k.tb; g.M = k.M; g.N = k.N; g.K = k.K; g.alpha = 1.f; g.beta = k.beta;
    g.lda = k.ta ? k.M : k.K; g.ldb = k.tb ? k.K : k.N; g.ldc = k.N;
    GemmArgs d = g;
    d.A = A[kGpu]; d.B = B[kGpu]; d.C = C[kGpu]; d.fp16 = 1;
    run<TK_OP_gemm>(cu.backend, d);
    auto widen = [](const std::vector<uint16_t>& v) {
      std::vector<float> f(v.size());
      for (size_t i = 0; i < v.size(); i++) f[i] = half_to_float(v[i]);
      return f;
    };
    std::vector<float> Ar = widen(A16.read(kGpu)), Br = widen(B16.read(kGpu)), ref = C.read(kCpu);
    g.A = Ar.data(); g.B = Br.data(); g.C = ref.data();
    run<TK_OP_gemm>(cpu_backend(), g);
    c.compare(TK_OP_gemm, k.name, ref, C.read(kGpu), kFloat);
  }
}

// ---- attention_forward, attention_backward -----------------------------------------------------------
void check_attention(Check& c) {
  struct Case { const char* name; int64_t B, H, Tq, Tk, D; int causal; float p; bool mask, packed; };
  const Case cases[] = {
      {"attention D=64 mask", 2, 3, 37, 53, 64, 0, 0.f, true, true},
      {"attention D=32 causal dropout", 2, 2, 70, 70, 32, 1, 0.2f, true, false},
      {"attention D=100 dropout", 1, 2, 33, 40, 100, 0, 0.1f, false, false},
      {"attention D=160 causal", 1, 1, 20, 24, 160, 1, 0.f, false, false},
      {"attention Tq=Tk=D=1", 1, 1, 1, 1, 1, 0, 0.f, false, false},
      {"attention causal Tq>Tk", 1, 2, 130, 90, 64, 1, 0.1f, false, false},
      {"attention causal Tq<Tk D=48", 2, 1, 20, 150, 48, 1, 0.f, true, false},
  };
  for (const Case& k : cases) {
    const int64_t HD = k.H * k.D;
    // packed: q, k, v (and their gradients) are read as one third of (B, T, 3·H·D) rows, as from a fused
    // qkv projection: ld = 3·H·D and an offset of H·D or 2·H·D.
    const int64_t ld = k.packed ? 3 * HD : HD, koff = k.packed ? HD : 0, voff = k.packed ? 2 * HD : 0;
    TensorF q = c.normal(k.B * k.Tq * ld), kk = c.normal(k.B * k.Tk * ld), v = c.normal(k.B * k.Tk * ld);
    TensorF dout = c.normal(k.B * k.Tq * HD);
    std::vector<uint8_t> mask_host(k.B * k.Tk, 1);
    if (k.mask) {
      for (int64_t j = 0; j < k.Tk; j += 3) mask_host[j] = 0;                           // batch 0: some padding
      if (k.B > 1) std::fill(mask_host.begin() + k.Tk, mask_host.begin() + 2 * k.Tk, 0);  // batch 1: no key at all
    }
    Tensor<uint8_t> mask = c.tensor(mask_host);
    TensorF o = c.output(k.B * k.Tq * HD), lse = c.output(k.B * k.H * k.Tq);
    std::vector<float> zeros_q(k.B * k.Tq * ld, 0.f), zeros_kv(k.B * k.Tk * ld, 0.f);
    TensorF dq = c.tensor(zeros_q), dk = c.tensor(zeros_kv), dv = c.tensor(zeros_kv);
    auto forward = [&](AttentionArgs& a, int s) {
      a.B = k.B; a.H = k.H; a.Tq = k.Tq; a.Tk = k.Tk; a.D = k.D;
      a.ldq = ld; a.ldk = ld; a.ldv = ld; a.ldo = HD;
      a.causal = k.causal; a.scale = 1.f / std::sqrt(static_cast<float>(k.D));
      a.dropout_p = k.p; a.seed = 77; a.offset = 12345;
      a.q = q[s]; a.k = kk[s] + koff; a.v = v[s] + voff; a.o = o[s]; a.lse = lse[s];
      a.key_mask = k.mask ? mask[s] : nullptr;
    };
    c.run<TK_OP_attention_forward>(forward);
    c.run<TK_OP_attention_backward>([&](AttentionBackwardArgs& g, int s) {
      forward(g.fwd, s);
      g.dout = dout[s]; g.lddo = HD;
      g.dq = dq[s]; g.lddq = ld; g.dk = dk[s] + koff; g.lddk = ld; g.dv = dv[s] + voff; g.lddv = ld;
    });
    const std::string n = k.name;
    c.compare(TK_OP_attention_forward, n + " forward o", o, kFloat);
    c.compare(TK_OP_attention_forward, n + " forward lse", lse, kFloat);
    c.compare(TK_OP_attention_backward, n + " backward dq", dq, kFloat);
    c.compare(TK_OP_attention_backward, n + " backward dk", dk, kFloat);
    c.compare(TK_OP_attention_backward, n + " backward dv", dv, kFloat);
  }
}

// ---- layernorm_forward, layernorm_backward -----------------------------------------------------------
void check_layernorm(Check& c) {
  struct Case { int64_t rows, C; bool affine; bool residual = false; };
  for (const Case& k : {Case{13, 300, true}, Case{5, 64, false}, Case{40, 1024, true}, Case{300, 7, true},
                        Case{40, 768, true, true}, Case{7, 33, false, true}}) {
    const int64_t n = k.rows * k.C;
    std::vector<float> x0 = c.rng.normal(n, 2.f);
    for (float& xi : x0) xi += 3.f;  // an offset mean: a one-pass variance would lose digits here
    TensorF x = c.tensor(x0), gamma = c.normal(k.C), beta = c.normal(k.C), dy = c.normal(n);
    TensorF y = c.output(n), mean = c.output(k.rows), rstd = c.output(k.rows), dx = c.output(n);
    TensorF dgamma = c.normal(k.C), dbeta = c.normal(k.C), res = c.normal(n);
    c.run<TK_OP_layernorm_forward>([&](LayerNormArgs& f, int s) {
      f.rows = k.rows; f.C = k.C; f.eps = 1e-5f;
      f.x = x[s]; f.gamma = k.affine ? gamma[s] : nullptr; f.beta = k.affine ? beta[s] : nullptr;
      f.y = y[s]; f.mean = mean[s]; f.rstd = rstd[s];
      f.residual = k.residual ? res[s] : nullptr;
    });
    c.run<TK_OP_layernorm_backward>([&](LayerNormBackwardArgs& b, int s) {
      b.rows = k.rows; b.C = k.C; b.x = x[s]; b.gamma = k.affine ? gamma[s] : nullptr;
      b.mean = mean[s]; b.rstd = rstd[s]; b.dy = dy[s]; b.dx = dx[s]; b.dgamma = dgamma[s]; b.dbeta = dbeta[s];
      b.residual = k.residual ? res[s] : nullptr;
    });
    const std::string name = "layernorm C=" + std::to_string(k.C) + (k.residual ? " +residual" : "");
    c.compare(TK_OP_layernorm_forward, name + " forward y", y, kFloat);
    c.compare(TK_OP_layernorm_forward, name + " forward rstd", rstd, kFloat);
    c.compare(TK_OP_layernorm_backward, name + " backward dx", dx, kFloat);
    c.compare(TK_OP_layernorm_backward, name + " backward dgamma", dgamma, kFloat);
    c.compare(TK_OP_layernorm_backward, name + " backward dbeta", dbeta, kFloat);
  }
}

// ---- gelu_forward, gelu_backward ---------------------------------------------------------------------
void check_gelu(Check& c) {
  const int64_t n = 1000;
  for (int approx : {GELU_ERF, GELU_TANH}) {
    const std::string name = approx == GELU_ERF ? "gelu erf" : "gelu tanh";
    TensorF x = c.normal(n, 3.f), dy = c.normal(n), y = c.output(n), dx = c.output(n);
    c.run<TK_OP_gelu_forward>([&](GeluArgs& a, int s) { a.n = n; a.approx = approx; a.x = x[s]; a.y = y[s]; });
    c.run<TK_OP_gelu_backward>([&](GeluBackwardArgs& a, int s) {
      a.n = n; a.approx = approx; a.x = x[s]; a.dy = dy[s]; a.dx = dx[s];
    });
    c.compare(TK_OP_gelu_forward, name + " forward", y, kFloat);
    c.compare(TK_OP_gelu_backward, name + " backward", dx, kFloat);
  }
}

// ---- bias_add ------------------------------------------------------------------------------------------
void check_bias_add(Check& c) {
  const int64_t rows = 30, C = 33;
  TensorF x = c.normal(rows * C, 3.f), bias = c.normal(C), y = c.output(rows * C);
  c.run<TK_OP_bias_add>([&](BiasAddArgs& a, int s) { a.rows = rows; a.C = C; a.x = x[s]; a.bias = bias[s]; a.y = y[s]; });
  c.compare(TK_OP_bias_add, "bias_add", y, kExact);
}

// ---- bias_backward ---------------------------------------------------------------------------------------
void check_bias_backward(Check& c) {
  // rows=500: the column sums are split into several row chunks.
  for (int64_t rows : {int64_t(30), int64_t(500)}) {
    const int64_t C = rows > 100 ? 70 : 33;
    TensorF dy = c.normal(rows * C), dbias = c.normal(C);
    c.run<TK_OP_bias_backward>([&](BiasBackwardArgs& a, int s) { a.rows = rows; a.C = C; a.dy = dy[s]; a.dbias = dbias[s]; });
    c.compare(TK_OP_bias_backward, "bias_backward rows=" + std::to_string(rows), dbias, kFloat);
  }
}

// ---- add, scale ------------------------------------------------------------------------------------------
void check_add(Check& c) {
  const int64_t n = 1000;
  TensorF a = c.normal(n, 3.f), b = c.normal(n), y = c.output(n);
  c.run<TK_OP_add>([&](AddArgs& g, int s) { g.n = n; g.a = a[s]; g.b = b[s]; g.y = y[s]; });
  c.compare(TK_OP_add, "add", y, kExact);
}

void check_scale(Check& c) {
  const int64_t n = 1000;
  TensorF x = c.normal(n, 3.f), sp = c.tensor(std::vector<float>{-2.5f});
  c.run<TK_OP_scale>([&](ScaleArgs& g, int s) { g.n = n; g.x = x[s]; g.s = -0.37f; });
  c.compare(TK_OP_scale, "scale", x, kExact);
  // sp: the upstream gradient, one float on the device
  c.run<TK_OP_scale>([&](ScaleArgs& g, int s) { g.n = n; g.x = x[s]; g.s = 0.5f; g.sp = sp[s]; });
  c.compare(TK_OP_scale, "scale by s·sp[0]", x, kExact);
}

// ---- dropout ---------------------------------------------------------------------------------------------
void check_dropout(Check& c) {
  const int64_t n = 1000;
  for (float p : {0.3f, 0.f}) {  // p = 0: a copy
    TensorF x = c.normal(n, 3.f), y = c.output(n);
    c.run<TK_OP_dropout>([&](DropoutArgs& g, int s) { g.n = n; g.x = x[s]; g.y = y[s]; g.p = p; g.seed = 99; g.offset = 5; });
    c.compare(TK_OP_dropout, p > 0 ? "dropout" : "dropout p=0", y, kExact);
  }
}

// ---- sum_squares -----------------------------------------------------------------------------------------
void check_sum_squares(Check& c) {
  for (int64_t n : {int64_t(1), int64_t(3), int64_t(100003)}) {
    TensorF x = c.normal(n);
    auto r = c.run<TK_OP_sum_squares>([&](SumSquaresArgs& a, int s) { a.n = n; a.x = x[s]; });
    c.compare_scalar(TK_OP_sum_squares, "sum_squares n=" + std::to_string(n), r.first.result, r.second.result, kDouble);
  }
}

// ---- cross_entropy ---------------------------------------------------------------------------------------
void check_cross_entropy(Check& c) {
  struct Case { const char* name; int64_t N, V; float divisor, grad_scale; bool in_place, all_ignored; };
  for (const Case& k : {Case{"cross_entropy mean", 9, 50, 0.f, 1.f, false, false},
                        Case{"cross_entropy divisor in-place", 9, 50, 5.f, 2.f, true, false},
                        Case{"cross_entropy V=1000", 4, 1000, 0.f, 1.f, false, false},
                        Case{"cross_entropy all ignored", 3, 20, 0.f, 1.f, false, true}}) {
    const int64_t N = k.N, V = k.V;
    std::vector<int32_t> t(N);
    for (int64_t r = 0; r < N; r++) t[r] = k.all_ignored || r % 4 == 2 ? -100 : static_cast<int32_t>((r * 17) % V);
    TensorF logits = c.normal(N * V, 3.f), dlogits = c.output(N * V), row_loss = c.output(N);
    Tensor<int32_t> targets = c.tensor(t);
    auto r = c.run<TK_OP_cross_entropy>([&](CrossEntropyArgs& a, int s) {
      a.N = N; a.V = V; a.logits = logits[s]; a.targets = targets[s]; a.divisor = k.divisor; a.grad_scale = k.grad_scale;
      a.dlogits = k.in_place ? logits[s] : dlogits[s]; a.row_loss = row_loss[s];
    });
    const std::string n = k.name;
    c.compare_scalar(TK_OP_cross_entropy, n + " loss", r.first.loss, r.second.loss, kFloat);
    c.compare_scalar(TK_OP_cross_entropy, n + " count", double(r.first.count), double(r.second.count), kExact);
    c.compare(TK_OP_cross_entropy, n + " dlogits", k.in_place ? logits : dlogits, kFloat);
    c.compare(TK_OP_cross_entropy, n + " row_loss", row_loss, kFloat);
    // The loss written where it is computed (loss_out), as ops.ts asks for it on a device.
    TensorF loss_out = c.output(1);
    c.run<TK_OP_cross_entropy>([&](CrossEntropyArgs& a, int s) {
      a.N = N; a.V = V; a.logits = logits[s]; a.targets = targets[s]; a.divisor = k.divisor; a.loss_out = loss_out[s];
    });
    c.compare(TK_OP_cross_entropy, n + " loss_out", loss_out, kFloat);
  }
}

// ---- embedding_forward, embedding_backward ---------------------------------------------------------------
void check_embedding(Check& c) {
  for (int64_t N : {int64_t(300), int64_t(2500)}) {
    const int64_t C = N > 1000 ? 5 : 37, V = 20;
    std::vector<int32_t> id(N);
    for (int64_t i = 0; i < N; i++) id[i] = static_cast<int32_t>((i * i + 3 * i) % V);  // many repeats
    Tensor<int32_t> ids = c.tensor(id);
    std::vector<float> table0 = c.rng.normal(V * C);
    std::vector<uint16_t> table16(table0.size());
    for (size_t i = 0; i < table0.size(); i++) table16[i] = float_to_bf16(table0[i]);
    TensorF table = c.tensor(table0), dout = c.normal(N * C), out = c.output(N * C), dtable = c.normal(V * C);
    Tensor<uint16_t> table_bf16 = c.tensor(table16);
    TensorF out_bf16 = c.output(N * C);
    c.run<TK_OP_embedding_forward>([&](EmbeddingArgs& a, int s) {
      a.N = N; a.C = C; a.ids = ids[s]; a.table = table[s]; a.out = out[s];
    });
    c.run<TK_OP_embedding_forward>([&](EmbeddingArgs& a, int s) {  // a bf16 table, widened
      a.N = N; a.C = C; a.ids = ids[s]; a.table = table_bf16[s]; a.table_dtype = TK_BF16; a.out = out_bf16[s];
    });
    c.run<TK_OP_embedding_backward>([&](EmbeddingBackwardArgs& a, int s) {
      a.N = N; a.C = C; a.ids = ids[s]; a.dout = dout[s]; a.dtable = dtable[s]; a.padding_idx = 3;
    });
    const std::string n = " N=" + std::to_string(N);
    c.compare(TK_OP_embedding_forward, "embedding forward" + n, out, kExact);
    c.compare(TK_OP_embedding_forward, "embedding forward bf16 table" + n, out_bf16, kExact);
    c.compare(TK_OP_embedding_backward, "embedding backward" + n, dtable, kExact);
  }
}

// ---- adamw -----------------------------------------------------------------------------------------------
void check_adamw(Check& c) {
  const int64_t n = 1001;
  std::vector<float> v0 = c.rng.normal(n, 0.1f);
  for (float& vi : v0) vi = vi * vi;
  TensorF p = c.normal(n), g = c.normal(n), m = c.normal(n, 0.1f), v = c.tensor(v0);
  c.run<TK_OP_adamw>([&](AdamWArgs& a, int s) {
    a.n = n; a.lr = 1e-2f; a.weight_decay = 0.01f; a.step = 3; a.grad_scale = 0.5f;
    a.param = p[s]; a.grad = g[s]; a.m = m[s]; a.v = v[s];
  });
  c.compare(TK_OP_adamw, "adamw param", p, kFloat);
  c.compare(TK_OP_adamw, "adamw m", m, kFloat);
  c.compare(TK_OP_adamw, "adamw v", v, kFloat);
}

// ---- lora_forward, lora_backward -------------------------------------------------------------------------
void check_lora(Check& c) {
  // bf16_w: the frozen W stored as bf16 on both sides (a base loaded with dtype bf16)
  struct Case { const char* name; int64_t M, in, out, r; float p; bool bias, bf16_w; };
  for (const Case& k : {Case{"lora", 17, 40, 30, 4, 0.1f, true, false}, Case{"lora no dropout no bias", 70, 130, 65, 8, 0.f, false, false},
                        Case{"lora bf16 W", 17, 40, 30, 4, 0.1f, true, true}, Case{"lora bf16 W no dropout", 70, 130, 65, 8, 0.f, false, true}}) {
    std::vector<float> W0 = c.rng.normal(k.out * k.in, 0.2f);
    std::vector<uint16_t> W16(W0.size());
    for (size_t i = 0; i < W0.size(); i++) W16[i] = float_to_bf16(W0[i]);
    TensorF x = c.normal(k.M * k.in), W = c.tensor(W0), bias = c.normal(k.out);
    Tensor<uint16_t> Wh = c.tensor(W16);
    TensorF A = c.normal(k.r * k.in, 0.2f), Bm = c.normal(k.out * k.r, 0.2f), dy = c.normal(k.M * k.out);
    TensorF y = c.output(k.M * k.out), h = c.output(k.M * k.r), dx = c.output(k.M * k.in);
    TensorF dA = c.normal(k.r * k.in), dB = c.normal(k.out * k.r), dbias = c.normal(k.out);
    auto forward = [&](LoraArgs& f, int s) {
      f.M = k.M; f.in = k.in; f.out = k.out; f.r = k.r; f.scale = 2.f; f.dropout_p = k.p; f.seed = 5; f.offset = 3;
      f.x = x[s]; f.W = k.bf16_w ? static_cast<const void*>(Wh[s]) : W[s]; f.w_dtype = k.bf16_w ? TK_BF16 : TK_F32;
      f.bias = k.bias ? bias[s] : nullptr; f.A = A[s]; f.Bm = Bm[s]; f.y = y[s]; f.h = h[s];
    };
    c.run<TK_OP_lora_forward>(forward);
    c.run<TK_OP_lora_backward>([&](LoraBackwardArgs& b, int s) {
      forward(b.fwd, s);
      b.dy = dy[s]; b.dx = dx[s]; b.dA = dA[s]; b.dB = dB[s]; b.dbias = k.bias ? dbias[s] : nullptr;
    });
    const std::string n = k.name;
    c.compare(TK_OP_lora_forward, n + " forward y", y, kFloat);
    c.compare(TK_OP_lora_forward, n + " forward h", h, kFloat);
    c.compare(TK_OP_lora_backward, n + " backward dx", dx, kFloat);
    c.compare(TK_OP_lora_backward, n + " backward dA", dA, kFloat);
    c.compare(TK_OP_lora_backward, n + " backward dB", dB, kFloat);
    c.compare(TK_OP_lora_backward, n + " backward dbias", dbias, kFloat);
  }
}

// ---- unary_forward, unary_backward ----------------------------------------------------------------
void check_unary(Check& c) {
  const int64_t n = 1003;
  const char* names[] = {"tanh", "relu", "sigmoid", "silu"};
  for (int kind : {UNARY_TANH, UNARY_RELU, UNARY_SIGMOID, UNARY_SILU}) {
    std::vector<float> x0 = c.rng.normal(n, 3.f);
    x0[0] = 0.f; x0[1] = 40.f; x0[2] = -40.f; x0[3] = -90.f; x0[4] = 1e-7f;  // saturated, and tiny
    TensorF x = c.tensor(x0), dy = c.normal(n), y = c.output(n), dx = c.output(n);
    c.run<TK_OP_unary_forward>([&](UnaryArgs& a, int s) { a.n = n; a.kind = kind; a.x = x[s]; a.y = y[s]; });
    // dx in place over dy's copy on every other kind: dx may alias dy
    const bool in_place = kind % 2 == 1;
    c.run<TK_OP_unary_backward>([&](UnaryBackwardArgs& a, int s) {
      a.n = n; a.kind = kind; a.x = x[s]; a.y = y[s]; a.dy = dy[s]; a.dx = in_place ? dy[s] : dx[s];
    });
    // relu selects and copies: the same bits; the others differ by the libm / rational approximations
    const double tol = kind == UNARY_RELU ? kExact : kFloat;
    const std::string name = std::string("unary ") + names[kind];
    c.compare(TK_OP_unary_forward, name + " forward", y, tol);
    c.compare(TK_OP_unary_backward, name + " backward" + (in_place ? " in place" : ""), in_place ? dy : dx, tol);
  }
}

// ---- copy_strided ----------------------------------------------------------------------------------
void check_copy_strided(Check& c) {
  // offsets: where src / dst start inside their buffers (a column j of (rows, K) is offset j, ld K)
  struct Case { const char* name; int64_t rows, cols, src_ld, dst_ld, src_off, dst_off; int acc; };
  for (const Case& k : {Case{"copy_strided column out of (300, 2)", 300, 1, 2, 1, 1, 0, 0},
                        Case{"copy_strided accumulate into column of (300, 2)", 300, 1, 1, 2, 0, 1, 1},
                        Case{"copy_strided (70, 33) ld 40 to ld 50", 70, 33, 40, 50, 3, 7, 0},
                        Case{"copy_strided accumulate (5, 1000)", 5, 1000, 1000, 1000, 0, 0, 1}}) {
    TensorF src = c.normal((k.rows - 1) * k.src_ld + k.cols + k.src_off);
    TensorF dst = c.normal((k.rows - 1) * k.dst_ld + k.cols + k.dst_off);  // between the rows: left alone
    c.run<TK_OP_copy_strided>([&](CopyStridedArgs& a, int s) {
      a.rows = k.rows; a.cols = k.cols; a.src = src[s] + k.src_off; a.src_ld = k.src_ld;
      a.dst = dst[s] + k.dst_off; a.dst_ld = k.dst_ld; a.accumulate = k.acc;
    });
    c.compare(TK_OP_copy_strided, k.name, dst, kExact);  // copies and one add per element
  }
}

// ---- masked_mean_forward, masked_mean_backward -----------------------------------------------------
void check_masked_mean(Check& c) {
  struct Case { int64_t B, T, C; };
  for (const Case& k : {Case{4, 37, 65}, Case{2, 300, 8}}) {
    const int64_t B = k.B, T = k.T, C = k.C;
    std::vector<uint8_t> m(B * T);
    for (int64_t i = 0; i < B * T; i++) m[i] = c.rng.uniform() < 0.6 ? 1 : 0;
    for (int64_t b = 0; b < B; b++) m[b * T] = 1;
    if (B > 2) std::fill(m.begin() + T, m.begin() + 2 * T, 0);  // row 1: padding only
    Tensor<uint8_t> mask = c.tensor(m);
    TensorF x = c.normal(B * T * C), dy = c.normal(B * C), y = c.output(B * C), dx = c.output(B * T * C);
    c.run<TK_OP_masked_mean_forward>([&](MaskedMeanArgs& a, int s) {
      a.B = B; a.T = T; a.C = C; a.x = x[s]; a.mask = mask[s]; a.y = y[s];
    });
    c.run<TK_OP_masked_mean_backward>([&](MaskedMeanBackwardArgs& a, int s) {
      a.B = B; a.T = T; a.C = C; a.mask = mask[s]; a.dy = dy[s]; a.dx = dx[s];
    });
    const std::string name = "masked_mean B=" + std::to_string(B) + " T=" + std::to_string(T);
    // both sides add the real rows in t order in float, then divide by the count: the same bits
    c.compare(TK_OP_masked_mean_forward, name + " forward", y, kExact);
    c.compare(TK_OP_masked_mean_backward, name + " backward", dx, kExact);
  }
}

// ---- cosine_forward, cosine_backward ---------------------------------------------------------------
void check_cosine(Check& c) {
  struct Case { int64_t N, C; bool zero_row, only_da; };
  // zero_row: a's norm clamped (da ~ 1e8), alone in its case so its scale does not loosen the others
  for (const Case& k : {Case{7, 300, false, false}, Case{40, 33, false, true}, Case{1, 1, false, false}, Case{1, 64, true, false}}) {
    const int64_t n = k.N * k.C;
    std::vector<float> a0 = c.rng.normal(n);
    if (k.zero_row) std::fill(a0.begin(), a0.begin() + k.C, 0.f);
    TensorF a = c.tensor(a0), b = c.normal(n, 2.f), dy = c.normal(k.N), y = c.output(k.N);
    TensorF da = c.output(n), db = c.output(n);
    c.run<TK_OP_cosine_forward>([&](CosineArgs& g, int s) { g.N = k.N; g.C = k.C; g.a = a[s]; g.b = b[s]; g.y = y[s]; });
    c.run<TK_OP_cosine_backward>([&](CosineBackwardArgs& g, int s) {
      g.N = k.N; g.C = k.C; g.a = a[s]; g.b = b[s]; g.dy = dy[s]; g.da = da[s]; g.db = k.only_da ? nullptr : db[s];
    });
    const std::string name = "cosine N=" + std::to_string(k.N) + " C=" + std::to_string(k.C) + (k.zero_row ? " zero row" : "");
    // sums in double on both sides (different orders), rounded to float once
    c.compare(TK_OP_cosine_forward, name + " forward", y, kFloat);
    c.compare(TK_OP_cosine_backward, name + " backward da", da, kFloat);
    if (!k.only_da) c.compare(TK_OP_cosine_backward, name + " backward db", db, kFloat);
  }
}

// ---- l2norm_forward, l2norm_backward ---------------------------------------------------------------
void check_l2norm(Check& c) {
  struct Case { int64_t N, C; bool tiny_row, in_place; };
  // tiny_row: the norm clamped at 1e-8 (dx ~ 1e8), alone in its case as cosine's zero row
  for (const Case& k : {Case{9, 300, false, false}, Case{50, 17, false, true}, Case{3, 1025, false, false}, Case{1, 40, true, false}}) {
    const int64_t n = k.N * k.C;
    std::vector<float> x0 = c.rng.normal(n, 2.f);
    if (k.tiny_row)
      for (int64_t i = 0; i < k.C; i++) x0[i] *= 1e-12f;
    TensorF x = c.tensor(x0), dy = c.normal(n), y = c.output(n), norm = c.output(k.N), dx = c.output(n);
    // in place: y over x, then dx over dy
    c.run<TK_OP_l2norm_forward>([&](L2NormArgs& g, int s) {
      g.N = k.N; g.C = k.C; g.x = x[s]; g.y = k.in_place ? x[s] : y[s]; g.norm = norm[s];
    });
    c.run<TK_OP_l2norm_backward>([&](L2NormBackwardArgs& g, int s) {
      g.N = k.N; g.C = k.C; g.y = k.in_place ? x[s] : y[s]; g.norm = norm[s]; g.dy = dy[s]; g.dx = k.in_place ? dy[s] : dx[s];
    });
    const std::string name = "l2norm N=" + std::to_string(k.N) + " C=" + std::to_string(k.C) + (k.in_place ? " in place" : "") +
                             (k.tiny_row ? " clamped" : "");
    // the sum of squares in double (different orders); y = x / float norm
    c.compare(TK_OP_l2norm_forward, name + " forward y", k.in_place ? x : y, kFloat);
    c.compare(TK_OP_l2norm_forward, name + " forward norm", norm, kFloat);
    c.compare(TK_OP_l2norm_backward, name + " backward dx", k.in_place ? dy : dx, kFloat);
  }
}

// ---- mse_forward, mse_backward, bce_forward, bce_backward --------------------------------------------
void check_losses(Check& c) {
  struct Case { int fwd, bwd; const char* name; int64_t n; float divisor; };
  for (const Case& k : {Case{TK_OP_mse_forward, TK_OP_mse_backward, "mse", 1000, 0.f},
                        Case{TK_OP_mse_forward, TK_OP_mse_backward, "mse", 100003, 2.5f},
                        Case{TK_OP_bce_forward, TK_OP_bce_backward, "bce", 1000, 0.f},
                        Case{TK_OP_bce_forward, TK_OP_bce_backward, "bce", 100003, 7.f}}) {
    const bool bce = k.fwd == TK_OP_bce_forward;
    std::vector<float> x0 = c.rng.normal(k.n, bce ? 6.f : 2.f), t0 = c.rng.normal(k.n);
    if (bce) {
      x0[0] = 100.f; x0[1] = -100.f;  // saturated logits
      for (float& t : t0) t = t > 0.f ? 1.f : (t < -1.f ? 0.f : 0.3f);  // labels and a soft target
    }
    TensorF x = c.tensor(x0), t = c.tensor(t0), loss = c.output(1), dy = c.tensor(std::vector<float>{-1.5f}), dx = c.output(k.n);
    auto forward = [&](LossArgs& a, int s) { a.n = k.n; a.x = x[s]; a.target = t[s]; a.divisor = k.divisor; a.loss = loss[s]; };
    auto backward = [&](LossBackwardArgs& a, int s) {
      a.n = k.n; a.x = x[s]; a.target = t[s]; a.divisor = k.divisor; a.dy = dy[s]; a.dx = dx[s];
    };
    if (bce) {
      c.run<TK_OP_bce_forward>(forward);
      c.run<TK_OP_bce_backward>(backward);
    } else {
      c.run<TK_OP_mse_forward>(forward);
      c.run<TK_OP_mse_backward>(backward);
    }
    const std::string name = std::string(k.name) + " n=" + std::to_string(k.n);
    c.compare(k.fwd, name + " loss", loss, kDouble);  // summed in double, then one rounding to float
    c.compare(k.bwd, name + " dx", dx, kFloat);       // bce: expf against the CPU's exp
  }
}

// ---- dot_forward -------------------------------------------------------------------------------------
void check_dot(Check& c) {
  for (int64_t n : {int64_t(1), int64_t(1003), int64_t(100003)}) {  // 100003: many partial blocks
    TensorF x = c.normal(n), w = c.normal(n), y = c.output(1);
    c.run<TK_OP_dot_forward>([&](DotArgs& a, int s) { a.n = n; a.x = x[s]; a.w = w[s]; a.y = y[s]; });
    c.compare(TK_OP_dot_forward, "dot n=" + std::to_string(n), y, kDouble);  // in double, one rounding
  }
}

// ---- axpby -------------------------------------------------------------------------------------------
void check_axpby(Check& c) {
  const int64_t n = 1003;
  TensorF ap = c.tensor(std::vector<float>{-0.75f});
  struct Case { const char* name; float alpha, beta; bool ap, b, in_place; };
  for (const Case& k : {Case{"axpby (a + b) / 2", 0.5f, 0.5f, false, true, false},
                        Case{"axpby y = b += ap[0]·a", 1.f, 1.f, true, true, true},
                        Case{"axpby no b", -2.f, 0.f, true, false, false}}) {
    TensorF a = c.normal(n), b = c.normal(n), y = c.output(n);
    c.run<TK_OP_axpby>([&](AxpbyArgs& g, int s) {
      g.n = n; g.alpha = k.alpha; g.beta = k.beta; g.a = a[s]; g.ap = k.ap ? ap[s] : nullptr;
      g.b = k.b ? b[s] : nullptr; g.y = k.in_place ? b[s] : y[s];
    });
    c.compare(TK_OP_axpby, k.name, k.in_place ? b : y, kFloat);  // fma or not (the scalar CPU table): an ulp
  }
}

// ---- fill, convert ---------------------------------------------------------------------------------------
void check_memory(Check& c) {
  for (int bytes : {1, 2, 4}) {
    const int64_t n = 1003;
    TensorF x = c.tensor(std::vector<float>(n, 0.f));  // 4·n bytes: wide enough for every element size
    c.run<TK_OP_fill>([&](FillArgs& a, int s) { a.n = n; a.x = x[s]; a.elem_bytes = bytes; a.bits = 0x3f80u + bytes; });
    c.compare(TK_OP_fill, "fill " + std::to_string(bytes) + "-byte", x, kExact);
  }
  // f32 → bf16/f16 → f32 round trips, with values that round (ties included), tiny ones and ±inf
  // (NaN stays NaN on both sides, but compare() counts any NaN as a mismatch).
  std::vector<float> v = c.rng.normal(997, 100.f);
  v.insert(v.end(), {1.00390625f, 1.01171875f, 3e-6f, -6e-8f, 65504.f, 70000.f, INFINITY, -INFINITY});
  for (int dtype : {TK_BF16, TK_F16}) {
    const int64_t n = static_cast<int64_t>(v.size());
    TensorF src = c.tensor(v), half = c.output(n), back = c.output(n);
    c.run<TK_OP_convert>([&](ConvertArgs& a, int s) { a.n = n; a.src = src[s]; a.src_dtype = TK_F32; a.dst = half[s]; a.dst_dtype = dtype; });
    c.run<TK_OP_convert>([&](ConvertArgs& a, int s) { a.n = n; a.src = half[s]; a.src_dtype = dtype; a.dst = back[s]; a.dst_dtype = TK_F32; });
    c.compare(TK_OP_convert, dtype == TK_BF16 ? "convert f32 ↔ bf16" : "convert f32 ↔ f16", back, kExact);
  }
}

// ---- attention with grouped-query heads, sliding window, query offset ------------------------------
void check_attention_gqa(Check& c) {
  struct Case { const char* name; int64_t B, H, Hkv, Tq, Tk, D, window, q_offset; float p; bool mask, packed; };
  const Case cases[] = {
      {"attention GQA 3:1 causal packed", 2, 6, 2, 70, 70, 64, 0, 0, 0.f, true, true},
      {"attention MQA window 40 dropout", 1, 4, 1, 150, 150, 32, 40, 0, 0.1f, false, false},
      {"attention GQA offset (after a cache)", 2, 4, 2, 20, 150, 48, 0, 130, 0.f, true, false},
      {"attention window + offset D=100", 1, 2, 1, 33, 200, 100, 70, 167, 0.f, false, true},
  };
  for (const Case& k : cases) {
    const int64_t QD = k.H * k.D, KD = k.Hkv * k.D;
    // packed: [q | k | v] rows of (H + 2·Hkv)·D, as from a fused projection, gradients likewise.
    const int64_t ld = k.packed ? QD + 2 * KD : 0, ldq = k.packed ? ld : QD, ldkv = k.packed ? ld : KD;
    const int64_t koff = k.packed ? QD : 0, voff = k.packed ? QD + KD : 0;
    TensorF q = c.normal(k.B * k.Tq * ldq), kk = c.normal(k.B * k.Tk * ldkv), v = c.normal(k.B * k.Tk * ldkv);
    TensorF dout = c.normal(k.B * k.Tq * QD);
    std::vector<uint8_t> mask_host(k.B * k.Tk, 1);
    if (k.mask)
      for (int64_t i = 0; i < k.B * k.Tk; i++) mask_host[i] = i % 5 == 1 ? 0 : 1;
    Tensor<uint8_t> mask = c.tensor(mask_host);
    TensorF o = c.output(k.B * k.Tq * QD), lse = c.output(k.B * k.H * k.Tq);
    std::vector<float> zq(k.B * k.Tq * ldq, 0.f), zkv(k.B * k.Tk * ldkv, 0.f);
    TensorF dq = c.tensor(zq), dk = c.tensor(zkv), dv = c.tensor(zkv);
    auto forward = [&](AttentionArgs& a, int s) {
      a.B = k.B; a.H = k.H; a.Hkv = k.Hkv; a.Tq = k.Tq; a.Tk = k.Tk; a.D = k.D;
      a.ldq = ldq; a.ldk = ldkv; a.ldv = ldkv; a.ldo = QD;
      a.causal = 1; a.window = k.window; a.q_offset = k.q_offset; a.scale = 1.f / std::sqrt(static_cast<float>(k.D));
      a.dropout_p = k.p; a.seed = 5; a.offset = 99;
      a.q = q[s]; a.k = kk[s] + koff; a.v = v[s] + voff; a.o = o[s]; a.lse = lse[s];
      a.key_mask = k.mask ? mask[s] : nullptr;
    };
    c.run<TK_OP_attention_forward>(forward);
    c.run<TK_OP_attention_backward>([&](AttentionBackwardArgs& g, int s) {
      forward(g.fwd, s);
      g.dout = dout[s]; g.lddo = QD;
      g.dq = dq[s]; g.lddq = ldq; g.dk = dk[s] + koff; g.lddk = ldkv; g.dv = dv[s] + voff; g.lddv = ldkv;
    });
    const std::string n = k.name;
    c.compare(TK_OP_attention_forward, n + " forward o", o, kFloat);
    c.compare(TK_OP_attention_forward, n + " forward lse", lse, kFloat);
    c.compare(TK_OP_attention_backward, n + " backward dq", dq, kFloat);
    c.compare(TK_OP_attention_backward, n + " backward dk", dk, kFloat);
    c.compare(TK_OP_attention_backward, n + " backward dv", dv, kFloat);
  }
}

// ---- rmsnorm_forward, rmsnorm_backward ---------------------------------------------------------------
void check_rmsnorm(Check& c) {
  // G > 1: heads of a packed row (Qwen3's q_norm), ld wider than G·C.
  struct Case { int64_t rows, C, G, ld; bool weight; };
  for (const Case& k : {Case{13, 300, 1, 300, true}, Case{300, 7, 1, 7, false}, Case{40, 64, 4, 384, true}, Case{9, 1025, 1, 1025, true}}) {
    const int64_t n = k.rows * k.C, span = (k.rows / k.G - 1) * k.ld + k.G * k.C;
    TensorF x = c.normal(span, 2.f), w = c.normal(k.C), dy = c.normal(n), y = c.output(n), rstd = c.output(k.rows);
    TensorF dx = c.tensor(std::vector<float>(span, 0.f)), dw = c.normal(k.C);
    c.run<TK_OP_rmsnorm_forward>([&](RmsNormArgs& a, int s) {
      a.rows = k.rows; a.C = k.C; a.G = k.G; a.eps = 1e-6f; a.x = x[s]; a.ldx = k.ld;
      a.weight = k.weight ? w[s] : nullptr; a.y = y[s]; a.ldy = k.G * k.C; a.rstd = rstd[s];
    });
    c.run<TK_OP_rmsnorm_backward>([&](RmsNormBackwardArgs& a, int s) {
      a.rows = k.rows; a.C = k.C; a.G = k.G; a.x = x[s]; a.ldx = k.ld; a.weight = k.weight ? w[s] : nullptr;
      a.rstd = rstd[s]; a.dy = dy[s]; a.lddy = k.G * k.C; a.dx = dx[s]; a.lddx = k.ld; a.dweight = dw[s];
    });
    const std::string name = "rmsnorm rows=" + std::to_string(k.rows) + " C=" + std::to_string(k.C) + " G=" + std::to_string(k.G);
    c.compare(TK_OP_rmsnorm_forward, name + " forward y", y, kFloat);
    c.compare(TK_OP_rmsnorm_forward, name + " forward rstd", rstd, kFloat);
    c.compare(TK_OP_rmsnorm_backward, name + " backward dx", dx, kFloat);
    c.compare(TK_OP_rmsnorm_backward, name + " backward dweight", dw, kFloat);
  }
}

// ---- rope_forward, rope_backward ----------------------------------------------------------------------
void check_rope(Check& c) {
  // ld > H·D: q and k of a packed [q | k | v] row, the v columns left alone.
  struct Case { int64_t B, T, H, D, ld, P; };
  for (const Case& k : {Case{2, 37, 3, 64, 320, 50}, Case{1, 5, 1, 2, 2, 5}, Case{3, 9, 5, 130, 650, 9}}) {
    const int64_t half = k.D / 2, n = k.B * k.T * k.ld;
    std::vector<float> cs(k.P * half), sn(k.P * half);
    for (int64_t p = 0; p < k.P; p++)
      for (int64_t d = 0; d < half; d++) {
        const double angle = p * std::pow(10000.0, -2.0 * d / k.D);
        cs[p * half + d] = static_cast<float>(std::cos(angle));
        sn[p * half + d] = static_cast<float>(std::sin(angle));
      }
    std::vector<int32_t> pos(k.B * k.T);
    for (size_t i = 0; i < pos.size(); i++) pos[i] = static_cast<int32_t>((i * 7 + 3) % k.P);
    TensorF cost = c.tensor(cs), sint = c.tensor(sn);
    Tensor<int32_t> post = c.tensor(pos);
    const std::vector<float> x0 = c.rng.normal(n);
    TensorF x = c.tensor(x0), g = c.tensor(x0);
    auto fill = [&](RopeArgs& a, const TensorF& t, int s) {
      a.B = k.B; a.T = k.T; a.H = k.H; a.D = k.D; a.P = k.P; a.x = t[s]; a.ld = k.ld;
      a.cos = cost[s]; a.sin = sint[s]; a.pos = post[s];
    };
    c.run<TK_OP_rope_forward>([&](RopeArgs& a, int s) { fill(a, x, s); });
    c.run<TK_OP_rope_backward>([&](RopeArgs& a, int s) { fill(a, g, s); });
    const std::string name = "rope D=" + std::to_string(k.D) + " ld=" + std::to_string(k.ld);
    c.compare(TK_OP_rope_forward, name + " forward", x, kFloat);
    c.compare(TK_OP_rope_backward, name + " backward", g, kFloat);
  }
}

// ---- swiglu_forward, swiglu_backward ------------------------------------------------------------------
void check_swiglu(Check& c) {
  // fused: gate and up are the halves of one [gate | up] row, dgate and dup of one gradient row.
  struct Case { int64_t rows, C; bool fused; };
  for (const Case& k : {Case{33, 130, true}, Case{5, 1001, false}, Case{1, 1, false}}) {
    const int64_t ld = k.fused ? 2 * k.C : k.C, n = k.rows * ld;
    std::vector<float> g0 = c.rng.normal(n, 4.f);
    g0[0] = 100.f;
    if (n > 1) g0[1] = -100.f;  // saturated gates
    TensorF gate = c.tensor(g0), upt = c.normal(n), dy = c.normal(k.rows * k.C), y = c.output(k.rows * k.C);
    TensorF dgu = c.output(n), dup = c.output(n);
    const int64_t uoff = k.fused ? k.C : 0;
    c.run<TK_OP_swiglu_forward>([&](SwigluArgs& a, int s) {
      a.rows = k.rows; a.C = k.C; a.gate = gate[s]; a.ldg = ld; a.up = (k.fused ? gate[s] : upt[s]) + uoff; a.ldu = ld;
      a.y = y[s]; a.ldy = k.C;
    });
    c.run<TK_OP_swiglu_backward>([&](SwigluBackwardArgs& a, int s) {
      a.rows = k.rows; a.C = k.C; a.gate = gate[s]; a.ldg = ld; a.up = (k.fused ? gate[s] : upt[s]) + uoff; a.ldu = ld;
      a.dy = dy[s]; a.lddy = k.C; a.dgate = dgu[s]; a.lddg = ld; a.dup = (k.fused ? dgu[s] : dup[s]) + uoff; a.lddu = ld;
    });
    const std::string name = "swiglu rows=" + std::to_string(k.rows) + " C=" + std::to_string(k.C) + (k.fused ? " fused" : "");
    c.compare(TK_OP_swiglu_forward, name + " forward", y, kFloat);  // expf against the CPU's exp
    c.compare(TK_OP_swiglu_backward, name + " backward dgate" + (k.fused ? " | dup" : ""), dgu, kFloat);
    if (!k.fused) c.compare(TK_OP_swiglu_backward, name + " backward dup", dup, kFloat);
  }
}

// ---- attention_decode -----------------------------------------------------------------------------------
void check_attention_decode(Check& c) {
  struct Case { const char* name; int64_t B, H, Hkv, Tk, Tmax, D, window; bool lengths, mask; int64_t ld_pad; };
  const Case cases[] = {
      {"attention_decode B=1 GQA 7:1 D=64", 1, 14, 2, 512, 512, 64, 0, false, false, 0},
      {"attention_decode lengths + mask + window, strided", 3, 4, 2, 700, 701, 40, 100, true, true, 8},
      {"attention_decode MHA D=160 one chunk", 2, 2, 2, 33, 40, 160, 0, true, false, 0},
      {"attention_decode one key", 1, 1, 1, 1, 1, 1, 0, false, false, 0},
  };
  for (const Case& k : cases) {
    const int64_t ldq = k.H * k.D + k.ld_pad, ldkv = k.Hkv * k.D + k.ld_pad, ldo = k.H * k.D;
    TensorF q = c.normal(k.B * ldq), kk = c.normal(k.B * k.Tmax * ldkv), v = c.normal(k.B * k.Tmax * ldkv), o = c.output(k.B * ldo);
    std::vector<int32_t> len(k.B);
    for (int64_t b = 0; b < k.B; b++) len[b] = static_cast<int32_t>(b == 2 ? 0 : k.Tk - b * k.Tk / 3);  // row 2: empty
    std::vector<uint8_t> m(k.B * k.Tk);
    for (int64_t i = 0; i < k.B * k.Tk; i++) m[i] = i % k.Tk < 5 || i % 7 == 3 ? 0 : 1;  // left padding and holes
    Tensor<int32_t> lengths = c.tensor(len);
    Tensor<uint8_t> mask = c.tensor(m);
    c.run<TK_OP_attention_decode>([&](AttentionDecodeArgs& a, int s) {
      a.B = k.B; a.H = k.H; a.Hkv = k.Hkv; a.Tk = k.Tk; a.Tmax = k.Tmax; a.D = k.D;
      a.q = q[s]; a.ldq = ldq; a.k = kk[s]; a.ldk = ldkv; a.v = v[s]; a.ldv = ldkv; a.o = o[s]; a.ldo = ldo;
      a.lengths = k.lengths ? lengths[s] : nullptr; a.key_mask = k.mask ? mask[s] : nullptr; a.window = k.window;
      a.scale = 1.f / std::sqrt(static_cast<float>(k.D));
    });
    c.compare(TK_OP_attention_decode, k.name, o, kFloat);
  }
}

// Every section and the ops it runs; a section runs when the CUDA backend supports all of them.
struct Section {
  std::vector<int> ops;
  void (*check)(Check&);
};
const Section kSections[] = {
    {{TK_OP_gemm}, check_gemm},
    {{}, check_gemm_half},
    {{TK_OP_gemm}, check_gemm_fp16},
    {{TK_OP_attention_forward, TK_OP_attention_backward}, check_attention},
    {{TK_OP_layernorm_forward, TK_OP_layernorm_backward}, check_layernorm},
    {{TK_OP_gelu_forward, TK_OP_gelu_backward}, check_gelu},
    {{TK_OP_bias_add}, check_bias_add},
    {{TK_OP_bias_backward}, check_bias_backward},
    {{TK_OP_add}, check_add},
    {{TK_OP_scale}, check_scale},
    {{TK_OP_dropout}, check_dropout},
    {{TK_OP_sum_squares}, check_sum_squares},
    {{TK_OP_cross_entropy}, check_cross_entropy},
    {{TK_OP_embedding_forward, TK_OP_embedding_backward}, check_embedding},
    {{TK_OP_adamw}, check_adamw},
    {{TK_OP_lora_forward, TK_OP_lora_backward}, check_lora},
    {{TK_OP_unary_forward, TK_OP_unary_backward}, check_unary},
    {{TK_OP_copy_strided}, check_copy_strided},
    {{TK_OP_masked_mean_forward, TK_OP_masked_mean_backward}, check_masked_mean},
    {{TK_OP_cosine_forward, TK_OP_cosine_backward}, check_cosine},
    {{TK_OP_l2norm_forward, TK_OP_l2norm_backward}, check_l2norm},
    {{TK_OP_mse_forward, TK_OP_mse_backward, TK_OP_bce_forward, TK_OP_bce_backward}, check_losses},
    {{TK_OP_dot_forward}, check_dot},
    {{TK_OP_axpby}, check_axpby},
    {{TK_OP_fill, TK_OP_convert}, check_memory},
    {{TK_OP_attention_forward, TK_OP_attention_backward}, check_attention_gqa},
    {{TK_OP_rmsnorm_forward, TK_OP_rmsnorm_backward}, check_rmsnorm},
    {{TK_OP_rope_forward, TK_OP_rope_backward}, check_rope},
    {{TK_OP_swiglu_forward, TK_OP_swiglu_backward}, check_swiglu},
    {{TK_OP_attention_decode}, check_attention_decode},
};

}  // namespace

std::vector<CudaOpCheck> cuda_check_ops(const CudaBackend& cuda) {
  Check c(cuda);
  bool checked[TK_OP_COUNT] = {};
  for (const Section& s : kSections) {
    if (!std::all_of(s.ops.begin(), s.ops.end(), [&](int op) { return cuda.backend.supports(op); })) continue;
    s.check(c);
    for (int op : s.ops) checked[op] = true;
  }
  for (int op = 0; op < TK_OP_COUNT; op++)
    if (cuda.backend.supports(op) && !checked[op])
      c.out.push_back({tk_op_name(op), std::string(tk_op_name(op)) + ": no case in native/cuda_check.cc", INFINITY, 0, 0});
  return std::move(c.out);
}

}  // namespace tk
