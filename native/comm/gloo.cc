// libtunekit_gloo.so: the collectives of tunekit/comm.h over Gloo's TCP transport (what
// torch.distributed uses on CPUs). Rendezvous through the store of store.h (rank 0 serves it on
// MASTER_PORT); Gloo then connects every pair of ranks directly. Every collective runs on one worker
// thread, in submission order, with Gloo's end-to-end timeout; the JS thread only enqueues and waits,
// so gradient buckets are reduced while the backward goes on.
//
// When a collective fails (a peer's connection closed, or nothing came within the timeout) the rank
// asks the store what became of the others and reports the rank at fault: one that exited without
// leaving, one that stopped sending heartbeats, one that never entered the collective, or one that
// failed with an error of its own. Its own connections are then closed, so the failure reaches every
// rank at its next collective rather than after a timeout each.
#include <gloo/allgatherv.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <sstream>

#include "store.h"
#include "tunekit/backend.h"
#include "tunekit/comm.h"

using Clock = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;
using tk::comm::RankStatus;
using tk::comm::StoreClient;
using tk::comm::StoreServer;

namespace {

int set_error(char* err, size_t errlen, const std::string& msg) {
  if (err && errlen) {
    std::string one = msg;
    for (char& c : one)
      if (c == '\n' || c == '\r') c = ' ';
    std::snprintf(err, errlen, "%s", one.c_str());
  }
  return TK_ERROR;
}

// Gloo's Store interface over the rendezvous client.
class StoreAdapter : public gloo::rendezvous::Store {
 public:
  StoreAdapter(StoreClient& c, ms timeout) : c_(c), timeout_(timeout) {}
  void set(const std::string& key, const std::vector<char>& data) override { c_.set(key, data); }
  std::vector<char> get(const std::string& key) override { return c_.get(key, timeout_); }
  void wait(const std::vector<std::string>& keys) override { wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys, const ms& timeout) override {
    for (const auto& k : keys) c_.get(k, timeout);
  }

 private:
  StoreClient& c_;
  ms timeout_;
};

// The local IPv4 address the kernel would use to reach host: the interface Gloo's sockets bind to
// when no interface is named (loopback for a MASTER_ADDR on this host).
std::string address_towards(const std::string& host) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  if (::getaddrinfo(host.c_str(), "9", &hints, &res) != 0 || !res) throw std::runtime_error("cannot resolve MASTER_ADDR '" + host + "'");
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in self{};
  socklen_t len = sizeof self;
  const bool ok = fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) == 0 && ::getsockname(fd, reinterpret_cast<sockaddr*>(&self), &len) == 0;
  ::freeaddrinfo(res);
  if (fd >= 0) ::close(fd);
  if (!ok) throw std::runtime_error("no route from this host to MASTER_ADDR '" + host + "'");
  char buf[INET_ADDRSTRLEN] = "";
  ::inet_ntop(AF_INET, &self.sin_addr, buf, sizeof buf);
  return buf;
}

}  // namespace

struct tk_comm {
  int rank = 0, world = 1;
  ms timeout{300000};
  std::unique_ptr<StoreServer> server;  // rank 0 only
  std::unique_ptr<StoreClient> store;
  std::shared_ptr<gloo::rendezvous::Context> ctx;

  struct Job {
    int64_t ticket;
    const char* what;
    std::function<void(uint32_t tag)> run;
  };
  std::thread worker;
  std::mutex m;
  std::condition_variable cv;
  std::deque<Job> queue;
  int64_t submitted = 0, completed = 0;
  bool stopping = false, running = false;
  std::string error;       // the first failure; every later call reports it
  double busy_s = 0;       // inside collectives (worker thread)
  int64_t collectives = 0;

  void work();
  std::string diagnose(const char* what, int64_t seq, const std::string& cause);
  int64_t submit(const char* what, std::function<void(uint32_t)> run);
  int wait(int64_t ticket, double* waited, char* err, size_t errlen);
  int sync(const char* what, std::function<void(uint32_t)> run, char* err, size_t errlen) {
    return wait(submit(what, std::move(run)), nullptr, err, errlen);
  }
};

int64_t tk_comm::submit(const char* what, std::function<void(uint32_t)> run) {
  std::lock_guard<std::mutex> lock(m);
  queue.push_back({++submitted, what, std::move(run)});
  cv.notify_all();
  return submitted;
}

int tk_comm::wait(int64_t ticket, double* waited, char* err, size_t errlen) {
  const auto t0 = Clock::now();
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&] { return completed >= ticket || !error.empty(); });
  if (waited) *waited = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!error.empty()) return set_error(err, errlen, error);
  return TK_OK;
}

void tk_comm::work() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(m);
      cv.wait(lock, [&] { return stopping || !queue.empty(); });
      if (queue.empty()) return;
      job = std::move(queue.front());
      queue.pop_front();
      if (!error.empty()) {  // the group has failed: nothing more runs
        completed = job.ticket;
        cv.notify_all();
        continue;
      }
      running = true;
    }
    const int64_t seq = ++collectives;
    store->entered(seq);
    const auto t0 = Clock::now();
    std::string failure;
    try {
      job.run(static_cast<uint32_t>(seq & 0x3fffffff));
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (!failure.empty()) {
      ctx->closeConnections();  // so every other rank fails at once rather than at its own timeout
      failure = diagnose(job.what, seq, failure);
      store->failed(failure, false);
    }
    std::lock_guard<std::mutex> lock(m);
    busy_s += std::chrono::duration<double>(Clock::now() - t0).count();
    running = false;
    if (!failure.empty() && error.empty()) error = failure;
    completed = job.ticket;
    cv.notify_all();
  }
}

// What became of the other ranks, from the store: the first of (a rank that failed by an error of its
// own, a rank gone without leaving, a rank without heartbeats, a rank that never entered this
// collective), else Gloo's own message.
std::string tk_comm::diagnose(const char* what, int64_t seq, const std::string& cause) {
  std::string gloo = cause;
  if (gloo.rfind("[", 0) == 0 && gloo.find("] ") != std::string::npos) gloo = gloo.substr(gloo.find("] ") + 2);  // drop "[file:line] "
  const std::string here = "rank " + std::to_string(rank) + " stopped at " + what + " #" + std::to_string(seq) + " (gloo: " + gloo + ")";
  const double secs = std::chrono::duration<double>(timeout).count();
  std::vector<RankStatus> st;
  std::string verdict;
  // A peer that died closed its store connection as it closed ours: give the store a moment to see it.
  // After a timeout the waiting is over already.
  const auto deadline = Clock::now() + (gloo.find("Timed out") != std::string::npos ? ms(0) : ms(1500));
  for (;;) {
    if (!store->status(&st, ms(3000))) {
      verdict = rank == 0 ? "the rendezvous store stopped answering"
                          : "rank 0 exited, stopped, or became unreachable (the rendezvous store it serves does not answer)";
      break;
    }
    for (size_t r = 0; r < st.size() && verdict.empty(); r++)
      if (static_cast<int>(r) != rank && st[r].state == RankStatus::FAILED && st[r].root_cause) verdict = "rank " + std::to_string(r) + " failed: " + st[r].message;
    for (size_t r = 0; r < st.size() && verdict.empty(); r++)
      if (static_cast<int>(r) != rank && st[r].state == RankStatus::GONE) verdict = "rank " + std::to_string(r) + " exited without leaving the group (killed or crashed)";
    if (!verdict.empty() || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(ms(100));
  }
  for (size_t r = 0; r < st.size() && verdict.empty(); r++)
    if (static_cast<int>(r) != rank && st[r].state == RankStatus::ALIVE && st[r].silent_s > 3) {  // heartbeats come every second
      std::ostringstream s;
      s << "rank " << r << " stopped responding (no heartbeat for " << static_cast<int>(st[r].silent_s) << " s: the process is stopped or its host is down)";
      verdict = s.str();
    }
  for (size_t r = 0; r < st.size() && verdict.empty(); r++)
    if (static_cast<int>(r) != rank && st[r].state == RankStatus::ALIVE && st[r].seq < seq) {
      std::ostringstream s;
      s << "rank " << r << " did not reach " << what << " #" << seq << " within " << secs << " s (it is at #" << st[r].seq
        << "): it hangs, or is slower than the timeout (TUNEKIT_DIST_TIMEOUT)";
      verdict = s.str();
    }
  for (size_t r = 0; r < st.size() && verdict.empty(); r++)
    if (static_cast<int>(r) != rank && st[r].state == RankStatus::FAILED) verdict = "rank " + std::to_string(r) + ": " + st[r].message;
  return verdict.empty() ? here : verdict + "; " + here;
}

#define GUARD_BEGIN try {
#define GUARD_END                                                 \
  }                                                               \
  catch (const std::exception& e) { return set_error(err, errlen, e.what()); } \
  catch (...) { return set_error(err, errlen, "unknown error"); }

TK_COMM_API uint32_t tk_comm_abi(void) { return TK_COMM_ABI_VERSION; }

TK_COMM_API int tk_comm_init(const tk_comm_config* c, tk_comm** out, char* err, size_t errlen) {
  GUARD_BEGIN
  if (!c || !out) return set_error(err, errlen, "tk_comm_init: null argument");
  *out = nullptr;
  if (c->world_size < 1) return set_error(err, errlen, "WORLD_SIZE must be >= 1, got " + std::to_string(c->world_size));
  if (c->rank < 0 || c->rank >= c->world_size)
    return set_error(err, errlen, "RANK " + std::to_string(c->rank) + " is not in 0.." + std::to_string(c->world_size - 1) + " (WORLD_SIZE " + std::to_string(c->world_size) + ")");
  if (c->master_port < 1 || c->master_port > 65535) return set_error(err, errlen, "MASTER_PORT must be in 1..65535, got " + std::to_string(c->master_port));
  if (c->timeout_ms < 1) return set_error(err, errlen, "the timeout must be positive");
  auto comm = std::make_unique<tk_comm>();
  comm->rank = c->rank;
  comm->world = c->world_size;
  comm->timeout = ms(c->timeout_ms);
  const std::string master = c->master_addr && *c->master_addr ? c->master_addr : "127.0.0.1";
  try {
    if (c->rank == 0) comm->server = std::make_unique<StoreServer>(c->master_port, c->world_size);
    comm->store = std::make_unique<StoreClient>(c->rank == 0 ? "127.0.0.1" : master, c->master_port, c->rank, c->world_size, comm->timeout);
    gloo::transport::tcp::attr attr;
    if (c->ifname && *c->ifname) attr.iface = c->ifname;
    else attr.hostname = address_towards(master);
    auto dev = gloo::transport::tcp::CreateDevice(attr);
    comm->ctx = std::make_shared<gloo::rendezvous::Context>(c->rank, c->world_size);
    comm->ctx->setTimeout(comm->timeout);
    StoreAdapter adapter(*comm->store, comm->timeout);
    comm->ctx->connectFullMesh(adapter, dev);
  } catch (const std::exception& e) {
    std::string m = e.what();
    if (m.rfind("[", 0) == 0 && m.find("] ") != std::string::npos) m = m.substr(m.find("] ") + 2);
    if (comm->store) comm->store->failed(m, true);
    return set_error(err, errlen, "rank " + std::to_string(c->rank) + ": " + m);
  }
  tk_comm* raw = comm.get();
  comm->worker = std::thread([raw] { raw->work(); });
  auto ctx = comm->ctx;
  auto to = comm->timeout;
  if (comm->sync("barrier", [ctx, to](uint32_t tag) {
        gloo::BarrierOptions o(ctx);
        o.setTag(tag);
        o.setTimeout(to);
        gloo::barrier(o);
      }, err, errlen) != TK_OK) {
    comm.release();  // its worker may still hold it; the process is about to report and exit
    return TK_ERROR;
  }
  *out = comm.release();
  return TK_OK;
  GUARD_END
}

namespace {

gloo::AllreduceOptions::Func sum_of(int dtype) {
  if (dtype == TK_COMM_F64) return [](void* c, const void* a, const void* b, size_t n) { gloo::sum<double>(c, a, b, n); };
  return [](void* c, const void* a, const void* b, size_t n) { gloo::sum<float>(c, a, b, n); };
}

std::function<void(uint32_t)> allreduce_job(tk_comm* comm, void* data, int64_t count, int dtype) {
  auto ctx = comm->ctx;
  auto to = comm->timeout;
  return [ctx, to, data, count, dtype](uint32_t tag) {
    if (count == 0) return;
    gloo::AllreduceOptions o(ctx);
    if (dtype == TK_COMM_F64) o.setOutput(static_cast<double*>(data), static_cast<size_t>(count));
    else o.setOutput(static_cast<float*>(data), static_cast<size_t>(count));
    o.setReduceFunction(sum_of(dtype));
    o.setTag(tag);
    o.setTimeout(to);
    gloo::allreduce(o);
  };
}

int check(tk_comm* comm, const void* data, int64_t count, char* err, size_t errlen) {
  if (!comm) return set_error(err, errlen, "the process group is not initialised (or was destroyed)");
  if (count < 0 || (count > 0 && !data)) return set_error(err, errlen, "bad buffer");
  return TK_OK;
}

}  // namespace

TK_COMM_API int tk_comm_allreduce(tk_comm* comm, void* data, int64_t count, int dtype, char* err, size_t errlen) {
  GUARD_BEGIN
  if (check(comm, data, count, err, errlen) != TK_OK) return TK_ERROR;
  return comm->sync("all-reduce", allreduce_job(comm, data, count, dtype), err, errlen);
  GUARD_END
}

TK_COMM_API int tk_comm_allreduce_start(tk_comm* comm, void* data, int64_t count, int dtype, int64_t* ticket, char* err, size_t errlen) {
  GUARD_BEGIN
  if (check(comm, data, count, err, errlen) != TK_OK) return TK_ERROR;
  *ticket = comm->submit("all-reduce", allreduce_job(comm, data, count, dtype));
  return TK_OK;
  GUARD_END
}

TK_COMM_API int tk_comm_wait(tk_comm* comm, int64_t ticket, double* seconds, char* err, size_t errlen) {
  GUARD_BEGIN
  if (!comm) return set_error(err, errlen, "the process group is not initialised (or was destroyed)");
  return comm->wait(ticket, seconds, err, errlen);
  GUARD_END
}

TK_COMM_API int tk_comm_broadcast(tk_comm* comm, void* data, int64_t bytes, int root, char* err, size_t errlen) {
  GUARD_BEGIN
  if (check(comm, data, bytes, err, errlen) != TK_OK) return TK_ERROR;
  if (root < 0 || root >= comm->world) return set_error(err, errlen, "broadcast: root " + std::to_string(root) + " is not a rank");
  auto ctx = comm->ctx;
  auto to = comm->timeout;
  return comm->sync("broadcast", [ctx, to, data, bytes, root](uint32_t tag) {
    if (bytes == 0) return;
    gloo::BroadcastOptions o(ctx);
    o.setOutput(static_cast<uint8_t*>(data), static_cast<size_t>(bytes));
    o.setRoot(root);
    o.setTag(tag);
    o.setTimeout(to);
    gloo::broadcast(o);
  }, err, errlen);
  GUARD_END
}

TK_COMM_API int tk_comm_allgatherv(tk_comm* comm, const void* in, void* out, const int64_t* counts, char* err, size_t errlen) {
  GUARD_BEGIN
  if (!comm || !counts) return set_error(err, errlen, "the process group is not initialised (or was destroyed)");
  std::vector<size_t> elements(comm->world);
  size_t total = 0;
  for (int r = 0; r < comm->world; r++) {
    if (counts[r] < 1) return set_error(err, errlen, "all-gather: every rank must send at least one byte");
    total += elements[r] = static_cast<size_t>(counts[r]);
  }
  auto ctx = comm->ctx;
  auto to = comm->timeout;
  const size_t mine = elements[comm->rank];
  return comm->sync("all-gather", [ctx, to, in, out, elements, mine, total](uint32_t tag) {
    if (ctx->size == 1) {
      std::memcpy(out, in, mine);
      return;
    }
    gloo::AllgathervOptions o(ctx);
    o.setInput(const_cast<uint8_t*>(static_cast<const uint8_t*>(in)), mine);
    o.setOutput(static_cast<uint8_t*>(out), elements);
    o.setTag(tag);
    o.setTimeout(to);
    gloo::allgatherv(o);
    (void)total;
  }, err, errlen);
  GUARD_END
}

TK_COMM_API int tk_comm_barrier(tk_comm* comm, char* err, size_t errlen) {
  GUARD_BEGIN
  if (!comm) return set_error(err, errlen, "the process group is not initialised (or was destroyed)");
  auto ctx = comm->ctx;
  auto to = comm->timeout;
  return comm->sync("barrier", [ctx, to](uint32_t tag) {
    gloo::BarrierOptions o(ctx);
    o.setTag(tag);
    o.setTimeout(to);
    gloo::barrier(o);
  }, err, errlen);
  GUARD_END
}

TK_COMM_API int tk_comm_stats(tk_comm* comm, double* seconds, int64_t* count) {
  if (!comm) return TK_ERROR;
  std::lock_guard<std::mutex> lock(comm->m);
  *seconds = comm->busy_s;
  *count = comm->collectives;
  return TK_OK;
}

TK_COMM_API int tk_comm_abort(tk_comm* comm, const char* reason, char* err, size_t errlen) {
  GUARD_BEGIN
  if (!comm) return TK_OK;
  const std::string why = reason && *reason ? reason : "aborted";
  bool first;
  {
    std::lock_guard<std::mutex> lock(comm->m);
    first = comm->error.empty();
    if (first) comm->error = "rank " + std::to_string(comm->rank) + " aborted the group: " + why;
    comm->cv.notify_all();
  }
  if (first) comm->store->failed(why, true);  // a root cause; after a failed collective the store knows already
  comm->ctx->closeConnections();
  return TK_OK;
  GUARD_END
}

TK_COMM_API int tk_comm_destroy(tk_comm* comm, char* err, size_t errlen) {
  GUARD_BEGIN
  if (!comm) return TK_OK;
  bool failed;
  {
    std::lock_guard<std::mutex> lock(comm->m);
    failed = !comm->error.empty();
  }
  int rc = TK_OK;
  if (!failed) {
    auto ctx = comm->ctx;
    auto to = comm->timeout;
    rc = comm->sync("barrier", [ctx, to](uint32_t tag) {
      gloo::BarrierOptions o(ctx);
      o.setTag(tag);
      o.setTimeout(to);
      gloo::barrier(o);
    }, err, errlen);
  }
  bool busy;
  {
    std::lock_guard<std::mutex> lock(comm->m);
    busy = comm->running;
    comm->stopping = true;
    comm->cv.notify_all();
  }
  if (busy || rc != TK_OK || failed) {
    // A collective may still be blocked in Gloo (it ends at its timeout): leave the worker and the
    // connections to the process's exit rather than wait for it here.
    comm->ctx->closeConnections();
    comm->worker.detach();
    return rc;
  }
  comm->store->bye();
  comm->worker.join();
  delete comm;
  return TK_OK;
  GUARD_END
}
