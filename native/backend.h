// The addon's side of the backend interface (tunekit/backend.h): the CPU backend, and run_op, the one
// function every op binding calls. The binding will pick the backend that owns a call's buffers; today
// every binding passes cpu_backend().
#pragma once
#include <stdexcept>

#include "tunekit/backend.h"

namespace tk {

// The CPU kernels of the ISA in use (native/cpu/table.h), host memory.
const tk_backend& cpu_backend();

// Runs op on be. A failure (an empty slot: "op X is not supported on cuda", a kernel error) throws
// std::runtime_error with the backend's one-line message, which the binding turns into a TunekitError.
// No allocation: the message buffer is on the stack.
inline void run_op(const tk_backend& be, int op, void* args) {
  char err[512];
  if (be.run(op, args, err, sizeof err) != TK_OK) throw std::runtime_error(err);
}

// run_op with the args type checked against the op: run<TK_OP_gemm>(be, gemm_args).
template <int op>
inline void run(const tk_backend& be, typename OpArgs<op>::type& args) {
  // Ops listed with `const Args` never write through the pointer (their slot casts it back to const).
  run_op(be, op, const_cast<void*>(static_cast<const void*>(&args)));
}

}  // namespace tk
