// The CPU backend: the op table of the ISA in use (dispatch.cc) behind tk_backend, over host memory.
// A kernel's exception (a pool thread's, rethrown by parallel_run) becomes TK_ERROR and its message.
#include <cstdlib>
#include <cstring>
#include <exception>

#include "../backend.h"
#include "table.h"

namespace tk {
namespace {

int supports(int op) { return op >= 0 && op < TK_OP_COUNT && cpu_table().ops[op] != nullptr; }

int run(int op, void* args, char* err, size_t errlen) {
  const CpuTable& t = cpu_table();
  if (op < 0 || op >= TK_OP_COUNT || !t.ops[op]) return tk_unsupported(op, "cpu", err, errlen);
  try {
    t.ops[op](args);
    return TK_OK;
  } catch (const std::exception& e) {
    snprintf(err, errlen, "%s", e.what());
  } catch (...) {
    snprintf(err, errlen, "cpu %s: unknown error", tk_op_name(op));
  }
  return TK_ERROR;
}

int alloc(void** ptr, size_t bytes, char* err, size_t errlen) {
  *ptr = nullptr;
  if (posix_memalign(ptr, 64, bytes == 0 ? 64 : bytes) == 0) return TK_OK;
  snprintf(err, errlen, "cpu alloc: out of memory (%zu bytes)", bytes);
  return TK_ERROR;
}

int release(void* ptr, char*, size_t) {
  std::free(ptr);
  return TK_OK;
}

int copy(void* dst, const void* src, size_t bytes, int, char*, size_t) {
  if (bytes) std::memmove(dst, src, bytes);
  return TK_OK;
}

int synchronize(char*, size_t) { return TK_OK; }  // every CPU op has finished when run returns

const tk_backend kCpu = {"cpu", supports, run, alloc, release, copy, synchronize};

}  // namespace

const tk_backend& cpu_backend() { return kCpu; }

}  // namespace tk
