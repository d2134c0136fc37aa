// Decoder layer ops (each also as <name>Async):
//   rmsNormForward({ rows, C, eps?, x, weight?, y, rstd, G?, ldx?, ldy? })
//   rmsNormBackward({ rows, C, x, weight?, rstd, dy, dx?, dweight?, G?, ldx?, lddy?, lddx? })
//   ropeForward / ropeBackward({ B, T, H, D, P, x, ld?, cos, sin, positions })   (in place on x)
//   swigluForward({ rows, C, gate, up, y, ldg?, ldu?, ldy? })
//   swigluBackward({ rows, C, gate, up, dy, dgate?, dup?, ldg?, ldu?, lddy?, lddg?, lddu? })
// Strided arguments are views into wider rows (a packed projection); every output is disjoint from
// every input, and two outputs of one call may share a buffer only as interleaved column ranges.
#include <cmath>
#include <cstdio>

#include "common.h"

namespace tk {
namespace binding {
namespace {

constexpr int64_t kMax = int64_t(1) << 40;

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

// Elements spanned by `rows` rows of width w, ld apart (0 for no rows); fails when too large.
int64_t span(Args& a, int64_t rows, int64_t w, int64_t ld) {
  if (rows == 0 || w == 0) return 0;
  if (rows - 1 > (kMax - w) / ld) a.fail("shape " + shape_str({rows, w}) + " with ld " + std::to_string(ld) + " is too large");
  return (rows - 1) * ld + w;
}

struct Buf {
  const char* name;
  const void* p;
  int64_t bytes;
};
template <class T>
Buf buf(const char* name, const T& t, int64_t elems) { return {name, t.data, t.data ? elems * 4 : 0}; }

void disjoint(Args& a, const Buf& out, std::initializer_list<Buf> ins) {
  for (const Buf& i : ins) a.no_alias(out.name, out.p, out.bytes, i.name, i.p, i.bytes);
}

// Two outputs of one call: disjoint, or interleaved column ranges of one buffer (the same ld, y's
// columns [t, t + w) with t >= w the offset from x mod ld, t + w <= ld), as [dgate | dup] of a fused
// gradient.
void outputs_disjoint(Args& a, const Buf& x, int64_t ldx, const Buf& y, int64_t ldy, int64_t w) {
  auto xb = reinterpret_cast<uintptr_t>(x.p), yb = reinterpret_cast<uintptr_t>(y.p);
  if (!x.p || !y.p || x.bytes <= 0 || y.bytes <= 0) return;
  if (!(xb < yb + static_cast<uintptr_t>(y.bytes) && yb < xb + static_cast<uintptr_t>(x.bytes))) return;
  const int64_t diff = static_cast<int64_t>(yb - xb);
  if (ldx == ldy && diff % 4 == 0) {
    const int64_t t = ((diff / 4) % ldx + ldx) % ldx;
    if (t >= w && t + w <= ldx) return;
  }
  a.fail(std::string("output '") + y.name + "' overlaps output '" + x.name +
         "'; expected separate buffers or views of one packed buffer with the same ld and disjoint columns");
}

// ---- RMSNorm ----------------------------------------------------------------------------------------

// rows, C, G and the checks between them.
void rms_shape(Args& a, int64_t* rows, int64_t* C, int64_t* G) {
  *rows = a.integer("rows", 0, kMax);
  *C = a.integer("C", 1, kMax);
  *G = a.integer("G", 1, kMax, 1);
  if (*rows % *G != 0)
    a.fail("argument 'rows' = " + std::to_string(*rows) + " is not a multiple of G = " + std::to_string(*G) +
           ", expected whole groups of G rows");
  if (*G > kMax / *C) a.fail("shape " + shape_str({*G, *C}) + " is too large");
}

Work parse_rmsnorm_forward(Args& a) {
  RmsNormArgs g;
  rms_shape(a, &g.rows, &g.C, &g.G);
  const double eps = a.number("eps", 1e-6);
  if (!(static_cast<float>(eps) > 0.f) || !std::isfinite(eps))
    a.fail("argument 'eps' = " + num(eps) + " is out of range, expected a finite float32 > 0");
  g.eps = static_cast<float>(eps);
  const int64_t GC = g.G * g.C, groups = g.rows / g.G;
  g.ldx = a.integer("ldx", GC, kMax, GC);
  g.ldy = a.integer("ldy", GC, kMax, GC);
  const int64_t nx = span(a, groups, GC, g.ldx), ny = span(a, groups, GC, g.ldy);
  F32 x = a.f32("x", nx), weight = a.f32_opt("weight", g.C), y = a.f32("y", ny), rstd = a.f32("rstd", g.rows);
  const Buf ins[] = {buf("x", x, nx), buf("weight", weight, g.C)};
  for (const Buf& o : {buf("y", y, ny), buf("rstd", rstd, g.rows)})
    for (const Buf& i : ins) a.no_alias(o.name, o.p, o.bytes, i.name, i.p, i.bytes);
  a.no_alias("rstd", rstd.data, g.rows * 4, "y", y.data, ny * 4);
  g.x = x.data; g.weight = weight.data; g.y = y.data; g.rstd = rstd.data;
  return Work{[g, be = &a.backend()] { run<TK_OP_rmsnorm_forward>(*be, g); }, nullptr};
}

Work parse_rmsnorm_backward(Args& a) {
  RmsNormBackwardArgs g;
  rms_shape(a, &g.rows, &g.C, &g.G);
  const int64_t GC = g.G * g.C, groups = g.rows / g.G;
  g.ldx = a.integer("ldx", GC, kMax, GC);
  g.lddy = a.integer("lddy", GC, kMax, GC);
  g.lddx = a.integer("lddx", GC, kMax, GC);
  const int64_t nx = span(a, groups, GC, g.ldx), ndy = span(a, groups, GC, g.lddy), ndx = span(a, groups, GC, g.lddx);
  F32 x = a.f32("x", nx), weight = a.f32_opt("weight", g.C), rstd = a.f32("rstd", g.rows), dy = a.f32("dy", ndy);
  F32 dx = a.f32_opt("dx", ndx), dweight = a.f32_opt("dweight", g.C);
  const Buf dxb = buf("dx", dx, ndx), dwb = buf("dweight", dweight, g.C);
  for (const Buf& o : {dxb, dwb})
    disjoint(a, o, {buf("x", x, nx), buf("weight", weight, g.C), buf("rstd", rstd, g.rows), buf("dy", dy, ndy)});
  a.no_alias("dweight", dweight.data, dwb.bytes, "dx", dx.data, dxb.bytes);
  g.x = x.data; g.weight = weight.data; g.rstd = rstd.data; g.dy = dy.data; g.dx = dx.data; g.dweight = dweight.data;
  return Work{[g, be = &a.backend()] { run<TK_OP_rmsnorm_backward>(*be, g); }, nullptr};
}

// ---- RoPE ---------------------------------------------------------------------------------------------

template <int op>
Work parse_rope(Args& a) {
  RopeArgs g;
  g.B = a.integer("B", 0, kMax);
  g.T = a.integer("T", 0, kMax);
  g.H = a.integer("H", 1, kMax);
  g.D = a.integer("D", 2, 1 << 16);
  if (g.D % 2 != 0) a.fail("argument 'D' = " + std::to_string(g.D) + " is odd, expected an even head dim (rotate_half pairs d with d + D/2)");
  g.P = a.integer("P", 1, kMax);
  if (g.B > kMax / std::max<int64_t>(g.T, 1) || g.H > kMax / g.D) a.fail("shape " + shape_str({g.B, g.T, g.H, g.D}) + " is too large");
  const int64_t N = g.B * g.T, HD = g.H * g.D, half = g.D / 2;
  if (g.P > kMax / half) a.fail("argument 'P' = " + std::to_string(g.P) + " is too large");
  g.ld = a.integer("ld", HD, kMax, HD);
  const int64_t nx = span(a, N, HD, g.ld);
  F32 x = a.f32("x", nx), cs = a.f32("cos", g.P * half), sn = a.f32("sin", g.P * half);
  I32 pos = a.i32("positions", N);
  for (int64_t t = 0; t < N && !pos.device; t++)
    if (pos.data[t] < 0 || pos.data[t] >= g.P)
      a.fail("argument 'positions'[" + std::to_string(t) + "] = " + std::to_string(pos.data[t]) +
             " is out of range, expected 0.." + std::to_string(g.P - 1) + " (rows of the cos/sin tables)");
  disjoint(a, buf("x", x, nx), {buf("cos", cs, g.P * half), buf("sin", sn, g.P * half), buf("positions", pos, N)});
  g.x = x.data; g.cos = cs.data; g.sin = sn.data; g.pos = pos.data;
  return Work{[g, be = &a.backend()] { run<op>(*be, g); }, nullptr};
}

// ---- SwiGLU -------------------------------------------------------------------------------------------

Work parse_swiglu_forward(Args& a) {
  SwigluArgs g;
  g.rows = a.integer("rows", 0, kMax);
  g.C = a.integer("C", 1, kMax);
  g.ldg = a.integer("ldg", g.C, kMax, g.C);
  g.ldu = a.integer("ldu", g.C, kMax, g.C);
  g.ldy = a.integer("ldy", g.C, kMax, g.C);
  const int64_t ng = span(a, g.rows, g.C, g.ldg), nu = span(a, g.rows, g.C, g.ldu), ny = span(a, g.rows, g.C, g.ldy);
  F32 gate = a.f32("gate", ng), up = a.f32("up", nu), y = a.f32("y", ny);
  disjoint(a, buf("y", y, ny), {buf("gate", gate, ng), buf("up", up, nu)});
  g.gate = gate.data; g.up = up.data; g.y = y.data;
  return Work{[g, be = &a.backend()] { run<TK_OP_swiglu_forward>(*be, g); }, nullptr};
}

Work parse_swiglu_backward(Args& a) {
  SwigluBackwardArgs g;
  g.rows = a.integer("rows", 0, kMax);
  g.C = a.integer("C", 1, kMax);
  g.ldg = a.integer("ldg", g.C, kMax, g.C);
  g.ldu = a.integer("ldu", g.C, kMax, g.C);
  g.lddy = a.integer("lddy", g.C, kMax, g.C);
  g.lddg = a.integer("lddg", g.C, kMax, g.C);
  g.lddu = a.integer("lddu", g.C, kMax, g.C);
  const int64_t ng = span(a, g.rows, g.C, g.ldg), nu = span(a, g.rows, g.C, g.ldu), ndy = span(a, g.rows, g.C, g.lddy);
  const int64_t ndg = span(a, g.rows, g.C, g.lddg), ndu = span(a, g.rows, g.C, g.lddu);
  F32 gate = a.f32("gate", ng), up = a.f32("up", nu), dy = a.f32("dy", ndy);
  F32 dgate = a.f32_opt("dgate", ndg), dup = a.f32_opt("dup", ndu);
  const Buf dgb = buf("dgate", dgate, ndg), dub = buf("dup", dup, ndu);
  for (const Buf& o : {dgb, dub}) disjoint(a, o, {buf("gate", gate, ng), buf("up", up, nu), buf("dy", dy, ndy)});
  outputs_disjoint(a, dgb, g.lddg, dub, g.lddu, g.C);
  g.gate = gate.data; g.up = up.data; g.dy = dy.data; g.dgate = dgate.data; g.dup = dup.data;
  return Work{[g, be = &a.backend()] { run<TK_OP_swiglu_backward>(*be, g); }, nullptr};
}

}  // namespace

void init_decoder(Napi::Env env, Napi::Object exports) {
  define(env, exports, "rmsNormForward", parse_rmsnorm_forward);
  define(env, exports, "rmsNormBackward", parse_rmsnorm_backward);
  define(env, exports, "ropeForward", parse_rope<TK_OP_rope_forward>);
  define(env, exports, "ropeBackward", parse_rope<TK_OP_rope_backward>);
  define(env, exports, "swigluForward", parse_swiglu_forward);
  define(env, exports, "swigluBackward", parse_swiglu_backward);
}

}  // namespace binding
}  // namespace tk
