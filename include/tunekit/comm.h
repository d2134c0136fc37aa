// The communication backend of data-parallel training: the collectives a process group needs
// (init, all-reduce, broadcast, all-gather, barrier, destroy), behind plain C as the CUDA backend is
// (tunekit/backend.h). A backend is a shared library, libtunekit_<name>.so, that exports the
// functions below; the addon opens it with dlopen only when a process group is created
// (native/comm_loader.cc), so a single-process install needs none of it.
//
//   libtunekit_gloo.so  (native/comm/, `npm run build:comm`, needs libgloo-dev): host memory, TCP.
//   libtunekit_nccl.so  not written yet: the same exports over NCCL, with device pointers and the
//                       operations enqueued on a communication stream.
//
// Every function returns a tk_status (tunekit/backend.h) and, when it is not TK_OK, a one-line message
// in err (errlen bytes, always NUL-terminated). No C++ exception leaves any of them. Collectives run
// in the order they are submitted, the same order on every rank, on one thread of the library; a
// synchronous call waits for everything submitted before it.
#pragma once
#include <stddef.h>
#include <stdint.h>

#define TK_COMM_ABI_VERSION 1u
#define TK_COMM_API extern "C" __attribute__((visibility("default")))

enum tk_comm_dtype { TK_COMM_F32 = 0, TK_COMM_F64 = 1 };

struct tk_comm_config {
  int rank;                 // 0 .. world_size - 1
  int world_size;
  const char* master_addr;  // host of rank 0, which serves the rendezvous store
  int master_port;          // the store's TCP port
  int64_t timeout_ms;       // rendezvous, and each collective end to end
  const char* ifname;       // network interface for the collectives' sockets, or NULL / "": the one that routes to master_addr
};

typedef struct tk_comm tk_comm;

// TK_COMM_ABI_VERSION of the library; the loader compares it with its own.
TK_COMM_API uint32_t tk_comm_abi(void);
// Joins the group: rank 0 serves the store on master_port, every rank registers there (world sizes
// must agree), connects to every other rank, and waits for all of them (a barrier).
TK_COMM_API int tk_comm_init(const struct tk_comm_config* config, tk_comm** out, char* err, size_t errlen);
// data[0..count) = the elementwise sum over the ranks, in place; the same bits on every rank.
TK_COMM_API int tk_comm_allreduce(tk_comm* comm, void* data, int64_t count, int dtype, char* err, size_t errlen);
// The same, returned at once: *ticket identifies it for tk_comm_wait. data must stay valid and
// untouched until then.
TK_COMM_API int tk_comm_allreduce_start(tk_comm* comm, void* data, int64_t count, int dtype, int64_t* ticket, char* err, size_t errlen);
// Waits until the operation `ticket` (and everything submitted before it) is done; *seconds: how long
// this call waited.
TK_COMM_API int tk_comm_wait(tk_comm* comm, int64_t ticket, double* seconds, char* err, size_t errlen);
// data[0..bytes) of rank `root` copied to every rank.
TK_COMM_API int tk_comm_broadcast(tk_comm* comm, void* data, int64_t bytes, int root, char* err, size_t errlen);
// out = the concatenation of every rank's in[0..counts[rank]) bytes, in rank order (counts[] of every
// rank, known to all).
TK_COMM_API int tk_comm_allgatherv(tk_comm* comm, const void* in, void* out, const int64_t* counts, char* err, size_t errlen);
TK_COMM_API int tk_comm_barrier(tk_comm* comm, char* err, size_t errlen);
// Seconds the library's thread spent inside collectives, and how many it ran, since init.
TK_COMM_API int tk_comm_stats(tk_comm* comm, double* seconds, int64_t* count);
// This rank gives up (reason: why): the others are told through the store and its connections are
// closed, so they stop at their next collective instead of waiting for the timeout.
TK_COMM_API int tk_comm_abort(tk_comm* comm, const char* reason, char* err, size_t errlen);
// Leaves the group after a final barrier (skipped once the group has failed) and frees everything.
TK_COMM_API int tk_comm_destroy(tk_comm* comm, char* err, size_t errlen);

typedef uint32_t (*tk_comm_abi_fn)(void);
typedef int (*tk_comm_init_fn)(const struct tk_comm_config*, tk_comm**, char*, size_t);
typedef int (*tk_comm_allreduce_fn)(tk_comm*, void*, int64_t, int, char*, size_t);
typedef int (*tk_comm_allreduce_start_fn)(tk_comm*, void*, int64_t, int, int64_t*, char*, size_t);
typedef int (*tk_comm_wait_fn)(tk_comm*, int64_t, double*, char*, size_t);
typedef int (*tk_comm_broadcast_fn)(tk_comm*, void*, int64_t, int, char*, size_t);
typedef int (*tk_comm_allgatherv_fn)(tk_comm*, const void*, void*, const int64_t*, char*, size_t);
typedef int (*tk_comm_barrier_fn)(tk_comm*, char*, size_t);
typedef int (*tk_comm_stats_fn)(tk_comm*, double*, int64_t*);
typedef int (*tk_comm_abort_fn)(tk_comm*, const char*, char*, size_t);
typedef int (*tk_comm_destroy_fn)(tk_comm*, char*, size_t);
