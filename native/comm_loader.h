// The communication backend as the addon sees it: libtunekit_<name>.so (tunekit/comm.h), opened with
// dlopen the first time a process group asks for it, never when the addon loads, so a single-process
// install needs no collective library at all.
#pragma once
#include <string>

#include "tunekit/comm.h"

namespace tk {

struct CommBackend {
  std::string name;     // "gloo"
  std::string library;  // the file that was loaded
  tk_comm_init_fn init = nullptr;
  tk_comm_allreduce_fn allreduce = nullptr;
  tk_comm_allreduce_start_fn allreduce_start = nullptr;
  tk_comm_wait_fn wait = nullptr;
  tk_comm_broadcast_fn broadcast = nullptr;
  tk_comm_allgatherv_fn allgatherv = nullptr;
  tk_comm_barrier_fn barrier = nullptr;
  tk_comm_stats_fn stats = nullptr;
  tk_comm_abort_fn abort = nullptr;
  tk_comm_destroy_fn destroy = nullptr;
};

// The backend `name` ("gloo"; "nccl" has no library yet), loaded on the first call and kept for the
// process. Null when unavailable, with *reason one line saying what was tried and what to do.
// Candidates, in order: <package>/build-comm/, the addon's own folder; $TUNEKIT_COMM_LIB instead of both when set.
const CommBackend* comm_backend(const std::string& name, std::string* reason);

}  // namespace tk
