// Picks the kernel table for the best ISA this CPU runs (AVX-512 → AVX2 → scalar).
// TUNEKIT_ISA=scalar|avx2|avx512 forces one at start-up; set_isa() switches later (the tests run
// every path the machine has).
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "table.h"

namespace tk {
const CpuTable* cpu_table_scalar();
const CpuTable* cpu_table_avx2();
const CpuTable* cpu_table_avx512();

namespace {

bool has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
bool has_avx512() {
  __builtin_cpu_init();
  return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
}

struct Isa { const char* name; const CpuTable* (*table)(); bool (*supported)(); };
bool always() { return true; }
const Isa kIsas[] = {{"avx512", cpu_table_avx512, has_avx512}, {"avx2", cpu_table_avx2, has_avx2}, {"scalar", cpu_table_scalar, always}};

const CpuTable* pick_default() {
  if (const char* want = std::getenv("TUNEKIT_ISA")) {
    for (const Isa& isa : kIsas)
      if (std::strcmp(isa.name, want) == 0 && isa.supported()) return isa.table();
    std::fprintf(stderr, "tunekit: TUNEKIT_ISA=%s is not one this CPU supports (avx512, avx2, scalar); using the best available\n", want);
  }
  for (const Isa& isa : kIsas)
    if (isa.supported()) return isa.table();
  return cpu_table_scalar();
}

const CpuTable* g_current = nullptr;
const CpuTable* g_isa_table = nullptr;  // the ISA's own table while cpu_hide_op has swapped in a copy
CpuTable g_masked;

}  // namespace

const CpuTable& cpu_table() {
  if (!g_current) g_current = pick_default();
  return *g_current;
}

void cpu_hide_op(int op) {
  if (g_isa_table) g_current = g_isa_table;
  g_isa_table = nullptr;
  if (op < 0 || op >= TK_OP_COUNT) return;
  g_isa_table = &cpu_table();
  g_masked = *g_isa_table;
  g_masked.ops[op] = nullptr;
  g_current = &g_masked;
}

bool set_isa(const char* name) {
  for (const Isa& isa : kIsas)
    if (std::strcmp(isa.name, name) == 0) {
      if (!isa.supported()) return false;
      g_isa_table = nullptr;
      g_current = isa.table();
      return true;
    }
  return false;
}

bool bf16_supported() {
  __builtin_cpu_init();
  static const bool has = has_avx512() && __builtin_cpu_supports("avx512bf16");
  return has && std::strcmp(cpu_table().isa, "avx512") == 0;
}

const char* const* available_isas(int* count) {
  static const char* names[3];
  static int n = -1;
  if (n < 0) {
    n = 0;
    for (const Isa& isa : kIsas)
      if (isa.supported()) names[n++] = isa.name;
  }
  *count = n;
  return names;
}

}  // namespace tk
