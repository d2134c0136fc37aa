#include "threadpool.h"

#include <sched.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

namespace tk {
namespace {

thread_local int t_index = 0;
thread_local bool t_in_pool_call = false;

int default_threads() {
  if (const char* env = std::getenv("TUNEKIT_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int>(n) : 1;
}

// One job at a time (callers serialise on job_mutex); workers wait on a generation counter,
// spinning briefly first because training issues many small calls back to back.
class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() { stop(); }

  int size() const { return n_threads_; }

  void resize(int n) {
    std::lock_guard<std::mutex> job(job_mutex_);
    stop();
    n_threads_ = n < 1 ? 1 : n;
    quit_ = false;
    const uint64_t g0 = generation_.load();  // read here: a worker may start after the first job
    for (int i = 1; i < n_threads_; i++) workers_.emplace_back([this, i, g0] { loop(i, g0); });
  }

  void run(int64_t n, void (*fn)(void*, int64_t, int64_t), void* ctx, int max_chunks) {
    int chunks = n_threads_;
    if (max_chunks > 0 && max_chunks < chunks) chunks = max_chunks;
    if (chunks > n) chunks = static_cast<int>(n);
    if (chunks <= 1 || t_in_pool_call) {
      fn(ctx, 0, n);
      return;
    }
    std::lock_guard<std::mutex> job(job_mutex_);
    fn_ = fn; ctx_ = ctx; n_ = n; chunks_ = chunks;
    error_ = nullptr;
    // Every worker acknowledges every job (even without a chunk), so none can lag into the next one.
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lk(m_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    t_in_pool_call = true;
    run_chunk(0);
    t_in_pool_call = false;
    // Wait for the others: spin, then yield.
    for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; spins++) {
      if (spins > 2000) std::this_thread::yield();
    }
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void run_chunk(int c) {
    if (c >= chunks_) return;
    int64_t b = n_ * c / chunks_, e = n_ * (c + 1) / chunks_;
    try {
      if (b < e) fn_(ctx_, b, e);
    } catch (...) {
      std::lock_guard<std::mutex> lk(err_m_);
      if (!error_) error_ = std::current_exception();
    }
  }

  void loop(int i, uint64_t seen) {
    t_index = i;
    t_in_pool_call = true;
    for (;;) {
      // Spin for a while (cheap wake-up for back-to-back calls), then sleep.
      uint64_t g;
      int spins = 0;
      while ((g = generation_.load(std::memory_order_acquire)) == seen && !quit_.load()) {
        if (++spins > 20000) {
          std::unique_lock<std::mutex> lk(m_);
          cv_.wait(lk, [&] { return generation_.load() != seen || quit_.load(); });
        }
      }
      if (quit_.load()) return;
      seen = g;
      run_chunk(i);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(m_);
      quit_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  int n_threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex job_mutex_, m_, err_m_;
  std::condition_variable cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> quit_{false};
  void (*fn_)(void*, int64_t, int64_t) = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
  int chunks_ = 0;
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool* p = new Pool(default_threads());  // never destroyed: workers may outlive statics
  return *p;
}

struct Scratch {
  float* ptr[8] = {};
  int64_t cap[8] = {};
  ~Scratch() {
    for (auto* p : ptr) ::operator delete[](p, std::align_val_t(64));
  }
};
thread_local Scratch t_scratch;

}  // namespace

int num_threads() { return pool().size(); }
void set_num_threads(int n) { pool().resize(n); }
int thread_index() { return t_index; }

void parallel_run(int64_t n, void (*fn)(void*, int64_t, int64_t), void* ctx, int max_chunks) {
  if (n <= 0) return;
  pool().run(n, fn, ctx, max_chunks);
}

float* scratch(int slot, int64_t floats) {
  Scratch& s = t_scratch;
  if (floats > s.cap[slot]) {
    ::operator delete[](s.ptr[slot], std::align_val_t(64));
    int64_t cap = floats + 1024;
    s.ptr[slot] = static_cast<float*>(::operator new[](cap * sizeof(float), std::align_val_t(64)));
    s.cap[slot] = cap;
  }
  return s.ptr[slot];
}

}  // namespace tk
