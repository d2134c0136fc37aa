// PLACEHOLDER: registers nothing yet.
#include "common.h"
namespace tk { namespace binding {
void init_optim(Napi::Env, Napi::Object) {}
}}
