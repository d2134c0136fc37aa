// PLACEHOLDER: registers nothing yet.
#include "common.h"
namespace tk { namespace binding {
void init_attention(Napi::Env, Napi::Object) {}
}}
