// The rendezvous store of a process group (torch's TCPStore, reduced): a small key-value server that
// rank 0 runs on MASTER_PORT, and the client every rank keeps connected to it for the whole job. Gloo
// exchanges its connection addresses through it (gloo ships FileStore and RedisStore, neither fits
// torchrun's MASTER_ADDR/MASTER_PORT); it moves no training data, only addresses and bookkeeping.
//
// Beside keys it keeps what a failure report needs: every rank's state (alive, finished, failed with a
// message, or gone: its connection closed without a goodbye), the last collective each rank entered,
// and when each last sent a heartbeat. A rank whose collective fails asks for that (status()) to name
// the rank at fault. Plain blocking sockets and one poll() thread; IPv4.
#pragma once
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tk {
namespace comm {

// One rank's entry in a status() answer.
struct RankStatus {
  enum State : uint8_t { ABSENT = 0, ALIVE = 1, DONE = 2, GONE = 3, FAILED = 4 };
  State state = ABSENT;
  int64_t seq = -1;           // the last collective this rank entered (-1: none yet)
  double silent_s = 0;        // seconds since its last message or heartbeat
  bool root_cause = false;    // FAILED by an error of its own (not a relay of another rank's failure)
  std::string message;        // FAILED: why
};

class StoreServer {
 public:
  // Listens on 0.0.0.0:port for world_size ranks. Throws std::runtime_error with one line on failure
  // (port in use, ...).
  StoreServer(int port, int world_size);
  ~StoreServer();
  StoreServer(const StoreServer&) = delete;
  StoreServer& operator=(const StoreServer&) = delete;

 private:
  struct Client;
  void loop();
  bool handle(Client& c, const std::string& msg);  // false: drop the connection
  void mark_closed(Client& c);
  int listen_fd_ = -1, wake_[2] = {-1, -1};
  int world_;
  std::thread thread_;
  // Owned by the server thread only.
  std::vector<Client*> clients_;
  std::vector<std::pair<std::string, std::string>> kv_;
  std::vector<RankStatus> ranks_;
  std::vector<std::chrono::steady_clock::time_point> seen_;
  std::string poison_;  // a rendezvous error every later get() reports (world size mismatch, a rank twice)
};

class StoreClient {
 public:
  // Connects to host:port (retrying until timeout: rank 0 may start later) and registers rank/world.
  // Throws std::runtime_error with one line: unresolvable host, nothing listening within the timeout,
  // not a tunekit store, world size mismatch, rank taken.
  StoreClient(const std::string& host, int port, int rank, int world_size, std::chrono::milliseconds timeout);
  ~StoreClient();
  StoreClient(const StoreClient&) = delete;
  StoreClient& operator=(const StoreClient&) = delete;

  void set(const std::string& key, const std::vector<char>& value);
  // Waits for key until timeout; throws naming the key when it never appears.
  std::vector<char> get(const std::string& key, std::chrono::milliseconds timeout);
  // Fire-and-forget notes; a broken connection is ignored here (status() reports it).
  void entered(int64_t seq);
  void failed(const std::string& message, bool root_cause);
  void bye();
  // Every rank's state; false when the store does not answer within `timeout` (rank 0 gone or stopped).
  bool status(std::vector<RankStatus>* out, std::chrono::milliseconds timeout);

 private:
  void send_msg(const std::string& body);                              // throws on error
  bool recv_msg(std::string* body, std::chrono::milliseconds timeout);  // false on timeout / EOF
  void heartbeat_loop();
  std::string where_;
  int fd_ = -1, wake_[2] = {-1, -1};
  std::mutex m_;
  bool broken_ = false;
  std::thread heartbeat_;
};

}  // namespace comm
}  // namespace tk
