// Node-API surface of the communication backend (tunekit/comm.h, loaded by comm_loader.cc): process
// groups by id, collectives on host typed arrays. Synchronous calls block the JS thread (the training
// step waits for them anyway); commAllReduceStart returns a ticket at once and the reduction runs on
// the library's thread while JS goes on with the backward, until commWait.
#include <map>
#include <memory>

#include "../comm_loader.h"
#include "common.h"

namespace tk {
namespace binding {
namespace {

struct Group {
  const CommBackend* be;
  tk_comm* comm;
  // Buffers of started all-reduces, kept alive and unfreeable until their wait.
  std::map<int64_t, std::pair<Napi::Reference<Napi::Value>, void*>> inflight;
};
// Never destroyed: a process may exit with a group alive (a failed job), and a Group's references must
// not be released after Node's environment is gone.
std::map<int, std::unique_ptr<Group>>& g_groups = *new std::map<int, std::unique_ptr<Group>>;
int g_next = 1;

Napi::Object arg_object(const Napi::CallbackInfo& info, const char* fn) {
  if (info.Length() < 1 || !info[0].IsObject()) throw_error(info.Env(), std::string(fn) + ": expected one object of named arguments");
  return info[0].As<Napi::Object>();
}

Group& group_of(Napi::Object o, const char* fn) {
  Napi::Value v = o.Get("group");
  const int id = v.IsNumber() ? v.As<Napi::Number>().Int32Value() : 0;
  auto it = g_groups.find(id);
  if (it == g_groups.end()) throw_error(o.Env(), std::string(fn) + ": the process group is not initialised, or was destroyed");
  return *it->second;
}

// A host typed array argument: its data, byte length, element size, and the allocation it lives in.
struct Bytes {
  void* data;
  int64_t bytes;
  size_t element;
  void* base;
  Napi::Value value;
};

Bytes bytes_of(Napi::Object o, const char* name, const char* fn) {
  Napi::Value v = o.Get(name);
  if (!v.IsTypedArray()) throw_error(o.Env(), std::string(fn) + ": argument '" + name + "' must be a typed array in host memory");
  Napi::TypedArray t = v.As<Napi::TypedArray>();
  Napi::ArrayBuffer ab = t.ArrayBuffer();
  return {static_cast<uint8_t*>(ab.Data()) + t.ByteOffset(), static_cast<int64_t>(t.ByteLength()), t.ElementSize(), ab.Data(), v};
}

int dtype_of(const Bytes& b, Napi::Object o, const char* fn) {
  const std::string tag = b.value.As<Napi::Object>().Get(Napi::Symbol::WellKnown(o.Env(), "toStringTag")).ToString();
  if (tag == "Float32Array") return TK_COMM_F32;
  if (tag == "Float64Array") return TK_COMM_F64;
  throw_error(o.Env(), std::string(fn) + ": argument 'x' must be a Float32Array or Float64Array, got " + tag);
}

void check(Napi::Env env, int rc, const char* err) {
  if (rc != TK_OK) throw_error(env, err);
}

Napi::Value CommInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "gloo";
  std::string reason;
  const CommBackend* be = comm_backend(name, &reason);
  Napi::Object o = Napi::Object::New(env);
  o.Set("available", Napi::Boolean::New(env, be != nullptr));
  o.Set("reason", Napi::String::New(env, reason));
  if (be) o.Set("library", Napi::String::New(env, be->library));
  return o;
}

// commInit({ backend, rank, worldSize, masterAddr, masterPort, timeoutMs, ifname }) → group id.
Napi::Value CommInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = arg_object(info, "commInit");
  const std::string name = o.Get("backend").IsString() ? o.Get("backend").As<Napi::String>().Utf8Value() : "gloo";
  std::string reason;
  const CommBackend* be = comm_backend(name, &reason);
  if (!be) throw_error(env, reason);
  auto num = [&](const char* k) {
    Napi::Value v = o.Get(k);
    if (!v.IsNumber()) throw_error(env, std::string("commInit: '") + k + "' must be a number");
    return v.As<Napi::Number>().Int64Value();
  };
  const std::string addr = o.Get("masterAddr").IsString() ? o.Get("masterAddr").As<Napi::String>().Utf8Value() : "127.0.0.1";
  const std::string ifname = o.Get("ifname").IsString() ? o.Get("ifname").As<Napi::String>().Utf8Value() : "";
  tk_comm_config c{static_cast<int>(num("rank")), static_cast<int>(num("worldSize")), addr.c_str(), static_cast<int>(num("masterPort")),
                   num("timeoutMs"), ifname.c_str()};
  char err[2048] = "";
  tk_comm* comm = nullptr;
  check(env, be->init(&c, &comm, err, sizeof err), err);
  const int id = g_next++;
  g_groups[id] = std::unique_ptr<Group>(new Group{be, comm, {}});
  return Napi::Number::New(env, id);
}

Napi::Value CommAllReduce(const Napi::CallbackInfo& info) {
  Napi::Object o = arg_object(info, "commAllReduce");
  Group& g = group_of(o, "commAllReduce");
  Bytes b = bytes_of(o, "x", "commAllReduce");
  const int dtype = dtype_of(b, o, "commAllReduce");
  char err[2048] = "";
  check(info.Env(), g.be->allreduce(g.comm, b.data, b.bytes / static_cast<int64_t>(b.element), dtype, err, sizeof err), err);
  return info.Env().Undefined();
}

Napi::Value CommAllReduceStart(const Napi::CallbackInfo& info) {
  Napi::Object o = arg_object(info, "commAllReduceStart");
  Group& g = group_of(o, "commAllReduceStart");
  Bytes b = bytes_of(o, "x", "commAllReduceStart");
  const int dtype = dtype_of(b, o, "commAllReduceStart");
  char err[2048] = "";
  int64_t ticket = 0;
  check(info.Env(), g.be->allreduce_start(g.comm, b.data, b.bytes / static_cast<int64_t>(b.element), dtype, &ticket, err, sizeof err), err);
  pin_allocations({b.base}, +1);
  g.inflight.emplace(ticket, std::make_pair(Napi::Persistent(b.value), b.base));
  return Napi::Number::New(info.Env(), static_cast<double>(ticket));
}

// commWait({ group, ticket }) → seconds this call waited.
Napi::Value CommWait(const Napi::CallbackInfo& info) {
  Napi::Object o = arg_object(info, "commWait");
  Group& g = group_of(o, "commWait");
  const int64_t ticket = o.Get("ticket").IsNumber() ? o.Get("ticket").As<Napi::Number>().Int64Value() : -1;
  char err[2048] = "";
  double waited = 0;
  const int rc = g.be->wait(g.comm, ticket, &waited, err, sizeof err);
  // Done (or failed, when nothing more will touch them): release every buffer up to this ticket.
  for (auto it = g.inflight.begin(); it != g.inflight.end() && it->first <= ticket;) {
    pin_allocations({it->second.second}, -1);
    it = g.inflight.erase(it);
  }
  check(info.Env(), rc, err);
  return Napi::Number::New(info.Env(), waited);
}

Napi::Value CommBroadcast(const Napi::CallbackInfo& info) {
  Napi::Object o = arg_object(info, "commBroadcast");
  Group& g = group_of(o, "commBroadcast");
  Bytes b = bytes_of(o, "x", "commBroadcast");
  const int root = o.Get("root").IsNumber() ? o.Get("root").As<Napi::Number>().Int32Value() : 0;
  char err[2048] = "";
  check(info.Env(), g.be->broadcast(g.comm, b.data, b.bytes, root, err, sizeof err), err);
  return info.Env().Undefined();
}

// commAllGather({ group, x: Uint8Array, counts: number[] }) → Uint8Array of every rank's bytes, in rank order.
Napi::Value CommAllGather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = arg_object(info, "commAllGather");
  Group& g = group_of(o, "commAllGather");
  Bytes b = bytes_of(o, "x", "commAllGather");
  Napi::Value cv = o.Get("counts");
  if (!cv.IsArray()) throw_error(env, "commAllGather: 'counts' must be an array of byte counts, one per rank");
  Napi::Array ca = cv.As<Napi::Array>();
  std::vector<int64_t> counts(ca.Length());
  int64_t total = 0;
  for (uint32_t i = 0; i < ca.Length(); i++) total += counts[i] = ca.Get(i).As<Napi::Number>().Int64Value();
  Napi::Uint8Array out = Napi::Uint8Array::New(env, static_cast<size_t>(total));
  char err[2048] = "";
  check(env, g.be->allgatherv(g.comm, b.data, out.Data(), counts.data(), err, sizeof err), err);
  return out;
}

Napi::Value CommBarrier(const Napi::CallbackInfo& info) {
  Napi::Object o = arg_object(info, "commBarrier");
  Group& g = group_of(o, "commBarrier");
  char err[2048] = "";
  check(info.Env(), g.be->barrier(g.comm, err, sizeof err), err);
  return info.Env().Undefined();
}

Napi::Value CommStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = arg_object(info, "commStats");
  Group& g = group_of(o, "commStats");
  double seconds = 0;
  int64_t count = 0;
  g.be->stats(g.comm, &seconds, &count);
  Napi::Object r = Napi::Object::New(env);
  r.Set("seconds", Napi::Number::New(env, seconds));
  r.Set("collectives", Napi::Number::New(env, static_cast<double>(count)));
  return r;
}

Napi::Value CommAbort(const Napi::CallbackInfo& info) {
  Napi::Object o = arg_object(info, "commAbort");
  Group& g = group_of(o, "commAbort");
  const std::string reason = o.Get("reason").IsString() ? o.Get("reason").As<Napi::String>().Utf8Value() : "aborted";
  char err[2048] = "";
  check(info.Env(), g.be->abort(g.comm, reason.c_str(), err, sizeof err), err);
  return info.Env().Undefined();
}

Napi::Value CommDestroy(const Napi::CallbackInfo& info) {
  Napi::Object o = arg_object(info, "commDestroy");
  Group& g = group_of(o, "commDestroy");
  const int id = o.Get("group").As<Napi::Number>().Int32Value();
  char err[2048] = "";
  const int rc = g.be->destroy(g.comm, err, sizeof err);
  for (auto& f : g.inflight) pin_allocations({f.second.second}, -1);
  g_groups.erase(id);
  check(info.Env(), rc, err);
  return info.Env().Undefined();
}

}  // namespace

void init_comm(Napi::Env env, Napi::Object exports) {
  exports.Set("commInfo", Napi::Function::New(env, CommInfo, "commInfo"));
  exports.Set("commInit", Napi::Function::New(env, CommInit, "commInit"));
  exports.Set("commAllReduce", Napi::Function::New(env, CommAllReduce, "commAllReduce"));
  exports.Set("commAllReduceStart", Napi::Function::New(env, CommAllReduceStart, "commAllReduceStart"));
  exports.Set("commWait", Napi::Function::New(env, CommWait, "commWait"));
  exports.Set("commBroadcast", Napi::Function::New(env, CommBroadcast, "commBroadcast"));
  exports.Set("commAllGather", Napi::Function::New(env, CommAllGather, "commAllGather"));
  exports.Set("commBarrier", Napi::Function::New(env, CommBarrier, "commBarrier"));
  exports.Set("commStats", Napi::Function::New(env, CommStats, "commStats"));
  exports.Set("commAbort", Napi::Function::New(env, CommAbort, "commAbort"));
  exports.Set("commDestroy", Napi::Function::New(env, CommDestroy, "commDestroy"));
}

}  // namespace binding
}  // namespace tk
