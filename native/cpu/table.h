// The CPU kernel tables, one per ISA (scalar, AVX2, AVX-512), each an array indexed by op id that
// table.cc generates from TK_OPS; dispatch.cc picks one at run time.
#pragma once
#include "tunekit/ops.h"

namespace tk {

// An op slot: runs the op on a pointer to its args struct (OpArgs<op>::type).
using CpuOp = void (*)(void* args);

struct CpuTable {
  const char* isa;  // "avx512" | "avx2" | "scalar"
  CpuOp ops[TK_OP_COUNT];
  // Measured FMA rate of all threads for this ISA (the roofline the benchmarks compare against).
  double (*peak_gflops)(double seconds);
};

// dispatch.cc
const CpuTable& cpu_table();                    // the ISA in use
bool set_isa(const char* name);                 // "avx512" | "avx2" | "scalar"; false if unsupported here
const char* const* available_isas(int* count);  // best first
bool bf16_supported();                          // this CPU has AVX512-BF16 (vdpbf16ps) and AVX-512 is in use
// Test hook: the table in use with op's slot emptied (op < 0 restores the ISA's own table), so the
// unsupported-op path can be exercised without a backend that lacks a kernel.
void cpu_hide_op(int op);

}  // namespace tk
