// PLACEHOLDER: registers nothing yet.
#include "common.h"
namespace tk { namespace binding {
void init_lora(Napi::Env, Napi::Object) {}
}}
