// PLACEHOLDER: registers nothing yet.
#include "common.h"
namespace tk { namespace binding {
void init_layers(Napi::Env, Napi::Object) {}
}}
