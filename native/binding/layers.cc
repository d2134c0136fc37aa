// Layer ops: layerNormForward/Backward, geluForward/Backward, biasAdd, biasBackward, add, scale (by s·sp[0]),
// dropout, crossEntropy, embeddingForward/Backward (each also as <name>Async).
// Aliasing: element-wise ops may run in place (output === input) but never on partially
// overlapping arrays; everything else needs separate outputs (crossEntropy's dlogits may be logits).
#include <cmath>
#include <cstdio>
#include <memory>

#include "common.h"

namespace tk {
namespace binding {
namespace {

constexpr int64_t kMax = int64_t(1) << 40;
constexpr int64_t kMaxSeed = (int64_t(1) << 53) - 1;  // JS numbers are exact up to here

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

int64_t product(Args& a, int64_t rows, int64_t cols) {
  if (cols != 0 && rows > kMax / cols) a.fail("shape " + shape_str({rows, cols}) + " is too large");
  return rows * cols;
}

struct Buf {
  const char* name;
  const void* p;
  int64_t bytes;
};
Buf buf(const char* name, const F32& f) { return {name, f.data, f.length * 4}; }
Buf buf(const char* name, const I32& i) { return {name, i.data, i.length * 4}; }

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

// Every id in [0, V) (or equal to `ignore` when allow_ignore); names the first that is not.
void check_ids(Args& a, const char* name, const int32_t* ids, int64_t n, int64_t V, bool allow_ignore = false,
               int32_t ignore = 0) {
  for (int64_t i = 0; i < n; i++) {
    const int32_t t = ids[i];
    if ((t >= 0 && t < V) || (allow_ignore && t == ignore)) continue;
    a.fail(std::string("argument '") + name + "'[" + std::to_string(i) + "] = " + std::to_string(t) +
           " is out of range, expected 0.." + std::to_string(V - 1) +
           (allow_ignore ? " or ignoreIndex " + std::to_string(ignore) : std::string()));
  }
}

Work parse_layernorm_forward(Args& a) {
  LayerNormArgs g;
  g.rows = a.integer("rows", 0, kMax);
  g.C = a.integer("C", 1, kMax);
  const double eps = a.number("eps", 1e-5);
  if (!(static_cast<float>(eps) > 0.f) || !std::isfinite(eps))
    a.fail("argument 'eps' = " + num(eps) + " is out of range, expected a finite float32 > 0");
  g.eps = static_cast<float>(eps);
  const int64_t n = product(a, g.rows, g.C);
  F32 x = a.f32("x", n), gamma = a.f32_opt("gamma", g.C), beta = a.f32_opt("beta", g.C);
  F32 residual = a.f32_opt("residual", n);
  F32 y = a.f32("y", n), mean = a.f32("mean", g.rows), rstd = a.f32("rstd", g.rows);
  disjoint(a, {buf("y", y), buf("mean", mean), buf("rstd", rstd)},
           {buf("x", x), buf("gamma", gamma), buf("beta", beta), buf("residual", residual)});
  g.x = x.data; g.gamma = gamma.data; g.beta = beta.data; g.y = y.data; g.mean = mean.data; g.rstd = rstd.data;
  g.residual = residual.data;
  return Work{[g, be = &a.backend()] { run<TK_OP_layernorm_forward>(*be, g); }, nullptr};
}

Work parse_layernorm_backward(Args& a) {
  LayerNormBackwardArgs g;
  g.rows = a.integer("rows", 0, kMax);
  g.C = a.integer("C", 1, kMax);
  const int64_t n = product(a, g.rows, g.C);
  F32 x = a.f32("x", n), gamma = a.f32_opt("gamma", g.C), mean = a.f32("mean", g.rows), rstd = a.f32("rstd", g.rows);
  F32 dy = a.f32("dy", n), residual = a.f32_opt("residual", n);
  F32 dx = a.f32_opt("dx", n), dgamma = a.f32_opt("dgamma", g.C), dbeta = a.f32_opt("dbeta", g.C);
  disjoint(a, {buf("dx", dx), buf("dgamma", dgamma), buf("dbeta", dbeta)},
           {buf("x", x), buf("gamma", gamma), buf("mean", mean), buf("rstd", rstd), buf("dy", dy), buf("residual", residual)});
  g.x = x.data; g.gamma = gamma.data; g.mean = mean.data; g.rstd = rstd.data; g.dy = dy.data;
  g.residual = residual.data;
  g.dx = dx.data; g.dgamma = dgamma.data; g.dbeta = dbeta.data;
  return Work{[g, be = &a.backend()] { run<TK_OP_layernorm_backward>(*be, g); }, nullptr};
}

int gelu_approx(Args& a) { return a.choice("approximate", {"none", "tanh"}, 0) == 1 ? GELU_TANH : GELU_ERF; }

Work parse_gelu_forward(Args& a) {
  GeluArgs g;
  g.n = a.integer("n", 0, kMax);
  g.approx = gelu_approx(a);
  F32 x = a.f32("x", g.n), y = a.f32("y", g.n);
  in_place_or_disjoint(a, buf("y", y), buf("x", x));
  g.x = x.data; g.y = y.data;
  return Work{[g, be = &a.backend()] { run<TK_OP_gelu_forward>(*be, g); }, nullptr};
}

Work parse_gelu_backward(Args& a) {
  GeluBackwardArgs g;
  g.n = a.integer("n", 0, kMax);
  g.approx = gelu_approx(a);
  F32 x = a.f32("x", g.n), dy = a.f32("dy", g.n), dx = a.f32("dx", g.n);
  in_place_or_disjoint(a, buf("dx", dx), buf("x", x));
  in_place_or_disjoint(a, buf("dx", dx), buf("dy", dy));
  g.x = x.data; g.dy = dy.data; g.dx = dx.data;
  return Work{[g, be = &a.backend()] { run<TK_OP_gelu_backward>(*be, g); }, nullptr};
}

Work parse_bias_add(Args& a) {
  BiasAddArgs g;
  g.rows = a.integer("rows", 0, kMax);
  g.C = a.integer("C", 1, kMax);
  const int64_t n = product(a, g.rows, g.C);
  F32 x = a.f32("x", n), bias = a.f32("bias", g.C), y = a.f32("y", n);
  in_place_or_disjoint(a, buf("y", y), buf("x", x));
  disjoint(a, {buf("y", y)}, {buf("bias", bias)});
  g.x = x.data; g.bias = bias.data; g.y = y.data;
  return Work{[g, be = &a.backend()] { run<TK_OP_bias_add>(*be, g); }, nullptr};
}

Work parse_bias_backward(Args& a) {
  BiasBackwardArgs g;
  g.rows = a.integer("rows", 0, kMax);
  g.C = a.integer("C", 1, kMax);
  F32 dy = a.f32("dy", product(a, g.rows, g.C)), dbias = a.f32("dbias", g.C);
  disjoint(a, {buf("dbias", dbias)}, {buf("dy", dy)});
  g.dy = dy.data; g.dbias = dbias.data;
  return Work{[g, be = &a.backend()] { run<TK_OP_bias_backward>(*be, g); }, nullptr};
}

Work parse_add(Args& a) {
  AddArgs g;
  g.n = a.integer("n", 0, kMax);
  F32 x = a.f32("a", g.n), b = a.f32("b", g.n), y = a.f32("y", g.n);
  in_place_or_disjoint(a, buf("y", y), buf("a", x));
  in_place_or_disjoint(a, buf("y", y), buf("b", b));
  g.a = x.data; g.b = b.data; g.y = y.data;
  return Work{[g, be = &a.backend()] { run<TK_OP_add>(*be, g); }, nullptr};
}

Work parse_scale(Args& a) {
  ScaleArgs g;
  g.n = a.integer("n", 0, kMax);
  g.s = static_cast<float>(a.number("s"));
  F32 x = a.f32("x", g.n), sp = a.f32_opt("sp", 1);  // sp: one float, the upstream gradient
  disjoint(a, {buf("x", x)}, {buf("sp", sp)});
  g.x = x.data; g.sp = sp.data;
  return Work{[g, be = &a.backend()] { run<TK_OP_scale>(*be, g); }, nullptr};
}

Work parse_dropout(Args& a) {
  DropoutArgs g;
  g.n = a.integer("n", 0, kMax);
  const double p = a.number("p");
  if (!(p >= 0.0 && static_cast<float>(p) < 1.f))
    a.fail("argument 'p' = " + num(p) + " is out of range, expected 0 <= p < 1");
  g.p = static_cast<float>(p);
  g.seed = static_cast<uint64_t>(a.integer("seed", 0, kMaxSeed));
  g.offset = static_cast<uint64_t>(a.integer("offset", 0, kMaxSeed));
  F32 x = a.f32("x", g.n), y = a.f32("y", g.n);
  in_place_or_disjoint(a, buf("y", y), buf("x", x));
  g.x = x.data; g.y = y.data;
  return Work{[g, be = &a.backend()] { run<TK_OP_dropout>(*be, g); }, nullptr};
}

Work parse_cross_entropy(Args& a) {
  auto st = std::make_shared<CrossEntropyArgs>();
  CrossEntropyArgs& g = *st;
  g.N = a.integer("N", 0, kMax);
  g.V = a.integer("V", 1, INT32_MAX);
  g.ignore_index = static_cast<int32_t>(a.integer("ignoreIndex", INT32_MIN, INT32_MAX, -100));
  const double divisor = a.number("divisor", 0.0), grad_scale = a.number("gradScale", 1.0);
  if (!std::isfinite(divisor)) a.fail("argument 'divisor' = " + num(divisor) + " is out of range, expected a finite number");
  if (!std::isfinite(grad_scale))
    a.fail("argument 'gradScale' = " + num(grad_scale) + " is out of range, expected a finite number");
  g.divisor = static_cast<float>(divisor);
  g.grad_scale = static_cast<float>(grad_scale);
  const int64_t n = product(a, g.N, g.V);
  F32 logits = a.f32("logits", n);
  I32 targets = a.i32("targets", g.N);
  F32 dlogits = a.f32_opt("dlogits", n), row_loss = a.f32_opt("rowLoss", g.N), loss_out = a.f32_opt("lossOut", 1);
  if (!targets.device) check_ids(a, "targets", targets.data, g.N, g.V, true, g.ignore_index);
  in_place_or_disjoint(a, buf("dlogits", dlogits), buf("logits", logits));
  disjoint(a, {buf("dlogits", dlogits)}, {buf("targets", targets)});
  disjoint(a, {buf("rowLoss", row_loss)}, {buf("logits", logits), buf("targets", targets), buf("dlogits", dlogits)});
  disjoint(a, {buf("lossOut", loss_out)}, {buf("logits", logits), buf("targets", targets), buf("dlogits", dlogits), buf("rowLoss", row_loss)});
  g.logits = logits.data; g.targets = targets.data; g.dlogits = dlogits.data; g.row_loss = row_loss.data; g.loss_out = loss_out.data;
  const bool on_device = !a.on_cpu() && loss_out.data;
  auto result = [st, on_device](Napi::Env env) -> Napi::Value {
    if (on_device) return env.Undefined();  // the loss is in lossOut, on the device
    Napi::Object o = Napi::Object::New(env);
    o.Set("loss", Napi::Number::New(env, st->loss));
    o.Set("count", Napi::Number::New(env, static_cast<double>(st->count)));
    return o;
  };
  return Work{[st, be = &a.backend()] { run<TK_OP_cross_entropy>(*be, *st); }, result};
}

Work parse_embedding_forward(Args& a) {
  EmbeddingArgs g;
  g.N = a.integer("N", 0, kMax);
  g.C = a.integer("C", 1, kMax);
  const int64_t V = a.integer("V", 1, INT32_MAX);
  I32 ids = a.i32("ids", g.N);
  Weight table = a.weight("table", product(a, V, g.C));  // float32 or bf16
  F32 out = a.f32("out", product(a, g.N, g.C));
  if (!ids.device) check_ids(a, "ids", ids.data, g.N, V);
  disjoint(a, {buf("out", out)}, {{"table", table.data, table.bytes()}, buf("ids", ids)});
  g.ids = ids.data; g.table = table.data; g.table_dtype = table.dtype; g.out = out.data;
  return Work{[g, be = &a.backend()] { run<TK_OP_embedding_forward>(*be, g); }, nullptr};
}

Work parse_embedding_backward(Args& a) {
  EmbeddingBackwardArgs g;
  g.N = a.integer("N", 0, kMax);
  g.C = a.integer("C", 1, kMax);
  const int64_t V = a.integer("V", 1, INT32_MAX);
  I32 ids = a.i32("ids", g.N);
  F32 dout = a.f32("dout", product(a, g.N, g.C)), dtable = a.f32("dtable", product(a, V, g.C));
  g.padding_idx = static_cast<int32_t>(a.integer("paddingIdx", -1, V - 1, -1));
  if (!ids.device) check_ids(a, "ids", ids.data, g.N, V);
  disjoint(a, {buf("dtable", dtable)}, {buf("dout", dout), buf("ids", ids)});
  g.ids = ids.data; g.dout = dout.data; g.dtable = dtable.data;
  return Work{[g, be = &a.backend()] { run<TK_OP_embedding_backward>(*be, g); }, nullptr};
}

}  // namespace

void init_layers(Napi::Env env, Napi::Object exports) {
  define(env, exports, "layerNormForward", parse_layernorm_forward);
  define(env, exports, "layerNormBackward", parse_layernorm_backward);
  define(env, exports, "geluForward", parse_gelu_forward);
  define(env, exports, "geluBackward", parse_gelu_backward);
  define(env, exports, "biasAdd", parse_bias_add);
  define(env, exports, "biasBackward", parse_bias_backward);
  define(env, exports, "add", parse_add);
  define(env, exports, "scale", parse_scale);
  define(env, exports, "dropout", parse_dropout);
  define(env, exports, "crossEntropy", parse_cross_entropy);
  define(env, exports, "embeddingForward", parse_embedding_forward);
  define(env, exports, "embeddingBackward", parse_embedding_backward);
}

}  // namespace binding
}  // namespace tk
