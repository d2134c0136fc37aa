// Timing harness for the attention kernels of one ISA, outside Node (not built by default):
//   g++ -O3 -std=c++17 -Iinclude -DTK_ISA=avx512 -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -fno-math-errno \
//       bench/attention_lab.cc native/cpu/attention.cc native/cpu/threadpool.cc -o /tmp/attention_lab -lpthread
//   TUNEKIT_THREADS=1 /tmp/attention_lab B H T D [causal] [dropout_p] [reps]
// Prints the best of several runs (thread CPU time with one thread, wall time otherwise) and GFLOP/s,
// counting 4·B·H·Tq·Tk·D flops for the forward and 2.5x that for the backward.
#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <vector>

#include "../native/cpu/threadpool.h"
#include "tunekit/ops.h"

#define STR2(x) #x
#define STR(x) STR2(x)
#define ISA_NAME STR(TK_ISA)

namespace tk {
namespace TK_ISA {
void attention_forward(const AttentionArgs&);
void attention_backward(const AttentionBackwardArgs&);
}  // namespace TK_ISA
}  // namespace tk

static double now(bool cpu) {
  if (cpu) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <class F>
static double best(F f, int reps, bool cpu) {
  f();
  double b = 1e30;
  for (int r = 0; r < reps; r++) {
    double t = now(cpu);
    f();
    b = std::min(b, now(cpu) - t);
  }
  return b;
}

int main(int argc, char** argv) {
  const int64_t B = argc > 1 ? atoll(argv[1]) : 16, H = argc > 2 ? atoll(argv[2]) : 12, T = argc > 3 ? atoll(argv[3]) : 128,
                D = argc > 4 ? atoll(argv[4]) : 64;
  const int causal = argc > 5 ? atoi(argv[5]) : 0;
  const float p = argc > 6 ? atof(argv[6]) : 0.f;
  const int64_t n = B * T * H * D;
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::vector<float> q(n), k(n), v(n), o(n), dout(n), dq(n), dk(n), dv(n), lse(B * H * T);
  for (auto* x : {&q, &k, &v, &dout})
    for (auto& e : *x) e = nd(rng);
  tk::AttentionArgs a;
  a.B = B; a.H = H; a.Tq = T; a.Tk = T; a.D = D;
  a.q = q.data(); a.k = k.data(); a.v = v.data(); a.o = o.data(); a.lse = lse.data();
  a.ldq = a.ldk = a.ldv = a.ldo = H * D;
  a.causal = causal; a.scale = 1.f / std::sqrt(float(D)); a.dropout_p = p; a.seed = 1;
  tk::AttentionBackwardArgs g;
  g.fwd = a; g.dout = dout.data(); g.dq = dq.data(); g.dk = dk.data(); g.dv = dv.data();
  g.lddo = g.lddq = g.lddk = g.lddv = H * D;
  const bool cpu = tk::num_threads() == 1;
  const int reps = argc > 7 ? atoi(argv[7]) : T <= 128 ? 20 : 5;
  const double tf = best([&] { tk::TK_ISA::attention_forward(a); }, reps, cpu);
  const double tb = best([&] { tk::TK_ISA::attention_backward(g); }, reps, cpu);
  const double ff = 4.0 * B * H * T * T * D;
  std::printf("%s threads=%d B=%lld H=%lld T=%lld D=%lld causal=%d p=%g: fwd %.2f ms %.0f GF/s | bwd %.2f ms %.0f GF/s | fwd+bwd %.2f ms %.0f GF/s\n",
              ISA_NAME, tk::num_threads(), (long long)B, (long long)H, (long long)T, (long long)D, causal, p, tf * 1e3,
              ff / tf / 1e9, tb * 1e3, 2.5 * ff / tb / 1e9, (tf + tb) * 1e3, 3.5 * ff / (tf + tb) / 1e9);
}
