// attentionForward({ B, H, Tq, Tk, D, q, k, v, o, lse, ldq?, ldk?, ldv?, ldo?, keyMask?, causal?, scale?,
//                    dropoutP?, seed?, offset?, Hkv?, window?, queryOffset? })
// attentionBackward({ ...the same..., dout, dq, dk, dv, lddo?, lddq?, lddk?, lddv? })
// attentionDecode({ B, H, Hkv?, Tk, Tmax?, D, q, k, v, o, ldq?, ldk?, ldv?, ldo?, lengths?, keyMask?,
//                   window?, scale? })
// Tensors are (B, T, heads, D) with ld floats between tokens (default heads·D; q and o have H heads, k
// and v Hkv), so q, k, v may be views into one packed qkv projection [B, T, (H + 2·Hkv)·D], and dq, dk,
// dv views into one packed gradient.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "common.h"

namespace tk {
namespace binding {
namespace {

constexpr int64_t kMaxDim = int64_t(1) << 31, kMaxLd = int64_t(1) << 40;

// The shortest decimal that reads back as x (0.1, not 0.100000).
std::string num(double x) {
  char buf[32];
  for (int prec = 1; prec <= 17; prec++) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  return buf;
}

// Elements spanned by `rows` tokens of width w, ld apart (saturates instead of overflowing, so an
// absurd shape fails the length check).
int64_t span(int64_t rows, int64_t w, int64_t ld) {
  if (rows == 0 || w == 0) return 0;
  __int128 n = static_cast<__int128>(rows - 1) * ld + w;
  return n > INT64_MAX ? INT64_MAX : static_cast<int64_t>(n);
}

// a·b·c, saturating like span().
int64_t count(int64_t a, int64_t b, int64_t c) {
  __int128 n = static_cast<__int128>(a) * b * c;
  return n > INT64_MAX ? INT64_MAX : static_cast<int64_t>(n);
}

struct View {
  const char* name;
  const void* p;
  int64_t bytes;
  int64_t ld;  // floats between tokens; 0 for a plain buffer
};

// Outputs may share one buffer when they interleave without a common element (dq, dk, dv as views of
// a packed [B, T, (H + 2·Hkv)·D] gradient): with the same ld and y's columns [t, t + wy) (t its offset
// from x mod ld) inside [wx, ld), no row of one meets a row of the other, whatever the token counts.
void outputs_disjoint(Args& a, const View& x, int64_t wx, const View& y, int64_t wy) {
  auto xb = reinterpret_cast<uintptr_t>(x.p), yb = reinterpret_cast<uintptr_t>(y.p);
  if (!x.p || !y.p || x.bytes <= 0 || y.bytes <= 0) return;
  if (!(xb < yb + static_cast<uintptr_t>(y.bytes) && yb < xb + static_cast<uintptr_t>(x.bytes))) return;
  if (x.ld > 0 && x.ld == y.ld) {
    const int64_t diff = static_cast<int64_t>(yb - xb);  // two's complement wrap gives the signed difference
    if (diff % 4 == 0) {
      const int64_t t = ((diff / 4) % x.ld + x.ld) % x.ld;
      if (t >= wx && t + wy <= x.ld) return;
    }
  }
  a.fail(std::string("output '") + y.name + "' overlaps output '" + x.name + "'; expected separate buffers" +
         (x.ld > 0 && y.ld > 0 ? " or views of one packed buffer with the same ld and disjoint columns" : ""));
}

// Hkv (default H): a divisor of H.
int64_t kv_heads(Args& a, int64_t H) {
  const int64_t Hkv = a.integer("Hkv", H > 0 ? 1 : 0, H, H);
  if (Hkv > 0 && H % Hkv != 0)
    a.fail("argument 'Hkv' = " + std::to_string(Hkv) + " does not divide H = " + std::to_string(H) +
           ", expected a divisor (each kv head serves H / Hkv query heads)");
  return Hkv;
}

// Reads the arguments both ops share; `inputs` receives the buffers the kernel reads, for the alias checks.
AttentionArgs parse_common(Args& a, bool backward, std::vector<View>& inputs) {
  AttentionArgs f;
  f.B = a.integer("B", 0, kMaxDim);
  f.H = a.integer("H", 0, kMaxDim);
  f.Tq = a.integer("Tq", 0, kMaxDim);
  f.Tk = a.integer("Tk", 0, kMaxDim);
  f.D = a.integer("D", 1, 1 << 16);
  f.Hkv = kv_heads(a, f.H);
  const int64_t HD = f.H * f.D, minld = std::max<int64_t>(HD, 1), KD = f.Hkv * f.D, minkv = std::max<int64_t>(KD, 1);
  f.ldq = a.integer("ldq", minld, kMaxLd, minld);
  f.ldk = a.integer("ldk", minkv, kMaxLd, minkv);
  f.ldv = a.integer("ldv", minkv, kMaxLd, minkv);
  f.ldo = a.integer("ldo", minld, kMaxLd, minld);
  const int64_t nq = span(f.B * f.Tq, HD, f.ldq), nk = span(f.B * f.Tk, KD, f.ldk), nv = span(f.B * f.Tk, KD, f.ldv);
  const int64_t no = span(f.B * f.Tq, HD, f.ldo), nl = count(f.B, f.H, f.Tq);
  F32 q = a.f32("q", nq), k = a.f32("k", nk), v = a.f32("v", nv);
  F32 o = a.f32("o", no), lse = a.f32("lse", nl);
  U8 mask = a.u8_opt("keyMask", f.B * f.Tk);
  for (int64_t i = 0; i < f.B * f.Tk && mask.data && !mask.device; i++)
    if (mask.data[i] > 1)
      a.fail("argument 'keyMask' has " + std::to_string(mask.data[i]) + " at index " + std::to_string(i) +
             ", expected 0 (padding) or 1 (attend)");
  f.causal = a.flag("causal", false);
  f.window = a.integer("window", 0, kMaxDim, 0);
  f.q_offset = a.integer("queryOffset", 0, kMaxDim, 0);
  if (f.window > 0 && !f.causal) a.fail("argument 'window' = " + std::to_string(f.window) + " needs causal: true (a sliding window limits a causal mask)");
  if (f.q_offset > 0 && !f.causal) a.fail("argument 'queryOffset' = " + std::to_string(f.q_offset) + " needs causal: true (it places the queries of a causal mask)");
  f.scale = static_cast<float>(a.number("scale", 1.0 / std::sqrt(static_cast<double>(f.D))));
  if (!std::isfinite(f.scale)) a.fail("argument 'scale' = " + num(f.scale) + ", expected a finite number");
  const double p = a.number("dropoutP", 0.0);
  if (!(p >= 0.0 && p < 1.0)) a.fail("argument 'dropoutP' = " + num(p) + " is out of range, expected [0, 1)");
  f.dropout_p = static_cast<float>(p);
  constexpr int64_t k2p53 = int64_t(1) << 53;
  f.seed = static_cast<uint64_t>(a.integer("seed", 0, k2p53, 0));
  f.offset = static_cast<uint64_t>(a.integer("offset", 0, k2p53, 0));
  f.q = q.data; f.k = k.data; f.v = v.data; f.o = o.data; f.lse = lse.data;
  f.key_mask = mask.data;
  inputs = {{"q", q.data, nq * 4, f.ldq}, {"k", k.data, nk * 4, f.ldk}, {"v", v.data, nv * 4, f.ldv},
            {"keyMask", mask.data, mask.data ? f.B * f.Tk : 0, 0}};
  if (backward) {
    inputs.push_back({"o", o.data, no * 4, f.ldo});
    inputs.push_back({"lse", lse.data, nl * 4, 0});
  }
  return f;
}

Work parse_forward(Args& a) {
  std::vector<View> in;
  AttentionArgs f = parse_common(a, false, in);
  const View outs[] = {{"o", f.o, span(f.B * f.Tq, f.H * f.D, f.ldo) * 4, f.ldo}, {"lse", f.lse, count(f.B, f.H, f.Tq) * 4, 0}};
  for (const View& o : outs)
    for (const View& i : in) a.no_alias(o.name, o.p, o.bytes, i.name, i.p, i.bytes);
  outputs_disjoint(a, outs[0], f.H * f.D, outs[1], 0);
  return Work{[f, be = &a.backend()] { run<TK_OP_attention_forward>(*be, f); }, nullptr};
}

Work parse_backward(Args& a) {
  std::vector<View> in;
  AttentionBackwardArgs g;
  g.fwd = parse_common(a, true, in);
  const AttentionArgs& f = g.fwd;
  const int64_t HD = f.H * f.D, minld = std::max<int64_t>(HD, 1), KD = f.Hkv * f.D, minkv = std::max<int64_t>(KD, 1);
  g.lddo = a.integer("lddo", minld, kMaxLd, minld);
  g.lddq = a.integer("lddq", minld, kMaxLd, minld);
  g.lddk = a.integer("lddk", minkv, kMaxLd, minkv);
  g.lddv = a.integer("lddv", minkv, kMaxLd, minkv);
  const int64_t ndo = span(f.B * f.Tq, HD, g.lddo), ndq = span(f.B * f.Tq, HD, g.lddq);
  const int64_t ndk = span(f.B * f.Tk, KD, g.lddk), ndv = span(f.B * f.Tk, KD, g.lddv);
  F32 dout = a.f32("dout", ndo), dq = a.f32("dq", ndq), dk = a.f32("dk", ndk), dv = a.f32("dv", ndv);
  in.push_back({"dout", dout.data, ndo * 4, g.lddo});
  const View outs[] = {{"dq", dq.data, ndq * 4, g.lddq}, {"dk", dk.data, ndk * 4, g.lddk}, {"dv", dv.data, ndv * 4, g.lddv}};
  for (const View& o : outs)
    for (const View& i : in) a.no_alias(o.name, o.p, o.bytes, i.name, i.p, i.bytes);
  outputs_disjoint(a, outs[0], HD, outs[1], KD);
  outputs_disjoint(a, outs[0], HD, outs[2], KD);
  outputs_disjoint(a, outs[1], KD, outs[2], KD);
  g.dout = dout.data; g.dq = dq.data; g.dk = dk.data; g.dv = dv.data;
  return Work{[g, be = &a.backend()] { run<TK_OP_attention_backward>(*be, g); }, nullptr};
}

Work parse_decode(Args& a) {
  AttentionDecodeArgs f;
  f.B = a.integer("B", 0, kMaxDim);
  f.H = a.integer("H", 0, kMaxDim);
  f.Tk = a.integer("Tk", 0, kMaxDim);
  f.Tmax = a.integer("Tmax", f.Tk, kMaxDim, f.Tk);
  f.D = a.integer("D", 1, 1 << 16);
  f.Hkv = kv_heads(a, f.H);
  const int64_t HD = f.H * f.D, minld = std::max<int64_t>(HD, 1), KD = f.Hkv * f.D, minkv = std::max<int64_t>(KD, 1);
  f.ldq = a.integer("ldq", minld, kMaxLd, minld);
  f.ldk = a.integer("ldk", minkv, kMaxLd, minkv);
  f.ldv = a.integer("ldv", minkv, kMaxLd, minkv);
  f.ldo = a.integer("ldo", minld, kMaxLd, minld);
  // Tokens read from the caches: keys [0, Tk) of each batch row, Tmax tokens apart.
  const int64_t tokens = f.B > 0 && f.Tk > 0 ? (f.B - 1) * f.Tmax + f.Tk : 0;
  const int64_t nq = span(f.B, HD, f.ldq), nk = span(tokens, KD, f.ldk), nv = span(tokens, KD, f.ldv), no = span(f.B, HD, f.ldo);
  F32 q = a.f32("q", nq), k = a.f32("k", nk), v = a.f32("v", nv), o = a.f32("o", no);
  I32 lengths = a.i32_opt("lengths", f.B);
  for (int64_t b = 0; b < f.B && lengths.data && !lengths.device; b++)
    if (lengths.data[b] < 0 || lengths.data[b] > f.Tk)
      a.fail("argument 'lengths'[" + std::to_string(b) + "] = " + std::to_string(lengths.data[b]) +
             " is out of range, expected 0.." + std::to_string(f.Tk) + " (Tk)");
  U8 mask = a.u8_opt("keyMask", f.B * f.Tk);
  for (int64_t i = 0; i < f.B * f.Tk && mask.data && !mask.device; i++)
    if (mask.data[i] > 1)
      a.fail("argument 'keyMask' has " + std::to_string(mask.data[i]) + " at index " + std::to_string(i) +
             ", expected 0 (padding) or 1 (attend)");
  f.window = a.integer("window", 0, kMaxDim, 0);
  f.scale = static_cast<float>(a.number("scale", 1.0 / std::sqrt(static_cast<double>(f.D))));
  if (!std::isfinite(f.scale)) a.fail("argument 'scale' = " + num(f.scale) + ", expected a finite number");
  const View ins[] = {{"q", q.data, nq * 4, 0}, {"k", k.data, nk * 4, 0}, {"v", v.data, nv * 4, 0},
                      {"lengths", lengths.data, lengths.data ? f.B * 4 : 0, 0}, {"keyMask", mask.data, mask.data ? f.B * f.Tk : 0, 0}};
  for (const View& i : ins) a.no_alias("o", o.data, no * 4, i.name, i.p, i.bytes);
  f.q = q.data; f.k = k.data; f.v = v.data; f.o = o.data; f.lengths = lengths.data; f.key_mask = mask.data;
  return Work{[f, be = &a.backend()] { run<TK_OP_attention_decode>(*be, f); }, nullptr};
}

}  // namespace

void init_attention(Napi::Env env, Napi::Object exports) {
  define(env, exports, "attentionForward", parse_forward);
  define(env, exports, "attentionBackward", parse_backward);
  define(env, exports, "attentionDecode", parse_decode);
}

}  // namespace binding
}  // namespace tk
