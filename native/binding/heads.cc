// Task-head and loss ops: unaryForward/Backward, copyStrided, maskedMeanForward/Backward,
// cosineForward/Backward, l2NormForward/Backward, mseForward/Backward, bceForward/Backward,
// dotForward, axpby (each also as <name>Async). A loss's value, a dot product and the upstream gradient
// of a scalar (dy, ap) are one-float buffers (a Float32Array of length >= 1), never JS numbers, so they
// can stay in the backend's memory.
// Aliasing: element-wise outputs may be their input itself (in place, where ops.h allows it) but never
// overlap it partially; every other output is disjoint from every input and from the other outputs.
#include <cmath>
#include <cstdio>

#include "common.h"

namespace tk {
namespace binding {
namespace {

constexpr int64_t kMax = int64_t(1) << 40;

int64_t product(Args& a, std::initializer_list<int64_t> dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d != 0 && n > kMax / d) a.fail("shape " + shape_str(dims) + " is too large");
    n *= d;
  }
  return n;
}

struct Buf {
  const char* name;
  const void* p;
  int64_t bytes;
};
Buf buf(const char* name, const F32& f) { return {name, f.data, f.length * 4}; }
Buf buf(const char* name, const U8& u) { return {name, u.data, u.length}; }

// Every output disjoint from every input and from the other outputs.
void disjoint(Args& a, std::initializer_list<Buf> outs, std::initializer_list<Buf> ins) {
  for (const Buf* o = outs.begin(); o != outs.end(); o++) {
    for (const Buf& i : ins) a.no_alias(o->name, o->p, o->bytes, i.name, i.p, i.bytes);
    for (const Buf* o2 = o + 1; o2 != outs.end(); o2++) a.no_alias(o2->name, o2->p, o2->bytes, o->name, o->p, o->bytes);
  }
}

// An element-wise output may be its input itself (in place), but not overlap it partially.
void in_place_or_disjoint(Args& a, Buf out, Buf in) {
  if (out.p != in.p) a.no_alias(out.name, out.p, out.bytes, in.name, in.p, in.bytes);
}

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

// A finite float32 (the loss divisor; <= 0 means the mean).
float finite_float(Args& a, const char* name, double dflt) {
  const double v = a.number(name, dflt);
  if (!std::isfinite(v) || !std::isfinite(static_cast<float>(v)))
    a.fail(std::string("argument '") + name + "' = " + num(v) + " is out of range, expected a finite float32");
  return static_cast<float>(v);
}

// Required; read through u8_opt (Args has no required Uint8Array). An empty array may have no data
// pointer, so "missing" is only reported where the kernel would read the mask.
U8 mask_arg(Args& a, int64_t need) {
  U8 m = a.u8_opt("mask", need);
  if (!m.data && need > 0) a.fail("argument 'mask' is missing");
  return m;
}

// ---- unary --------------------------------------------------------------------------------------------
const char* const kKinds[] = {"tanh", "relu", "sigmoid", "silu"};  // UnaryKind order

int kind_arg(Args& a) {
  const int k = a.choice("kind", {"tanh", "relu", "sigmoid", "silu"}, -1);
  if (k < 0) a.fail("argument 'kind' is missing");
  return k;
}

Work parse_unary_forward(Args& a) {
  UnaryArgs g;
  g.n = a.integer("n", 0, kMax);
  g.kind = kind_arg(a);
  F32 x = a.f32("x", g.n), y = a.f32("y", g.n);
  in_place_or_disjoint(a, buf("y", y), buf("x", x));
  g.x = x.data; g.y = y.data;
  return Work{[g] { run<TK_OP_unary_forward>(cpu_backend(), g); }, nullptr};
}

// silu's derivative needs the forward's input x; the others its output y.
Work parse_unary_backward(Args& a) {
  UnaryBackwardArgs g;
  g.n = a.integer("n", 0, kMax);
  g.kind = kind_arg(a);
  const bool needs_x = g.kind == UNARY_SILU;
  const char* need = needs_x ? "x" : "y";
  F32 in = needs_x ? a.f32_opt("x", g.n) : a.f32_opt("y", g.n);
  if (!in.data && g.n > 0)
    a.fail(std::string("argument '") + need + "' is missing (kind '" + kKinds[g.kind] + "' needs the forward's " +
           (needs_x ? "input x)" : "output y)"));
  F32 dy = a.f32("dy", g.n), dx = a.f32("dx", g.n);
  in_place_or_disjoint(a, buf("dx", dx), buf(need, in));
  in_place_or_disjoint(a, buf("dx", dx), buf("dy", dy));
  (needs_x ? g.x : g.y) = in.data;
  g.dy = dy.data; g.dx = dx.data;
  return Work{[g] { run<TK_OP_unary_backward>(cpu_backend(), g); }, nullptr};
}

// ---- copy_strided -------------------------------------------------------------------------------------
// Elements a (rows, cols) view with leading dim ld reaches: (rows - 1)·ld + cols.
int64_t strided_need(Args& a, int64_t rows, int64_t cols, int64_t ld) {
  return rows == 0 ? 0 : product(a, {rows - 1, ld}) + cols;
}

Work parse_copy_strided(Args& a) {
  CopyStridedArgs g;
  g.rows = a.integer("rows", 0, kMax);
  g.cols = a.integer("cols", 1, kMax);
  g.src_ld = a.integer("srcLd", g.cols, kMax, g.cols);
  g.dst_ld = a.integer("dstLd", g.cols, kMax, g.cols);
  g.accumulate = a.flag("accumulate", false) ? 1 : 0;
  F32 src = a.f32("src", strided_need(a, g.rows, g.cols, g.src_ld));
  F32 dst = a.f32("dst", strided_need(a, g.rows, g.cols, g.dst_ld));
  disjoint(a, {buf("dst", dst)}, {buf("src", src)});
  g.src = src.data; g.dst = dst.data;
  return Work{[g] { run<TK_OP_copy_strided>(cpu_backend(), g); }, nullptr};
}

// ---- masked_mean --------------------------------------------------------------------------------------
Work parse_masked_mean_forward(Args& a) {
  MaskedMeanArgs g;
  g.B = a.integer("B", 0, kMax);
  g.T = a.integer("T", 0, kMax);
  g.C = a.integer("C", 1, kMax);
  F32 x = a.f32("x", product(a, {g.B, g.T, g.C})), y = a.f32("y", product(a, {g.B, g.C}));
  U8 mask = mask_arg(a, product(a, {g.B, g.T}));
  disjoint(a, {buf("y", y)}, {buf("x", x), buf("mask", mask)});
  g.x = x.data; g.mask = mask.data; g.y = y.data;
  return Work{[g] { run<TK_OP_masked_mean_forward>(cpu_backend(), g); }, nullptr};
}

Work parse_masked_mean_backward(Args& a) {
  MaskedMeanBackwardArgs g;
  g.B = a.integer("B", 0, kMax);
  g.T = a.integer("T", 0, kMax);
  g.C = a.integer("C", 1, kMax);
  F32 dy = a.f32("dy", product(a, {g.B, g.C})), dx = a.f32("dx", product(a, {g.B, g.T, g.C}));
  U8 mask = mask_arg(a, product(a, {g.B, g.T}));
  disjoint(a, {buf("dx", dx)}, {buf("dy", dy), buf("mask", mask)});
  g.mask = mask.data; g.dy = dy.data; g.dx = dx.data;
  return Work{[g] { run<TK_OP_masked_mean_backward>(cpu_backend(), g); }, nullptr};
}

// ---- cosine, l2norm -----------------------------------------------------------------------------------
Work parse_cosine_forward(Args& a) {
  CosineArgs g;
  g.N = a.integer("N", 0, kMax);
  g.C = a.integer("C", 1, kMax);
  const int64_t n = product(a, {g.N, g.C});
  F32 x = a.f32("a", n), b = a.f32("b", n), y = a.f32("y", g.N);
  disjoint(a, {buf("y", y)}, {buf("a", x), buf("b", b)});
  g.a = x.data; g.b = b.data; g.y = y.data;
  return Work{[g] { run<TK_OP_cosine_forward>(cpu_backend(), g); }, nullptr};
}

Work parse_cosine_backward(Args& a) {
  CosineBackwardArgs g;
  g.N = a.integer("N", 0, kMax);
  g.C = a.integer("C", 1, kMax);
  const int64_t n = product(a, {g.N, g.C});
  F32 x = a.f32("a", n), b = a.f32("b", n), dy = a.f32("dy", g.N);
  F32 da = a.f32_opt("da", n), db = a.f32_opt("db", n);
  disjoint(a, {buf("da", da), buf("db", db)}, {buf("a", x), buf("b", b), buf("dy", dy)});
  g.a = x.data; g.b = b.data; g.dy = dy.data; g.da = da.data; g.db = db.data;
  return Work{[g] { run<TK_OP_cosine_backward>(cpu_backend(), g); }, nullptr};
}

Work parse_l2norm_forward(Args& a) {
  L2NormArgs g;
  g.N = a.integer("N", 0, kMax);
  g.C = a.integer("C", 1, kMax);
  const int64_t n = product(a, {g.N, g.C});
  F32 x = a.f32("x", n), y = a.f32("y", n), norm = a.f32("norm", g.N);
  in_place_or_disjoint(a, buf("y", y), buf("x", x));
  disjoint(a, {buf("norm", norm)}, {buf("x", x), buf("y", y)});
  g.x = x.data; g.y = y.data; g.norm = norm.data;
  return Work{[g] { run<TK_OP_l2norm_forward>(cpu_backend(), g); }, nullptr};
}

Work parse_l2norm_backward(Args& a) {
  L2NormBackwardArgs g;
  g.N = a.integer("N", 0, kMax);
  g.C = a.integer("C", 1, kMax);
  const int64_t n = product(a, {g.N, g.C});
  F32 y = a.f32("y", n), norm = a.f32("norm", g.N), dy = a.f32("dy", n), dx = a.f32("dx", n);
  in_place_or_disjoint(a, buf("dx", dx), buf("dy", dy));
  disjoint(a, {buf("dx", dx)}, {buf("y", y), buf("norm", norm)});
  g.y = y.data; g.norm = norm.data; g.dy = dy.data; g.dx = dx.data;
  return Work{[g] { run<TK_OP_l2norm_backward>(cpu_backend(), g); }, nullptr};
}

// ---- losses, dot, axpby -------------------------------------------------------------------------------
LossArgs loss_args(Args& a, F32* x, F32* target) {
  LossArgs g;
  g.n = a.integer("n", 0, kMax);
  g.divisor = finite_float(a, "divisor", 0.0);
  *x = a.f32("x", g.n);
  *target = a.f32("target", g.n);
  g.x = x->data; g.target = target->data;
  return g;
}

Work loss_forward(Args& a, int op) {
  F32 x, target;
  LossArgs g = loss_args(a, &x, &target);
  F32 loss = a.f32("loss", 1);
  disjoint(a, {buf("loss", loss)}, {buf("x", x), buf("target", target)});
  g.loss = loss.data;
  if (op == TK_OP_mse_forward) return Work{[g] { run<TK_OP_mse_forward>(cpu_backend(), g); }, nullptr};
  return Work{[g] { run<TK_OP_bce_forward>(cpu_backend(), g); }, nullptr};
}

Work loss_backward(Args& a, int op) {
  F32 x, target;
  const LossArgs f = loss_args(a, &x, &target);
  LossBackwardArgs g;
  g.n = f.n; g.x = f.x; g.target = f.target; g.divisor = f.divisor;
  F32 dy = a.f32("dy", 1), dx = a.f32("dx", g.n);
  in_place_or_disjoint(a, buf("dx", dx), buf("x", x));
  in_place_or_disjoint(a, buf("dx", dx), buf("target", target));
  disjoint(a, {buf("dx", dx)}, {buf("dy", dy)});
  g.dy = dy.data; g.dx = dx.data;
  if (op == TK_OP_mse_backward) return Work{[g] { run<TK_OP_mse_backward>(cpu_backend(), g); }, nullptr};
  return Work{[g] { run<TK_OP_bce_backward>(cpu_backend(), g); }, nullptr};
}

Work parse_mse_forward(Args& a) { return loss_forward(a, TK_OP_mse_forward); }
Work parse_mse_backward(Args& a) { return loss_backward(a, TK_OP_mse_backward); }
Work parse_bce_forward(Args& a) { return loss_forward(a, TK_OP_bce_forward); }
Work parse_bce_backward(Args& a) { return loss_backward(a, TK_OP_bce_backward); }

Work parse_dot_forward(Args& a) {
  DotArgs g;
  g.n = a.integer("n", 0, kMax);
  F32 x = a.f32("x", g.n), w = a.f32("w", g.n), y = a.f32("y", 1);
  disjoint(a, {buf("y", y)}, {buf("x", x), buf("w", w)});
  g.x = x.data; g.w = w.data; g.y = y.data;
  return Work{[g] { run<TK_OP_dot_forward>(cpu_backend(), g); }, nullptr};
}

Work parse_axpby(Args& a) {
  AxpbyArgs g;
  g.n = a.integer("n", 0, kMax);
  g.alpha = finite_float(a, "alpha", 1.0);
  g.beta = finite_float(a, "beta", 0.0);
  F32 x = a.f32("a", g.n), ap = a.f32_opt("ap", 1), b = a.f32_opt("b", g.n), y = a.f32("y", g.n);
  in_place_or_disjoint(a, buf("y", y), buf("a", x));
  in_place_or_disjoint(a, buf("y", y), buf("b", b));
  disjoint(a, {buf("y", y)}, {buf("ap", ap)});
  g.a = x.data; g.ap = ap.data; g.b = b.data; g.y = y.data;
  return Work{[g] { run<TK_OP_axpby>(cpu_backend(), g); }, nullptr};
}

}  // namespace

void init_heads(Napi::Env env, Napi::Object exports) {
  define(env, exports, "unaryForward", parse_unary_forward);
  define(env, exports, "unaryBackward", parse_unary_backward);
  define(env, exports, "copyStrided", parse_copy_strided);
  define(env, exports, "maskedMeanForward", parse_masked_mean_forward);
  define(env, exports, "maskedMeanBackward", parse_masked_mean_backward);
  define(env, exports, "cosineForward", parse_cosine_forward);
  define(env, exports, "cosineBackward", parse_cosine_backward);
  define(env, exports, "l2NormForward", parse_l2norm_forward);
  define(env, exports, "l2NormBackward", parse_l2norm_backward);
  define(env, exports, "mseForward", parse_mse_forward);
  define(env, exports, "mseBackward", parse_mse_backward);
  define(env, exports, "bceForward", parse_bce_forward);
  define(env, exports, "bceBackward", parse_bce_backward);
  define(env, exports, "dotForward", parse_dot_forward);
  define(env, exports, "axpby", parse_axpby);
}

}  // namespace binding
}  // namespace tk
