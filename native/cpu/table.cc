// The kernel table of one ISA, generated from TK_OPS: every op's kernel is declared with the op list's
// signature (a missing or mis-typed kernel fails the link), wrapped in a slot taking void*, and put
// at its op id.
#include "table.h"

#define TK_CAT2(a, b) a##b
#define TK_CAT(a, b) TK_CAT2(a, b)
#define TK_STR2(x) #x
#define TK_STR(x) TK_STR2(x)

namespace tk {
namespace TK_ISA {

#define TK_DECLARE(name, Args) void name(Args&);
TK_OPS(TK_DECLARE)
#undef TK_DECLARE
double peak_gflops(double);

namespace {
#define TK_SLOT(name, Args) \
  void slot_##name(void* args) { name(*static_cast<Args*>(args)); }
TK_OPS(TK_SLOT)
#undef TK_SLOT
}  // namespace

}  // namespace TK_ISA

const CpuTable* TK_CAT(cpu_table_, TK_ISA)() {
#define TK_ENTRY(name, Args) TK_ISA::slot_##name,
  static const CpuTable t = {TK_STR(TK_ISA), {TK_OPS(TK_ENTRY)}, TK_ISA::peak_gflops};
#undef TK_ENTRY
  return &t;
}

}  // namespace tk
