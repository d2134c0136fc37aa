// Optimizer ops:
//   adamw({ n, param, grad, m, v, lr, step, beta1?, beta2?, eps?, weightDecay?, gradScale? })
//   adamwMulti({ params, grads, ms, vs, lrs, weightDecays, step, beta1?, beta2?, eps?, gradScale? })
//   sumSquares({ n, x }) -> number
//   gradNorm({ tensors }) -> number (global L2 norm)
// The multi-tensor forms make one native call per optimizer step: the tensors are laid end to end and
// the threads split that concatenation evenly, so a model of many small tensors still uses every core.
#include <algorithm>
#include <cmath>
#include <memory>

#include "../cpu/threadpool.h"
#include <sstream>

#include "common.h"

namespace tk {
namespace binding {
namespace {

constexpr int64_t kMax = int64_t(1) << 40;
constexpr int64_t kThreadMin = int64_t(1) << 15;  // total elements below which one thread does it all
constexpr int64_t kNormChunk = int64_t(1) << 16;  // the chunk of cpu/adamw.cc's sum_squares: same partials

// A number as a person writes it (1, 0.999, 1e-08), for error messages.
std::string num(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

// Element ranges of tensors laid end to end; visit(b, e, f) calls f(t, lo, hi) for the part
// [lo, hi) of tensor t that falls in [b, e) of the concatenation.
struct Concat {
  std::vector<int64_t> start{0};
  void add(int64_t n) { start.push_back(start.back() + n); }
  int64_t total() const { return start.back(); }
  int64_t length(size_t t) const { return start[t + 1] - start[t]; }
  template <class F>
  void visit(int64_t b, int64_t e, F&& f) const {
    size_t t = std::upper_bound(start.begin(), start.end(), b) - start.begin() - 1;
    for (; b < e && t + 1 < start.size(); t++) {
      const int64_t end = std::min(e, start[t + 1]);
      if (end > b) f(t, b - start[t], end - start[t]);
      b = std::max(b, end);
    }
  }
};

// The hyper-parameters shared by both AdamW forms, validated.
AdamWArgs hyper(Args& a) {
  AdamWArgs h;
  h.beta1 = static_cast<float>(a.number("beta1", 0.9));
  h.beta2 = static_cast<float>(a.number("beta2", 0.999));
  h.eps = static_cast<float>(a.number("eps", 1e-8));
  h.grad_scale = static_cast<float>(a.number("gradScale", 1.0));
  h.step = a.integer("step", 1, int64_t(1) << 53);
  if (!(h.beta1 >= 0.f && h.beta1 < 1.f))
    a.fail("argument 'beta1' = " + num(h.beta1) + " is out of range, expected 0 <= beta1 < 1");
  if (!(h.beta2 >= 0.f && h.beta2 < 1.f))
    a.fail("argument 'beta2' = " + num(h.beta2) + " is out of range, expected 0 <= beta2 < 1");
  if (!(h.eps > 0.f && std::isfinite(h.eps)))
    a.fail("argument 'eps' = " + num(h.eps) + " is out of range, expected a finite eps > 0");
  if (!(h.grad_scale >= 0.f && std::isfinite(h.grad_scale)))
    a.fail("argument 'gradScale' = " + num(h.grad_scale) + " is out of range, expected a finite value >= 0");
  return h;
}

void check_lr_wd(Args& a, const std::string& lr_name, double lr, const std::string& wd_name, double wd) {
  if (!(lr >= 0 && std::isfinite(lr)))
    a.fail("argument '" + lr_name + "' = " + num(lr) + " is out of range, expected a finite lr >= 0");
  if (!(wd >= 0 && std::isfinite(wd)))
    a.fail("argument '" + wd_name + "' = " + num(wd) + " is out of range, expected a finite value >= 0");
}

Work parse_adamw(Args& a) {
  AdamWArgs h = hyper(a);
  h.n = a.integer("n", 0, kMax);
  const double lr = a.number("lr"), wd = a.number("weightDecay", 0.0);
  check_lr_wd(a, "lr", lr, "weightDecay", wd);
  h.lr = static_cast<float>(lr);
  h.weight_decay = static_cast<float>(wd);
  F32 p = a.f32("param", h.n), g = a.f32("grad", h.n), m = a.f32("m", h.n), v = a.f32("v", h.n);
  const int64_t bytes = h.n * 4;
  a.no_alias("param", p.data, bytes, "grad", g.data, bytes);
  a.no_alias("m", m.data, bytes, "grad", g.data, bytes);
  a.no_alias("v", v.data, bytes, "grad", g.data, bytes);
  a.no_alias("m", m.data, bytes, "param", p.data, bytes);
  a.no_alias("v", v.data, bytes, "param", p.data, bytes);
  a.no_alias("v", v.data, bytes, "m", m.data, bytes);
  h.param = p.data; h.grad = g.data; h.m = m.data; h.v = v.data;
  return Work{[h, be = &a.backend()] { run<TK_OP_adamw>(*be, h); }, nullptr};
}

// No output buffer may overlap any other buffer (outputs are params, ms, vs; grads are only read, so
// grads may share memory among themselves). One sweep over the buffers sorted by address.
struct Span {
  uintptr_t lo, hi;
  bool output;
  std::string name;
};
void check_disjoint(Args& a, std::vector<Span> spans) {
  spans.erase(std::remove_if(spans.begin(), spans.end(), [](const Span& s) { return s.hi <= s.lo; }), spans.end());
  std::sort(spans.begin(), spans.end(), [](const Span& x, const Span& y) { return x.lo < y.lo; });
  const Span* reach_any = nullptr;  // the span reaching furthest so far, and the output doing so
  const Span* reach_out = nullptr;
  for (const Span& s : spans) {
    const Span* other = s.output ? reach_any : reach_out;  // an output clashes with anything
    if (other && other->hi > s.lo) {
      const Span& out = s.output ? s : *other;
      const Span& in = s.output ? *other : s;
      a.fail("output '" + out.name + "' overlaps '" + in.name + "'; expected separate buffers");
    }
    if (!reach_any || s.hi > reach_any->hi) reach_any = &s;
    if (s.output && (!reach_out || s.hi > reach_out->hi)) reach_out = &s;
  }
}

struct MultiAdamW {
  std::vector<AdamWArgs> tensors;
  Concat concat;
};

Work parse_adamw_multi(Args& a) {
  AdamWArgs h = hyper(a);
  std::vector<F32> params = a.f32_list("params"), grads = a.f32_list("grads"), ms = a.f32_list("ms"),
                   vs = a.f32_list("vs");
  std::vector<double> lrs = a.number_list("lrs"), wds = a.number_list("weightDecays");
  const size_t k = params.size();
  auto same_count = [&](const char* name, size_t n) {
    if (n != k)
      a.fail(std::string("argument '") + name + "' has " + std::to_string(n) + " entries, expected " +
             std::to_string(k) + " (one per entry of 'params')");
  };
  same_count("grads", grads.size());
  same_count("ms", ms.size());
  same_count("vs", vs.size());
  same_count("lrs", lrs.size());
  same_count("weightDecays", wds.size());
  auto st = std::make_shared<MultiAdamW>();
  std::vector<Span> spans;
  for (size_t i = 0; i < k; i++) {
    const std::string idx = "[" + std::to_string(i) + "]";
    const int64_t n = params[i].length;
    auto same_len = [&](const char* name, const F32& t) {
      if (t.length != n)
        a.fail(std::string("argument '") + name + idx + "' has " + std::to_string(t.length) + " elements, expected " +
               std::to_string(n) + " (the length of 'params" + idx + "')");
    };
    same_len("grads", grads[i]);
    same_len("ms", ms[i]);
    same_len("vs", vs[i]);
    check_lr_wd(a, "lrs" + idx, lrs[i], "weightDecays" + idx, wds[i]);
    AdamWArgs t = h;
    t.n = n;
    t.lr = static_cast<float>(lrs[i]);
    t.weight_decay = static_cast<float>(wds[i]);
    t.param = params[i].data; t.grad = grads[i].data; t.m = ms[i].data; t.v = vs[i].data;
    st->tensors.push_back(t);
    st->concat.add(n);
    auto span = [&](const float* p, bool out, const char* name) {
      auto lo = reinterpret_cast<uintptr_t>(p);
      spans.push_back(Span{lo, lo + static_cast<uintptr_t>(n) * 4, out, std::string(name) + idx});
    };
    span(t.param, true, "params");
    span(t.grad, false, "grads");
    span(t.m, true, "ms");
    span(t.v, true, "vs");
  }
  check_disjoint(a, std::move(spans));
  if (!a.on_cpu())  // a device runs each tensor's step as one launch, in order
    return Work{[st, be = &a.backend()] {
                  for (AdamWArgs& t : st->tensors) run<TK_OP_adamw>(*be, t);
                },
                nullptr};
  return Work{[st] {
                const tk_backend& be = cpu_backend();
                const int64_t total = st->concat.total();
                parallel_for(total, [&](int64_t b, int64_t e) {
                  st->concat.visit(b, e, [&](size_t t, int64_t lo, int64_t hi) {
                    AdamWArgs part = st->tensors[t];
                    part.n = hi - lo;
                    part.param += lo; part.grad += lo; part.m += lo; part.v += lo;
                    run<TK_OP_adamw>(be, part);
                  });
                }, total < kThreadMin ? 1 : 0);
              },
              nullptr};
}

struct Norm {
  std::vector<const float*> tensors;
  Concat concat;
  std::vector<double> partial;
  double value = 0.0;
};

Work parse_sum_squares(Args& a) {
  auto st = std::make_shared<SumSquaresArgs>();
  st->n = a.integer("n", 0, kMax);
  st->x = a.f32("x", st->n).data;
  return Work{[st, be = &a.backend()] { run<TK_OP_sum_squares>(*be, *st); },
              [st](Napi::Env env) { return Napi::Number::New(env, st->result); }};
}

// sqrt of the sum of squares of every tensor: fixed chunks of the concatenation, partials summed in
// order, so the norm is the same whatever the thread count.
Work parse_grad_norm(Args& a) {
  auto st = std::make_shared<Norm>();
  for (const F32& t : a.f32_list("tensors")) {
    st->tensors.push_back(t.data);
    st->concat.add(t.length);
  }
  const int64_t total = st->concat.total();
  st->partial.resize((total + kNormChunk - 1) / kNormChunk);
  if (!a.on_cpu())  // a device sums each tensor (a deterministic kernel), in order
    return Work{[st, be = &a.backend()] {
                  double sum = 0.0;
                  for (size_t t = 0; t < st->tensors.size(); t++) {
                    SumSquaresArgs part;
                    part.n = st->concat.length(t);
                    part.x = st->tensors[t];
                    run<TK_OP_sum_squares>(*be, part);
                    sum += part.result;
                  }
                  st->value = std::sqrt(sum);
                },
                [st](Napi::Env env) { return Napi::Number::New(env, st->value); }};
  return Work{[st, total] {
                const tk_backend& be = cpu_backend();
                parallel_for(static_cast<int64_t>(st->partial.size()), [&](int64_t c0, int64_t c1) {
                  for (int64_t c = c0; c < c1; c++) {
                    double s = 0.0;
                    st->concat.visit(c * kNormChunk, std::min(total, (c + 1) * kNormChunk),
                                     [&](size_t t, int64_t lo, int64_t hi) {
                                       SumSquaresArgs part;
                                       part.n = hi - lo;
                                       part.x = st->tensors[t] + lo;
                                       run<TK_OP_sum_squares>(be, part);
                                       s += part.result;
                                     });
                    st->partial[c] = s;
                  }
                });
                double sum = 0.0;
                for (double s : st->partial) sum += s;
                st->value = std::sqrt(sum);
              },
              [st](Napi::Env env) { return Napi::Number::New(env, st->value); }};
}

}  // namespace

void init_optim(Napi::Env env, Napi::Object exports) {
  define(env, exports, "adamw", parse_adamw);
  define(env, exports, "adamwMulti", parse_adamw_multi);
  define(env, exports, "sumSquares", parse_sum_squares);
  define(env, exports, "gradNorm", parse_grad_norm);
}

}  // namespace binding
}  // namespace tk
