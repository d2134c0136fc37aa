// gemm({ M, N, K, A, B, C, transA?, transB?, alpha?, beta?, lda?, ldb?, ldc?, batch?, strideA?, strideB?, strideC?,
//        precision?, bias?, residual?, pre?, activation? });  the last four: GemmArgs::ep (tunekit/ops.h). setMatmulPrecision("fp32" | "bf16"), matmulPrecision(), bf16Available().
// B (the weight operand) may be bf16: a Uint16Array or a bf16 device buffer; A and C are float32.
#include <atomic>

#include "../cpu/table.h"
#include "common.h"

namespace tk {
namespace binding {

namespace {
// setMatmulPrecision's request: kFp32, kBf16 or kFp16 (the indices of the "precision" choices).
enum { kFp32 = 0, kBf16 = 1, kFp16 = 2 };
std::atomic<int> g_requested{kFp32};
}  // namespace

// Requested and possible: the AVX-512 table is in use and the CPU has AVX512-BF16.
int matmul_bf16() { return g_requested.load() == kBf16 && bf16_supported() ? 1 : 0; }

// After the call's buffers are read: a device runs the requested precision on tensor cores whatever the
// CPU has; the CPU runs bf16 where it has AVX512-BF16 and never fp16 (asked for explicitly, it fails).
int precision_arg(Args& a) {
  const int req = g_requested.load();
  const int p = a.choice("precision", {"fp32", "bf16", "fp16"}, a.on_cpu() ? matmul_bf16() : req);
  if (p == kFp16 && a.on_cpu()) a.fail("precision \"fp16\" runs on a CUDA device only (tensor cores); on the CPU use \"bf16\" or \"fp32\"");
  return p;
}

namespace {

// Elements a row-major (rows x cols) matrix with leading dim ld spans, times batch with stride.
int64_t span(int64_t rows, int64_t cols, int64_t ld, int64_t batch, int64_t stride) {
  if (rows == 0 || cols == 0 || batch == 0) return 0;
  return (batch - 1) * stride + (rows - 1) * ld + cols;
}

Work parse_gemm(Args& a) {
  constexpr int64_t kMax = int64_t(1) << 40;
  GemmArgs g;
  g.transA = a.flag("transA", false);
  g.transB = a.flag("transB", false);
  g.M = a.integer("M", 0, kMax);
  g.N = a.integer("N", 0, kMax);
  g.K = a.integer("K", 0, kMax);
  g.alpha = static_cast<float>(a.number("alpha", 1.0));
  g.beta = static_cast<float>(a.number("beta", 0.0));
  g.batch = a.integer("batch", 0, kMax, 1);
  const int64_t ar = g.transA ? g.K : g.M, ac = g.transA ? g.M : g.K;
  const int64_t br = g.transB ? g.N : g.K, bc = g.transB ? g.K : g.N;
  g.lda = a.integer("lda", std::max<int64_t>(ac, 1), kMax, std::max<int64_t>(ac, 1));
  g.ldb = a.integer("ldb", std::max<int64_t>(bc, 1), kMax, std::max<int64_t>(bc, 1));
  g.ldc = a.integer("ldc", std::max<int64_t>(g.N, 1), kMax, std::max<int64_t>(g.N, 1));
  g.strideA = a.integer("strideA", 0, kMax, ar * g.lda);
  g.strideB = a.integer("strideB", 0, kMax, br * g.ldb);
  g.strideC = a.integer("strideC", g.batch > 1 ? (g.M - 1) * g.ldc + g.N : 0, kMax, g.M * g.ldc);
  const int64_t nA = span(ar, ac, g.lda, g.batch, g.strideA);
  const int64_t nB = span(br, bc, g.ldb, g.batch, g.strideB);
  const int64_t nC = span(g.M, g.N, g.ldc, g.batch, g.strideC);
  F32 A = a.f32("A", nA), C = a.f32("C", nC);
  Weight B = a.weight("B", nB);
  const int precision = precision_arg(a);
  g.bf16 = precision == kBf16;
  g.fp16 = precision == kFp16;
  a.no_alias("C", C.data, nC * 4, "A", A.data, nA * 4);
  a.no_alias("C", C.data, nC * 4, "B", B.data, nB * tk_dtype_bytes(B.dtype));
  g.A = A.data; g.B = B.data; g.C = C.data; g.b_dtype = B.dtype;
  // The epilogue: bias (N), residual and pre (C's layout); C holds partial sums until the last K block,
  // so none of them may overlap C, and pre (an output) overlaps no input.
  F32 bias = a.f32_opt("bias", g.N), residual = a.f32_opt("residual", nC), pre = a.f32_opt("pre", nC);
  g.ep.act = a.choice("activation", {"none", "gelu", "gelu_tanh"}, 0);  // GemmAct's order
  a.no_alias("C", C.data, nC * 4, "bias", bias.data, bias.data ? g.N * 4 : 0);
  a.no_alias("C", C.data, nC * 4, "residual", residual.data, residual.data ? nC * 4 : 0);
  a.no_alias("pre", pre.data, pre.data ? nC * 4 : 0, "C", C.data, nC * 4);
  a.no_alias("pre", pre.data, pre.data ? nC * 4 : 0, "A", A.data, nA * 4);
  a.no_alias("pre", pre.data, pre.data ? nC * 4 : 0, "B", B.data, nB * tk_dtype_bytes(B.dtype));
  a.no_alias("pre", pre.data, pre.data ? nC * 4 : 0, "bias", bias.data, bias.data ? g.N * 4 : 0);
  a.no_alias("pre", pre.data, pre.data ? nC * 4 : 0, "residual", residual.data, residual.data ? nC * 4 : 0);
  g.ep.bias = bias.data; g.ep.residual = residual.data; g.ep.pre = pre.data;
  return Work{[g, be = &a.backend()] { run<TK_OP_gemm>(*be, g); }, nullptr};
}

Napi::Value SetMatmulPrecision(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string want = info.Length() == 1 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (want != "fp32" && want != "bf16" && want != "fp16")
    throw_error(env, "setMatmulPrecision: expected \"fp32\", \"bf16\" or \"fp16\" (fp16: CUDA devices only)");
  g_requested = want == "bf16" ? kBf16 : want == "fp16" ? kFp16 : kFp32;
  return env.Undefined();
}

Napi::Value MatmulPrecision(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), g_requested.load() == kFp16 ? "fp16" : matmul_bf16() ? "bf16" : "fp32");
}

Napi::Value Bf16Available(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), bf16_supported()); }

}  // namespace

void init_gemm(Napi::Env env, Napi::Object exports) {
  define(env, exports, "gemm", parse_gemm);
  exports.Set("setMatmulPrecision", Napi::Function::New(env, SetMatmulPrecision, "setMatmulPrecision"));
  exports.Set("matmulPrecision", Napi::Function::New(env, MatmulPrecision, "matmulPrecision"));
  exports.Set("bf16Available", Napi::Function::New(env, Bf16Available, "bf16Available"));
}

}  // namespace binding
}  // namespace tk
