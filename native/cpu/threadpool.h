// A persistent pool of worker threads, sized to the cores this process may use (TUNEKIT_THREADS
// overrides). parallel_run splits [0, n) into one contiguous chunk per thread, statically, so the same
// call on the same machine always gives each thread the same work (deterministic reductions).
#pragma once
#include <cstdint>

namespace tk {

int num_threads();
void set_num_threads(int n);

// Calls fn(ctx, begin, end) on disjoint chunks covering [0, n), in parallel, and returns when all
// are done. At most `max_chunks` chunks (<= num_threads()). A call from inside a worker runs inline.
// An exception thrown by fn is rethrown here, after every chunk has finished.
void parallel_run(int64_t n, void (*fn)(void* ctx, int64_t begin, int64_t end), void* ctx,
                  int max_chunks = 0);

// Index of the calling pool thread (0 = the caller), for per-thread scratch and partial sums.
int thread_index();

// Lambda convenience. Each ISA's translation units get their own copy (F is local to them).
template <class F>
inline void parallel_for(int64_t n, F&& f, int max_chunks = 0) {
  if (n <= 0) return;
  auto tramp = [](void* c, int64_t b, int64_t e) { (*static_cast<F*>(c))(b, e); };
  parallel_run(n, tramp, static_cast<void*>(&f), max_chunks);
}

// Aligned scratch memory owned by the calling thread, grown on demand and kept (no allocation in
// the steady state). slot lets one kernel hold several buffers at once.
float* scratch(int slot, int64_t floats);

}  // namespace tk
