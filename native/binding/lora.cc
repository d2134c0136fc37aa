// LoRA linear ops (shapes: x [M, in], W [out, in], bias [out], A [r, in], B [out, r], h [M, r], y [M, out];
// W, the frozen base weight, may be bf16: a Uint16Array or a bf16 device buffer):
//   loraForward({ M, in, out, r, x, W, bias?, A, B, scale, dropoutP?, seed?, offset?, y, h })
//   loraBackward({ M, in, out, r, x, W, A, B, h, scale, dropoutP?, seed?, offset?, dy, dx?, dA, dB, dbias? })
// Every array must hold exactly its shape's element count.
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include <sstream>

#include "common.h"

namespace tk {
namespace binding {
namespace {

constexpr int64_t kMax = int64_t(1) << 31;
constexpr int64_t kSeedMax = (int64_t(1) << 53) - 1;  // exact in a JS number

// A number as a person writes it (1, 0.999, 1e-08), for error messages.
std::string num(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

struct Buf {
  const char* name;
  const void* p;
  int64_t n;  // elements of 4 bytes (a bf16 W: half its element count)
};

F32 exact(Args& a, const char* name, std::initializer_list<int64_t> dims, const char* labels, bool optional = false) {
  F32 t = optional ? a.f32_opt(name, 0) : a.f32(name, 0);
  int64_t need = 1;
  for (int64_t d : dims) need *= d;
  if ((t.data || !optional) && t.length != need)  // an absent optional one has no data
    a.fail(std::string("argument '") + name + "' has " + std::to_string(t.length) + " elements, expected " +
           std::to_string(need) + " (" + labels + " = " + shape_str(dims) + ")");
  return t;
}

// Each output must overlap no input and no other output.
void check_outputs(Args& a, const std::vector<Buf>& outs, const std::vector<Buf>& ins) {
  for (size_t i = 0; i < outs.size(); i++) {
    for (const Buf& in : ins) a.no_alias(outs[i].name, outs[i].p, outs[i].n * 4, in.name, in.p, in.n * 4);
    for (size_t j = i + 1; j < outs.size(); j++)
      a.no_alias(outs[j].name, outs[j].p, outs[j].n * 4, outs[i].name, outs[i].p, outs[i].n * 4);
  }
}

// The arguments both directions share: sizes, x, W, A, B, scale, dropout.
LoraArgs common_args(Args& a, std::vector<Buf>& ins) {
  LoraArgs l;
  l.M = a.integer("M", 0, kMax);
  l.in = a.integer("in", 1, kMax);
  l.out = a.integer("out", 1, kMax);
  l.r = a.integer("r", 1, kMax);
  const double scale = a.number("scale");
  if (!std::isfinite(scale)) a.fail("argument 'scale' must be finite, got " + num(scale));
  l.scale = static_cast<float>(scale);
  const double p = a.number("dropoutP", 0.0);
  if (!(p >= 0 && static_cast<float>(p) < 1.f)) a.fail("argument 'dropoutP' = " + num(p) + " is out of range, expected 0 <= p < 1");
  l.dropout_p = static_cast<float>(p);
  l.seed = static_cast<uint64_t>(a.integer("seed", 0, kSeedMax, 0));
  l.offset = static_cast<uint64_t>(a.integer("offset", 0, kSeedMax, 0));
  l.x = exact(a, "x", {l.M, l.in}, "[M, in]").data;
  const Weight W = a.weight("W", 0);
  if (W.length != l.out * l.in)
    a.fail("argument 'W' has " + std::to_string(W.length) + " elements, expected " + std::to_string(l.out * l.in) +
           " ([out, in] = " + shape_str({l.out, l.in}) + ")");
  l.W = W.data;
  l.w_dtype = W.dtype;
  l.A = exact(a, "A", {l.r, l.in}, "[r, in]").data;
  l.Bm = exact(a, "B", {l.out, l.r}, "[out, r]").data;
  const int precision = precision_arg(a);
  l.bf16 = precision == 1;
  l.fp16 = precision == 2;
  ins.insert(ins.end(), {{"x", l.x, l.M * l.in}, {"W", l.W, (W.bytes() + 3) / 4}, {"A", l.A, l.r * l.in},
                         {"B", l.Bm, l.out * l.r}});
  return l;
}

Work parse_forward(Args& a) {
  std::vector<Buf> ins;
  LoraArgs l = common_args(a, ins);
  l.bias = exact(a, "bias", {l.out}, "[out]", true).data;
  l.y = exact(a, "y", {l.M, l.out}, "[M, out]").data;
  l.h = exact(a, "h", {l.M, l.r}, "[M, r]").data;
  ins.push_back({"bias", l.bias, l.out});
  check_outputs(a, {{"y", l.y, l.M * l.out}, {"h", l.h, l.M * l.r}}, ins);
  return Work{[l, be = &a.backend()] { run<TK_OP_lora_forward>(*be, l); }, nullptr};
}

Work parse_backward(Args& a) {
  std::vector<Buf> ins;
  LoraBackwardArgs b;
  b.fwd = common_args(a, ins);
  const LoraArgs& l = b.fwd;
  b.fwd.h = exact(a, "h", {l.M, l.r}, "[M, r]").data;
  b.dy = exact(a, "dy", {l.M, l.out}, "[M, out]").data;
  b.dx = exact(a, "dx", {l.M, l.in}, "[M, in]", true).data;
  b.dA = exact(a, "dA", {l.r, l.in}, "[r, in]").data;
  b.dB = exact(a, "dB", {l.out, l.r}, "[out, r]").data;
  b.dbias = exact(a, "dbias", {l.out}, "[out]", true).data;
  ins.insert(ins.end(), {{"h", l.h, l.M * l.r}, {"dy", b.dy, l.M * l.out}});
  check_outputs(a, {{"dx", b.dx, l.M * l.in}, {"dA", b.dA, l.r * l.in}, {"dB", b.dB, l.out * l.r}, {"dbias", b.dbias, l.out}},
                ins);
  return Work{[b, be = &a.backend()] { run<TK_OP_lora_backward>(*be, b); }, nullptr};
}

}  // namespace

void init_lora(Napi::Env env, Napi::Object exports) {
  define(env, exports, "loraForward", parse_forward);
  define(env, exports, "loraBackward", parse_backward);
}

}  // namespace binding
}  // namespace tk
