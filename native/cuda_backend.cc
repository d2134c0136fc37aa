// Loads libtunekit_cuda.so with dlopen (the ggml/sharp pattern): candidates in order, the first that
// opens and has the entry points is asked for a device, and any failure becomes one actionable line.
// Also the CPU-vs-CUDA comparison of every op (ggml's test-backend-ops idea) that test/cuda.test.ts runs
// wherever a GPU is present.
#include "cuda_backend.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>

namespace tk {
namespace {

const char kLibName[] = "libtunekit_cuda.so";

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\r', ' ');
  return s;
}

std::string dirname_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? std::string(".") : slash == 0 ? std::string("/") : path.substr(0, slash);
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// The folder holding this addon (build/Release, prebuilds/linux-x64, build-cuda/Release, ...).
std::string addon_dir() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&cuda_backend), &info) == 0 || !info.dli_fname) return "";
  return dirname_of(info.dli_fname);
}

// The nearest folder at or above `dir` with a package.json: the package root.
std::string package_root(std::string dir) {
  for (int up = 0; up < 6 && !dir.empty(); up++) {
    if (exists(dir + "/package.json")) return dir;
    const std::string parent = dirname_of(dir);
    if (parent == dir) break;
    dir = parent;
  }
  return "";
}

struct Candidate {
  std::string path, label;
};

std::vector<Candidate> candidates() {
  std::vector<Candidate> out;
  auto add = [&](const std::string& path, const std::string& label) {
    for (const Candidate& c : out)
      if (c.path == path) return;
    out.push_back({path, label});
  };
  if (const char* env = std::getenv("TUNEKIT_CUDA_LIB"))
    if (*env) add(env, std::string("TUNEKIT_CUDA_LIB=") + env);
  const std::string addon = addon_dir(), root = addon.empty() ? "" : package_root(addon);
  if (!root.empty()) {
    add(root + "/build-cuda/Release/" + kLibName, "");
    add(root + "/build-cuda/" + kLibName, "");
  }
  if (!addon.empty()) add(addon + "/" + kLibName, "");
  return out;
}

template <class F>
F symbol(void* lib, const char* name) {
  return reinterpret_cast<F>(dlsym(lib, name));
}

struct LoadState {
  CudaBackend backend;
  bool ok = false;
  std::string reason;
};

LoadState load() {
  LoadState st;
  std::string tried;
  bool any_file = false;
  for (const Candidate& c : candidates()) {
    const std::string label = c.label.empty() ? c.path : c.label;
    auto note = [&](const std::string& why) { tried += (tried.empty() ? "" : "; ") + label + ": " + why; };
    if (!exists(c.path)) {
      note("not found");
      continue;
    }
    any_file = true;
    void* lib = dlopen(c.path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* e = dlerror();
      note(one_line(e ? e : "dlopen failed"));
      continue;
    }
    auto abi = symbol<tk_cuda_abi_fn>(lib, "tk_cuda_abi");
    auto get = symbol<tk_cuda_kernels_fn>(lib, "tk_cuda_kernels");
    CudaBackend& be = st.backend;
    be.malloc = symbol<tk_cuda_malloc_fn>(lib, "tk_cuda_malloc");
    be.free = symbol<tk_cuda_free_fn>(lib, "tk_cuda_free");
    be.memcpy_h2d = symbol<tk_cuda_memcpy_fn>(lib, "tk_cuda_memcpy_h2d");
    be.memcpy_d2h = symbol<tk_cuda_memcpy_fn>(lib, "tk_cuda_memcpy_d2h");
    be.memcpy_d2d = symbol<tk_cuda_memcpy_fn>(lib, "tk_cuda_memcpy_d2d");
    be.synchronize = symbol<tk_cuda_synchronize_fn>(lib, "tk_cuda_synchronize");
    be.gemm_bf16 = symbol<tk_cuda_gemm_bf16_fn>(lib, "tk_cuda_gemm_bf16");
    be.convert_f32 = symbol<tk_cuda_convert_f32_fn>(lib, "tk_cuda_convert_f32");
    auto name = symbol<tk_cuda_device_name_fn>(lib, "tk_cuda_device_name");
    if (!abi || !get || !name || !be.malloc || !be.free || !be.memcpy_h2d || !be.memcpy_d2h || !be.memcpy_d2d ||
        !be.synchronize || !be.gemm_bf16 || !be.convert_f32) {
      note("not a tunekit CUDA library (entry points missing)");
      dlclose(lib);
      continue;
    }
    if (abi() != TK_CUDA_ABI) {
      note("built from a different tunekit version (ABI " + std::to_string(abi()) + ", this addon expects " +
           std::to_string(TK_CUDA_ABI) + ")");
      dlclose(lib);
      continue;
    }
    // The library is good: from here on a failure is about the machine, not the file.
    char err[512] = "";
    be.kernels = get(err, sizeof err);
    if (!be.kernels) {
      st.reason = "CUDA backend unavailable: " + c.path + " loaded, but " + one_line(err[0] ? err : "tk_cuda_kernels failed");
      if (!tried.empty()) st.reason += " (tried before it: " + tried + ")";
      return st;  // not dlclose'd: the CUDA runtime inside may have started threads or exit handlers
    }
    char dev[256] = "";
    if (name(dev, sizeof dev) == 0) be.device = dev;
    be.library = c.path;
    st.ok = true;
    return st;  // kept open for the life of the process
  }
  if (tried.empty()) tried = "no candidate path: TUNEKIT_CUDA_LIB unset and the addon's location unknown";
  st.reason = any_file ? "CUDA backend unavailable: no loadable " + std::string(kLibName) + " (tried " + tried +
                             "); rebuild it with npm run build:cuda"
                       : "CUDA backend unavailable: " + std::string(kLibName) + " not found (tried " + tried +
                             "); build it with npm run build:cuda (needs nvcc)";
  return st;
}

// ---------------------------------------------------------------------------------------------
// CPU vs CUDA

void ok(int rc, const char* err) {
  if (rc != 0) throw std::runtime_error(err);
}

// A device buffer of n elements of T, freed on scope exit.
template <class T>
class Dev {
 public:
  Dev(const CudaBackend& be, size_t n) : be_(be), n_(n) {
    char err[512] = "";
    ok(be_.malloc(&p_, std::max<size_t>(n, 1) * sizeof(T), err, sizeof err), err);
  }
  Dev(const CudaBackend& be, const std::vector<T>& host) : Dev(be, host.size()) { put(host); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  ~Dev() {
    char err[512];
    be_.free(p_, err, sizeof err);
  }
  T* get() const { return static_cast<T*>(p_); }
  void put(const std::vector<T>& host) {
    char err[512] = "";
    ok(be_.memcpy_h2d(p_, host.data(), host.size() * sizeof(T), err, sizeof err), err);
  }
  std::vector<T> read() const {
    std::vector<T> host(n_);
    char err[512] = "";
    ok(be_.memcpy_d2h(host.data(), p_, n_ * sizeof(T), err, sizeof err), err);
    return host;
  }

 private:
  const CudaBackend& be_;
  void* p_ = nullptr;
  size_t n_;
};
using DevF = Dev<float>;

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

class Checker {
 public:
  explicit Checker(const CudaBackend& be) : be_(be), cpu_(kernels()), gpu_(*be.kernels) {}
  std::vector<CudaOpCheck> run() {
    gemm();
    gemm_half();
    attention();
    layernorm();
    elementwise();
    cross_entropy();
    embedding();
    adamw();
    lora();
    return std::move(out_);
  }

 private:
  const CudaBackend& be_;
  const Kernels& cpu_;
  const Kernels& gpu_;
  std::vector<CudaOpCheck> out_;
  Rng rng_{1234};

  void sync() {
    char err[512] = "";
    ok(be_.synchronize(err, sizeof err), err);
  }
  void compare(const std::string& op, const std::vector<float>& ref, const std::vector<float>& got) {
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
    out_.push_back({op, diff, big});
  }
  void compare_scalar(const std::string& op, double ref, double got) {
    out_.push_back({op, std::isnan(got - ref) ? INFINITY : std::fabs(got - ref), std::fabs(ref)});
  }

  void gemm() {
    // pad: extra columns in every leading dimension (the matrices are sub-matrices of wider ones).
    struct Case { const char* name; int ta, tb; int64_t M, N, K, batch; float alpha, beta; int64_t pad; };
    const Case cases[] = {
        {"gemm NN", 0, 0, 67, 45, 130, 1, 0.7f, 0.5f, 0},    {"gemm TN", 1, 0, 67, 45, 130, 1, 1.f, 0.f, 0},
        {"gemm NT", 0, 1, 33, 70, 17, 1, 1.f, -1.f, 0},      {"gemm TT", 1, 1, 5, 129, 64, 1, 2.f, 0.f, 0},
        {"gemm 1x1x1", 0, 0, 1, 1, 1, 1, 1.f, 0.f, 0},       {"gemm sub-matrix TN", 1, 0, 40, 30, 20, 1, 1.f, 1.f, 3},
        {"gemm batched", 0, 1, 300, 260, 200, 2, 1.f, 0.f, 0}, {"gemm large tile", 0, 0, 1600, 1500, 70, 1, 1.f, 0.f, 0},
    };
    for (const Case& c : cases) {
      const int64_t lda = (c.ta ? c.M : c.K) + c.pad, ldb = (c.tb ? c.K : c.N) + c.pad, ldc = c.N + c.pad;
      const int64_t sa = (c.ta ? c.K : c.M) * lda, sb = (c.tb ? c.N : c.K) * ldb, sc = c.M * ldc;
      std::vector<float> A = rng_.normal(sa * c.batch), B = rng_.normal(sb * c.batch), C = rng_.normal(sc * c.batch);
      if (c.beta == 0.f) std::fill(C.begin(), C.end(), NAN);  // beta = 0 must not read C
      GemmArgs g;
      g.transA = c.ta; g.transB = c.tb; g.M = c.M; g.N = c.N; g.K = c.K; g.alpha = c.alpha; g.beta = c.beta;
      g.lda = lda; g.ldb = ldb; g.ldc = ldc;
      g.strideA = sa; g.strideB = sb; g.strideC = sc; g.batch = c.batch;
      std::vector<float> ref = C;
      g.A = A.data(); g.B = B.data(); g.C = ref.data();
      cpu_.gemm(g);
      DevF dA(be_, A), dB(be_, B), dC(be_, C);
      g.A = dA.get(); g.B = dB.get(); g.C = dC.get();
      gpu_.gemm(g);
      compare(c.name, ref, dC.read());
    }
  }

  // Inputs rounded to 16 bits on the device; the reference is the CPU GEMM on the rounded values.
  void gemm_half() {
    struct Case { const char* name; int dtype, ta, tb; int64_t M, N, K; float beta; };
    const Case cases[] = {
        {"gemm_bf16 NN", TK_CUDA_BF16, 0, 0, 200, 136, 96, 0.f}, {"gemm_bf16 TT", TK_CUDA_BF16, 1, 1, 77, 51, 45, 1.f},
        {"gemm_f16 NT", TK_CUDA_F16, 0, 1, 130, 129, 33, 0.f},   {"gemm_f16 TN", TK_CUDA_F16, 1, 0, 64, 64, 64, 0.5f},
    };
    for (const Case& c : cases) {
      std::vector<float> A = rng_.normal(c.M * c.K), B = rng_.normal(c.K * c.N), C = rng_.normal(c.M * c.N);
      DevF dA32(be_, A), dB32(be_, B), dC(be_, C);
      Dev<uint16_t> dA(be_, A.size()), dB(be_, B.size());
      char err[512] = "";
      ok(be_.convert_f32(static_cast<int64_t>(A.size()), dA32.get(), dA.get(), c.dtype, err, sizeof err), err);
      ok(be_.convert_f32(static_cast<int64_t>(B.size()), dB32.get(), dB.get(), c.dtype, err, sizeof err), err);
      tk_cuda_gemm_half_args h{};
      h.dtype = c.dtype; h.transA = c.ta; h.transB = c.tb; h.M = c.M; h.N = c.N; h.K = c.K; h.alpha = 1.f; h.beta = c.beta;
      h.A = dA.get(); h.lda = c.ta ? c.M : c.K; h.B = dB.get(); h.ldb = c.tb ? c.K : c.N;
      h.C = dC.get(); h.ldc = c.N; h.batch = 1;
      ok(be_.gemm_bf16(&h, err, sizeof err), err);
      auto widen = [&](const std::vector<uint16_t>& v) {
        std::vector<float> f(v.size());
        for (size_t i = 0; i < v.size(); i++) f[i] = c.dtype == TK_CUDA_BF16 ? bf16_to_float(v[i]) : half_to_float(v[i]);
        return f;
      };
      std::vector<float> Ar = widen(dA.read()), Br = widen(dB.read()), ref = C;
      GemmArgs g;
      g.transA = c.ta; g.transB = c.tb; g.M = c.M; g.N = c.N; g.K = c.K; g.alpha = 1.f; g.beta = c.beta;
      g.A = Ar.data(); g.lda = h.lda; g.B = Br.data(); g.ldb = h.ldb; g.C = ref.data(); g.ldc = c.N;
      cpu_.gemm(g);
      compare(c.name, ref, dC.read());
    }
  }

  void attention() {
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
    for (const Case& c : cases) {
      const int64_t HD = c.H * c.D;
      // packed: q, k, v (and their gradients) are read as one third of (B, T, 3·H·D) rows, as from a fused
      // qkv projection: ld = 3·H·D and an offset of H·D or 2·H·D.
      const int64_t ld = c.packed ? 3 * HD : HD;
      std::vector<float> q = rng_.normal(c.B * c.Tq * ld), k = rng_.normal(c.B * c.Tk * ld), v = rng_.normal(c.B * c.Tk * ld);
      std::vector<float> dout = rng_.normal(c.B * c.Tq * HD);
      std::vector<uint8_t> mask(c.B * c.Tk, 1);
      if (c.mask) {
        for (int64_t j = 0; j < c.Tk; j += 3) mask[j] = 0;                 // batch 0: some padding
        if (c.B > 1) std::fill(mask.begin() + c.Tk, mask.begin() + 2 * c.Tk, 0);  // batch 1: no key at all
      }
      AttentionArgs a;
      a.B = c.B; a.H = c.H; a.Tq = c.Tq; a.Tk = c.Tk; a.D = c.D;
      a.ldq = ld; a.ldk = ld; a.ldv = ld; a.ldo = HD;
      a.causal = c.causal; a.scale = 1.f / std::sqrt(static_cast<float>(c.D));
      a.dropout_p = c.p; a.seed = 77; a.offset = 12345;
      std::vector<float> o(c.B * c.Tq * HD), lse(c.B * c.H * c.Tq), dq(q.size(), 0.f), dk(k.size(), 0.f), dv(v.size(), 0.f);
      const int64_t koff = c.packed ? HD : 0, voff = c.packed ? 2 * HD : 0;
      a.q = q.data(); a.k = k.data() + koff; a.v = v.data() + voff; a.o = o.data(); a.lse = lse.data();
      a.key_mask = c.mask ? mask.data() : nullptr;
      cpu_.attention_forward(a);
      AttentionBackwardArgs g;
      g.fwd = a; g.dout = dout.data(); g.lddo = HD;
      g.dq = dq.data(); g.lddq = ld; g.dk = dk.data() + koff; g.lddk = ld; g.dv = dv.data() + voff; g.lddv = ld;
      cpu_.attention_backward(g);

      DevF Q(be_, q), K(be_, k), Vd(be_, v), O(be_, o.size()), L(be_, lse.size()), dO(be_, dout);
      DevF dQ(be_, std::vector<float>(q.size(), 0.f)), dK(be_, std::vector<float>(k.size(), 0.f)),
          dV(be_, std::vector<float>(v.size(), 0.f));
      Dev<uint8_t> M(be_, mask);
      AttentionArgs b = a;
      b.q = Q.get(); b.k = K.get() + koff; b.v = Vd.get() + voff; b.o = O.get(); b.lse = L.get();
      b.key_mask = c.mask ? M.get() : nullptr;
      gpu_.attention_forward(b);
      AttentionBackwardArgs h = g;
      h.fwd = b; h.dout = dO.get(); h.dq = dQ.get(); h.dk = dK.get() + koff; h.dv = dV.get() + voff;
      gpu_.attention_backward(h);
      const std::string n = c.name;
      compare(n + " forward o", o, O.read());
      compare(n + " forward lse", lse, L.read());
      compare(n + " backward dq", dq, dQ.read());
      compare(n + " backward dk", dk, dK.read());
      compare(n + " backward dv", dv, dV.read());
    }
  }

  void layernorm() {
    struct Case { int64_t rows, C; bool affine; };
    for (const Case& c : {Case{13, 300, true}, Case{5, 64, false}, Case{40, 1024, true}, Case{300, 7, true}}) {
      const int64_t n = c.rows * c.C;
      std::vector<float> x = rng_.normal(n, 2.f), gamma = rng_.normal(c.C), beta = rng_.normal(c.C), dy = rng_.normal(n);
      for (float& xi : x) xi += 3.f;  // an offset mean: a one-pass variance would lose digits here
      std::vector<float> y(n), mean(c.rows), rstd(c.rows), dx(n), dgamma = rng_.normal(c.C), dbeta = rng_.normal(c.C);
      LayerNormArgs f;
      f.rows = c.rows; f.C = c.C; f.eps = 1e-5f;
      f.x = x.data(); f.gamma = c.affine ? gamma.data() : nullptr; f.beta = c.affine ? beta.data() : nullptr;
      f.y = y.data(); f.mean = mean.data(); f.rstd = rstd.data();
      DevF X(be_, x), G(be_, gamma), Bt(be_, beta), Y(be_, n), Mn(be_, c.rows), Rs(be_, c.rows), DY(be_, dy), DX(be_, n),
          DG(be_, dgamma), DB(be_, dbeta);
      LayerNormBackwardArgs b;
      b.rows = c.rows; b.C = c.C; b.x = x.data(); b.gamma = f.gamma; b.mean = mean.data(); b.rstd = rstd.data();
      b.dy = dy.data(); b.dx = dx.data(); b.dgamma = dgamma.data(); b.dbeta = dbeta.data();
      cpu_.layernorm_forward(f);
      cpu_.layernorm_backward(b);
      LayerNormArgs fg = f;
      fg.x = X.get(); fg.gamma = c.affine ? G.get() : nullptr; fg.beta = c.affine ? Bt.get() : nullptr;
      fg.y = Y.get(); fg.mean = Mn.get(); fg.rstd = Rs.get();
      gpu_.layernorm_forward(fg);
      LayerNormBackwardArgs bg = b;
      bg.x = X.get(); bg.gamma = fg.gamma; bg.mean = Mn.get(); bg.rstd = Rs.get(); bg.dy = DY.get(); bg.dx = DX.get();
      bg.dgamma = DG.get(); bg.dbeta = DB.get();
      gpu_.layernorm_backward(bg);
      const std::string name = "layernorm C=" + std::to_string(c.C);
      compare(name + " forward y", y, Y.read());
      compare(name + " forward rstd", rstd, Rs.read());
      compare(name + " backward dx", dx, DX.read());
      compare(name + " backward dgamma", dgamma, DG.read());
      compare(name + " backward dbeta", dbeta, DB.read());
    }
  }

  void elementwise() {
    const int64_t n = 1000, rows = 30, C = 33;  // rows·C <= n: the bias ops reuse x, dy and Y
    std::vector<float> x = rng_.normal(n, 3.f), dy = rng_.normal(n), b = rng_.normal(n);
    DevF X(be_, x), DY(be_, dy), Bv(be_, b), Y(be_, n);
    for (int approx : {GELU_ERF, GELU_TANH}) {
      const std::string name = approx == GELU_ERF ? "gelu erf" : "gelu tanh";
      std::vector<float> y(n), dx(n);
      cpu_.gelu_forward(n, x.data(), y.data(), approx);
      gpu_.gelu_forward(n, X.get(), Y.get(), approx);
      compare(name + " forward", y, Y.read());
      cpu_.gelu_backward(n, x.data(), dy.data(), dx.data(), approx);
      gpu_.gelu_backward(n, X.get(), DY.get(), Y.get(), approx);
      compare(name + " backward", dx, Y.read());
    }
    std::vector<float> bias = rng_.normal(C), y(rows * C), dbias = rng_.normal(C);
    DevF Bi(be_, bias), DBi(be_, dbias);
    cpu_.bias_add(rows, C, x.data(), bias.data(), y.data());
    gpu_.bias_add(rows, C, X.get(), Bi.get(), Y.get());
    compare("bias_add", y, DevRead(Y, rows * C));
    cpu_.bias_backward(rows, C, dy.data(), dbias.data());
    gpu_.bias_backward(rows, C, DY.get(), DBi.get());
    compare("bias_backward", dbias, DBi.read());
    std::vector<float> s(n);
    cpu_.add(n, x.data(), b.data(), s.data());
    gpu_.add(n, X.get(), Bv.get(), Y.get());
    compare("add", s, Y.read());
    std::vector<float> xs = x;
    DevF XS(be_, x);
    cpu_.scale(n, xs.data(), -0.37f);
    gpu_.scale(n, XS.get(), -0.37f);
    compare("scale", xs, XS.read());
    std::vector<float> d(n);
    cpu_.dropout(n, x.data(), d.data(), 0.3f, 99, 5);
    gpu_.dropout(n, X.get(), Y.get(), 0.3f, 99, 5);
    compare("dropout", d, Y.read());
    std::vector<float> d0(n);  // p = 0: a copy
    cpu_.dropout(n, x.data(), d0.data(), 0.f, 99, 5);
    gpu_.dropout(n, X.get(), Y.get(), 0.f, 99, 5);
    compare("dropout p=0", d0, Y.read());
    for (int64_t len : {int64_t(1), int64_t(3), int64_t(100003)}) {
      std::vector<float> z = rng_.normal(len);
      DevF Z(be_, z);
      compare_scalar("sum_squares n=" + std::to_string(len), cpu_.sum_squares(len, z.data()), gpu_.sum_squares(len, Z.get()));
    }
    // Many rows: the column sums are split into several row chunks.
    const int64_t R = 500, W = 70;
    std::vector<float> g = rng_.normal(R * W), acc = rng_.normal(W);
    DevF G(be_, g), ACC(be_, acc);
    cpu_.bias_backward(R, W, g.data(), acc.data());
    gpu_.bias_backward(R, W, G.get(), ACC.get());
    compare("bias_backward rows=500", acc, ACC.read());
  }

  std::vector<float> DevRead(const DevF& d, int64_t n) {
    std::vector<float> v = d.read();
    v.resize(n);
    return v;
  }

  void cross_entropy() {
    struct Case { const char* name; int64_t N, V; float divisor, grad_scale; bool in_place, all_ignored; };
    for (const Case& c : {Case{"cross_entropy mean", 9, 50, 0.f, 1.f, false, false},
                          Case{"cross_entropy divisor in-place", 9, 50, 5.f, 2.f, true, false},
                          Case{"cross_entropy V=1000", 4, 1000, 0.f, 1.f, false, false},
                          Case{"cross_entropy all ignored", 3, 20, 0.f, 1.f, false, true}}) {
      const int64_t N = c.N, V = c.V;
      std::vector<float> logits = rng_.normal(N * V, 3.f);
      std::vector<int32_t> targets(N);
      for (int64_t r = 0; r < N; r++) targets[r] = c.all_ignored || r % 4 == 2 ? -100 : static_cast<int32_t>((r * 17) % V);
      std::vector<float> l = logits, dl(N * V), rl(N);
      CrossEntropyArgs a;
      a.N = N; a.V = V; a.logits = l.data(); a.targets = targets.data(); a.divisor = c.divisor; a.grad_scale = c.grad_scale;
      a.dlogits = c.in_place ? l.data() : dl.data(); a.row_loss = rl.data();
      cpu_.cross_entropy(a);
      DevF L(be_, logits), DL(be_, N * V), RL(be_, N);
      Dev<int32_t> T(be_, targets);
      CrossEntropyArgs g = a;
      g.logits = L.get(); g.targets = T.get(); g.dlogits = c.in_place ? L.get() : DL.get(); g.row_loss = RL.get();
      gpu_.cross_entropy(g);
      const std::string n = c.name;
      compare_scalar(n + " loss", a.loss, g.loss);
      compare_scalar(n + " count", static_cast<double>(a.count), static_cast<double>(g.count));
      compare(n + " dlogits", c.in_place ? l : dl, c.in_place ? L.read() : DL.read());
      compare(n + " row_loss", rl, RL.read());
    }
  }

  void embedding() {
    for (int64_t N : {int64_t(300), int64_t(2500)}) embedding_case(N, N > 1000 ? 5 : 37, 20);
  }
  void embedding_case(int64_t N, int64_t C, int64_t V) {
    std::vector<int32_t> ids(N);
    for (int64_t i = 0; i < N; i++) ids[i] = static_cast<int32_t>((i * i + 3 * i) % V);  // many repeats
    std::vector<float> table = rng_.normal(V * C), dout = rng_.normal(N * C), out(N * C), dtable = rng_.normal(V * C);
    Dev<int32_t> I(be_, ids);
    DevF T(be_, table), DO(be_, dout), O(be_, N * C), DT(be_, dtable);
    cpu_.embedding_forward(N, C, ids.data(), table.data(), out.data());
    gpu_.embedding_forward(N, C, I.get(), T.get(), O.get());
    const std::string n = " N=" + std::to_string(N);
    compare("embedding forward" + n, out, O.read());
    cpu_.embedding_backward(N, C, ids.data(), dout.data(), dtable.data(), 3);
    gpu_.embedding_backward(N, C, I.get(), DO.get(), DT.get(), 3);
    compare("embedding backward" + n, dtable, DT.read());
  }

  void adamw() {
    const int64_t n = 1001;
    std::vector<float> p = rng_.normal(n), g = rng_.normal(n), m = rng_.normal(n, 0.1f), v = rng_.normal(n, 0.1f);
    for (float& vi : v) vi = vi * vi;
    DevF P(be_, p), G(be_, g), M(be_, m), Vv(be_, v);
    AdamWArgs a;
    a.n = n; a.lr = 1e-2f; a.weight_decay = 0.01f; a.step = 3; a.grad_scale = 0.5f;
    a.param = p.data(); a.grad = g.data(); a.m = m.data(); a.v = v.data();
    cpu_.adamw(a);
    AdamWArgs b = a;
    b.param = P.get(); b.grad = G.get(); b.m = M.get(); b.v = Vv.get();
    gpu_.adamw(b);
    compare("adamw param", p, P.read());
    compare("adamw m", m, M.read());
    compare("adamw v", v, Vv.read());
  }

  void lora() {
    lora_case("lora", 17, 40, 30, 4, 0.1f, true);
    lora_case("lora no dropout no bias", 70, 130, 65, 8, 0.f, false);
  }
  void lora_case(const std::string& name, int64_t M, int64_t in, int64_t out, int64_t r, float p, bool with_bias) {
    std::vector<float> x = rng_.normal(M * in), W = rng_.normal(out * in, 0.2f), bias = rng_.normal(out),
                       A = rng_.normal(r * in, 0.2f), Bm = rng_.normal(out * r, 0.2f), dy = rng_.normal(M * out);
    std::vector<float> y(M * out), h(M * r), dx(M * in), dA = rng_.normal(r * in), dB = rng_.normal(out * r),
                       dbias = rng_.normal(out);
    DevF X(be_, x), Wd(be_, W), Bi(be_, bias), Ad(be_, A), Bd(be_, Bm), DY(be_, dy), Y(be_, M * out), Hd(be_, M * r),
        DX(be_, M * in), DA(be_, dA), DB(be_, dB), DBi(be_, dbias);
    LoraArgs f;
    f.M = M; f.in = in; f.out = out; f.r = r; f.scale = 2.f; f.dropout_p = p; f.seed = 5; f.offset = 3;
    f.x = x.data(); f.W = W.data(); f.bias = with_bias ? bias.data() : nullptr;
    f.A = A.data(); f.Bm = Bm.data(); f.y = y.data(); f.h = h.data();
    cpu_.lora_forward(f);
    LoraBackwardArgs b;
    b.fwd = f; b.dy = dy.data(); b.dx = dx.data(); b.dA = dA.data(); b.dB = dB.data();
    b.dbias = with_bias ? dbias.data() : nullptr;
    cpu_.lora_backward(b);
    LoraArgs fg = f;
    fg.x = X.get(); fg.W = Wd.get(); fg.bias = with_bias ? Bi.get() : nullptr;
    fg.A = Ad.get(); fg.Bm = Bd.get(); fg.y = Y.get(); fg.h = Hd.get();
    gpu_.lora_forward(fg);
    LoraBackwardArgs bg;
    bg.fwd = fg; bg.dy = DY.get(); bg.dx = DX.get(); bg.dA = DA.get(); bg.dB = DB.get();
    bg.dbias = with_bias ? DBi.get() : nullptr;
    gpu_.lora_backward(bg);
    sync();
    compare(name + " forward y", y, Y.read());
    compare(name + " forward h", h, Hd.read());
    compare(name + " backward dx", dx, DX.read());
    compare(name + " backward dA", dA, DA.read());
    compare(name + " backward dB", dB, DB.read());
    compare(name + " backward dbias", dbias, DBi.read());
  }
};

}  // namespace

const CudaBackend* cuda_backend(std::string* reason) {
  static std::once_flag once;
  static LoadState state;
  std::call_once(once, [] { state = load(); });
  if (reason) *reason = state.ok ? "" : state.reason;
  return state.ok ? &state.backend : nullptr;
}

std::vector<CudaOpCheck> cuda_compare_with_cpu(const CudaBackend& be) { return Checker(be).run(); }

}  // namespace tk
