// The rendezvous store: server (rank 0) and client (every rank). Messages are length-prefixed: a u32
// byte count, then a command byte and its fields (integers in host order, strings as u32 length +
// bytes). Requests that need an answer (HELLO, SET, GET, STATUS) get one; notes (SEQ, HB, FAIL, BYE)
// do not, so a rank never waits on the store inside a collective.
#include "store.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace tk {
namespace comm {
namespace {

enum Cmd : uint8_t { HELLO = 1, SET = 2, GET = 3, SEQ = 4, HB = 5, FAIL = 6, BYE = 7, STATUS = 8 };
const char kMagic[] = "tunekit-store-1";
const uint32_t kMaxMessage = 64u << 20;
using Clock = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;

std::runtime_error fail(const std::string& s) { return std::runtime_error(s); }

// ---- encoding ----
struct Writer {
  std::string s;
  Writer& u8(uint8_t v) { s.push_back(static_cast<char>(v)); return *this; }
  template <class T> Writer& raw(T v) { s.append(reinterpret_cast<const char*>(&v), sizeof v); return *this; }
  Writer& str(const std::string& v) { raw<uint32_t>(static_cast<uint32_t>(v.size())); s += v; return *this; }
};

struct Reader {
  const std::string& s;
  size_t at = 0;
  bool ok = true;
  explicit Reader(const std::string& b) : s(b) {}
  template <class T> T raw() {
    T v{};
    if (at + sizeof v > s.size()) { ok = false; return v; }
    std::memcpy(&v, s.data() + at, sizeof v);
    at += sizeof v;
    return v;
  }
  uint8_t u8() { return raw<uint8_t>(); }
  std::string str() {
    const uint32_t n = raw<uint32_t>();
    if (!ok || at + n > s.size()) { ok = false; return ""; }
    std::string v = s.substr(at, n);
    at += n;
    return v;
  }
};

bool send_all(int fd, const char* p, size_t n) {
  while (n) {
    const ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k, n -= static_cast<size_t>(k);
  }
  return true;
}

bool send_frame(int fd, const std::string& body) {
  const uint32_t n = static_cast<uint32_t>(body.size());
  std::string frame(reinterpret_cast<const char*>(&n), sizeof n);
  frame += body;
  return send_all(fd, frame.data(), frame.size());
}

// Reads exactly n bytes before the deadline; false on timeout, EOF or error.
bool recv_exact(int fd, char* p, size_t n, Clock::time_point deadline) {
  while (n) {
    const auto left = std::chrono::duration_cast<ms>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd pfd{fd, POLLIN, 0};
    const int r = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return false;
    if (r == 0) continue;
    const ssize_t k = ::recv(fd, p, n, 0);
    if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (k <= 0) return false;
    p += k, n -= static_cast<size_t>(k);
  }
  return true;
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

// ---- server ----------------------------------------------------------------------------------------

struct StoreServer::Client {
  int fd;
  int rank = -1;
  std::string buf;
};

StoreServer::StoreServer(int port, int world_size) : world_(world_size) {
  ranks_.resize(world_size);
  seen_.resize(world_size, Clock::now());
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw fail(std::string("socket: ") + std::strerror(errno));
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // a previous job's TIME_WAIT, not a live listener
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 1024) != 0) {
    const int e = errno;
    close_fd(listen_fd_);
    if (e == EADDRINUSE)
      throw fail("cannot serve the rendezvous store on MASTER_PORT " + std::to_string(port) +
                 ": the port is in use (another job or program listens there); choose another --master-port / MASTER_PORT");
    throw fail("cannot serve the rendezvous store on MASTER_PORT " + std::to_string(port) + ": " + std::strerror(e));
  }
  if (::pipe2(wake_, O_CLOEXEC) != 0) {
    close_fd(listen_fd_);
    throw fail(std::string("pipe: ") + std::strerror(errno));
  }
  thread_ = std::thread([this] { loop(); });
}

StoreServer::~StoreServer() {
  if (wake_[1] >= 0) (void)!::write(wake_[1], "x", 1);
  if (thread_.joinable()) thread_.join();
  for (Client* c : clients_) {
    ::close(c->fd);
    delete c;
  }
  close_fd(listen_fd_);
  close_fd(wake_[0]);
  close_fd(wake_[1]);
}

void StoreServer::mark_closed(Client& c) {
  if (c.rank >= 0 && ranks_[c.rank].state == RankStatus::ALIVE) ranks_[c.rank].state = RankStatus::GONE;
}

void StoreServer::loop() {
  for (;;) {
    std::vector<pollfd> fds{{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    for (Client* c : clients_) fds.push_back({c->fd, POLLIN, 0});
    const size_t polled = clients_.size();
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents) return;
    if (fds[1].revents & POLLIN) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        clients_.push_back(new Client{fd, -1, {}});
      }
    }
    std::vector<Client*> keep;
    for (size_t i = 0; i < polled; i++) {
      Client* c = clients_[i];
      bool alive = true;
      if (fds[i + 2].revents) {
        char tmp[65536];
        const ssize_t k = ::recv(c->fd, tmp, sizeof tmp, 0);
        if (k > 0) {
          c->buf.append(tmp, static_cast<size_t>(k));
          while (alive && c->buf.size() >= 4) {
            uint32_t n;
            std::memcpy(&n, c->buf.data(), 4);
            if (n > kMaxMessage) { alive = false; break; }
            if (c->buf.size() < 4 + n) break;
            const std::string msg = c->buf.substr(4, n);
            c->buf.erase(0, 4 + n);
            alive = handle(*c, msg);
          }
        } else if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
          alive = false;
        }
      }
      if (alive) keep.push_back(c);
      else {
        mark_closed(*c);
        ::close(c->fd);
        delete c;
      }
    }
    // A client accepted in this round was not polled yet: kept for the next.
    for (size_t i = polled; i < clients_.size(); i++) keep.push_back(clients_[i]);
    clients_ = keep;
  }
}

bool StoreServer::handle(Client& c, const std::string& msg) {
  Reader r(msg);
  const uint8_t cmd = r.u8();
  if (c.rank >= 0) seen_[c.rank] = Clock::now();
  Writer w;
  switch (cmd) {
    case HELLO: {
      const std::string magic = r.str();
      const int rank = r.raw<int32_t>(), world = r.raw<int32_t>();
      if (!r.ok || magic != kMagic) return false;
      std::string error;
      if (world != world_)
        error = "WORLD_SIZE mismatch: rank " + std::to_string(rank) + " has WORLD_SIZE=" + std::to_string(world) + ", rank 0 has " +
                std::to_string(world_) + " (every rank must be started with the same world size)";
      else if (rank < 0 || rank >= world_)
        error = "RANK " + std::to_string(rank) + " is not in 0.." + std::to_string(world_ - 1) + " (WORLD_SIZE " + std::to_string(world_) + ")";
      else if (ranks_[rank].state != RankStatus::ABSENT)
        error = "rank " + std::to_string(rank) + " joined twice: two processes were started with RANK=" + std::to_string(rank);
      if (!error.empty()) {
        if (poison_.empty()) poison_ = error;
        w.u8(0).str(error);
        send_frame(c.fd, w.s);
        return false;
      }
      c.rank = rank;
      ranks_[rank].state = RankStatus::ALIVE;
      seen_[rank] = Clock::now();
      w.u8(1).str("");
      return send_frame(c.fd, w.s);
    }
    case SET: {
      const std::string key = r.str(), value = r.str();
      if (!r.ok) return false;
      auto it = std::find_if(kv_.begin(), kv_.end(), [&](const auto& p) { return p.first == key; });
      if (it == kv_.end()) kv_.emplace_back(key, value);
      else it->second = value;
      return send_frame(c.fd, w.u8(1).s);
    }
    case GET: {
      const std::string key = r.str();
      if (!r.ok) return false;
      if (!poison_.empty()) return send_frame(c.fd, w.u8(2).str(poison_).s);
      // A rank that failed or left while the others wait for it: they stop now, not at their timeout.
      for (int i = 0; i < world_; i++) {
        const RankStatus& s = ranks_[i];
        if (s.state == RankStatus::FAILED && s.root_cause) return send_frame(c.fd, w.u8(2).str("rank " + std::to_string(i) + " failed: " + s.message).s);
        if (s.state == RankStatus::GONE) return send_frame(c.fd, w.u8(2).str("rank " + std::to_string(i) + " exited during the rendezvous").s);
      }
      auto it = std::find_if(kv_.begin(), kv_.end(), [&](const auto& p) { return p.first == key; });
      if (it == kv_.end()) return send_frame(c.fd, w.u8(0).s);
      return send_frame(c.fd, w.u8(1).str(it->second).s);
    }
    case SEQ: {
      const int64_t seq = r.raw<int64_t>();
      if (r.ok && c.rank >= 0) ranks_[c.rank].seq = seq;
      return true;
    }
    case HB:
      return true;
    case FAIL: {
      const bool root = r.u8() != 0;
      const std::string message = r.str();
      if (!r.ok || c.rank < 0) return true;
      RankStatus& s = ranks_[c.rank];
      if (s.state != RankStatus::FAILED) {
        s.state = RankStatus::FAILED;
        s.root_cause = root;
        s.message = message;
      }
      return true;
    }
    case BYE:
      if (c.rank >= 0 && ranks_[c.rank].state == RankStatus::ALIVE) ranks_[c.rank].state = RankStatus::DONE;
      return true;
    case STATUS: {
      const auto now = Clock::now();
      w.u8(1).raw<int32_t>(world_);
      for (int i = 0; i < world_; i++) {
        const RankStatus& s = ranks_[i];
        w.u8(s.state).raw<int64_t>(s.seq).raw<double>(std::chrono::duration<double>(now - seen_[i]).count()).u8(s.root_cause).str(s.message);
      }
      return send_frame(c.fd, w.s);
    }
    default:
      return false;
  }
}

// ---- client ----------------------------------------------------------------------------------------

StoreClient::StoreClient(const std::string& host, int port, int rank, int world_size, ms timeout) {
  where_ = host + ":" + std::to_string(port);
  const auto deadline = Clock::now() + timeout;
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  const int g = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (g != 0 || !res) throw fail("cannot resolve MASTER_ADDR '" + host + "': " + ::gai_strerror(g));
  sockaddr_in addr;
  std::memcpy(&addr, res->ai_addr, sizeof addr);
  ::freeaddrinfo(res);
  std::string last = "no attempt";
  const double secs = std::chrono::duration<double>(timeout).count();
  for (;;) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) throw fail(std::string("socket: ") + std::strerror(errno));
    int rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    int err = rc == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      const auto left = std::max<int64_t>(1, std::chrono::duration_cast<ms>(deadline - Clock::now()).count());
      pollfd pfd{fd_, POLLOUT, 0};
      if (::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left, 2000))) == 1) {
        socklen_t len = sizeof err;
        ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
      } else {
        err = ETIMEDOUT;
      }
    }
    if (err == 0) break;
    last = std::strerror(err);
    close_fd(fd_);
    if (Clock::now() >= deadline)
      throw fail("could not reach the rendezvous store at MASTER_ADDR:MASTER_PORT " + where_ + " within " +
                 std::to_string(static_cast<int>(secs)) + " s (last error: " + last +
                 "): is rank 0 running, and do MASTER_ADDR and MASTER_PORT name its host and port on every rank?");
    std::this_thread::sleep_for(ms(100));
  }
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  Writer w;
  w.u8(HELLO).str(kMagic).raw<int32_t>(rank).raw<int32_t>(world_size);
  std::string reply;
  const ms wait = std::max(ms(5000), std::chrono::duration_cast<ms>(deadline - Clock::now()));
  if (!send_frame(fd_, w.s) || !recv_msg(&reply, wait)) {
    close_fd(fd_);
    throw fail(where_ + " (MASTER_ADDR:MASTER_PORT) accepted a connection but did not answer as a tunekit rendezvous store: "
               "another program listens on that port; choose another --master-port / MASTER_PORT");
  }
  Reader r(reply);
  const uint8_t ok = r.u8();
  const std::string error = r.str();
  if (!r.ok || !ok) {
    close_fd(fd_);
    throw fail(r.ok ? error : "malformed answer from the rendezvous store at " + where_);
  }
  if (::pipe2(wake_, O_CLOEXEC) != 0) throw fail(std::string("pipe: ") + std::strerror(errno));
  heartbeat_ = std::thread([this] { heartbeat_loop(); });
}

StoreClient::~StoreClient() {
  if (wake_[1] >= 0) (void)!::write(wake_[1], "x", 1);
  if (heartbeat_.joinable()) heartbeat_.join();
  close_fd(fd_);
  close_fd(wake_[0]);
  close_fd(wake_[1]);
}

void StoreClient::heartbeat_loop() {
  for (;;) {
    pollfd pfd{wake_[0], POLLIN, 0};
    if (::poll(&pfd, 1, 1000) != 0) return;  // woken: shutting down
    std::lock_guard<std::mutex> lock(m_);
    if (!broken_ && !send_frame(fd_, Writer().u8(HB).s)) broken_ = true;
  }
}

void StoreClient::send_msg(const std::string& body) {
  if (broken_ || !send_frame(fd_, body)) {
    broken_ = true;
    throw fail("lost the connection to the rendezvous store at " + where_ + " (rank 0 exited or its host is unreachable)");
  }
}

bool StoreClient::recv_msg(std::string* body, ms timeout) {
  const auto deadline = Clock::now() + timeout;
  uint32_t n = 0;
  if (!recv_exact(fd_, reinterpret_cast<char*>(&n), sizeof n, deadline) || n > kMaxMessage) return false;
  body->assign(n, '\0');
  return recv_exact(fd_, &(*body)[0], n, deadline);
}

void StoreClient::set(const std::string& key, const std::vector<char>& value) {
  std::lock_guard<std::mutex> lock(m_);
  send_msg(Writer().u8(SET).str(key).str(std::string(value.begin(), value.end())).s);
  std::string reply;
  if (!recv_msg(&reply, ms(30000))) {
    broken_ = true;
    throw fail("the rendezvous store at " + where_ + " did not answer (rank 0 exited or stopped)");
  }
}

std::vector<char> StoreClient::get(const std::string& key, ms timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(m_);
      send_msg(Writer().u8(GET).str(key).s);
      std::string reply;
      if (!recv_msg(&reply, ms(30000))) {
        broken_ = true;
        throw fail("the rendezvous store at " + where_ + " did not answer (rank 0 exited or stopped)");
      }
      Reader r(reply);
      const uint8_t st = r.u8();
      if (st == 1) {
        const std::string v = r.str();
        return std::vector<char>(v.begin(), v.end());
      }
      if (st == 2) throw fail(r.str());
    }
    if (Clock::now() >= deadline) {
      // gloo's keys: "rank_<r>" (host name) and "<r>" (connection addresses), both published by rank r.
      std::string who = key.rfind("rank_", 0) == 0 ? key.substr(5) : key;
      const bool numeric = !who.empty() && std::all_of(who.begin(), who.end(), ::isdigit);
      const int secs = static_cast<int>(std::chrono::duration<double>(timeout).count());
      throw fail(numeric ? "rank " + who + " did not join the group within " + std::to_string(secs) +
                               " s: is it running, with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE?"
                         : "rendezvous key '" + key + "' did not appear within " + std::to_string(secs) + " s");
    }
    std::this_thread::sleep_for(ms(20));
  }
}

void StoreClient::entered(int64_t seq) {
  std::lock_guard<std::mutex> lock(m_);
  if (!broken_ && !send_frame(fd_, Writer().u8(SEQ).raw<int64_t>(seq).s)) broken_ = true;
}

void StoreClient::failed(const std::string& message, bool root_cause) {
  std::lock_guard<std::mutex> lock(m_);
  if (!broken_ && !send_frame(fd_, Writer().u8(FAIL).u8(root_cause).str(message).s)) broken_ = true;
}

void StoreClient::bye() {
  std::lock_guard<std::mutex> lock(m_);
  if (!broken_ && !send_frame(fd_, Writer().u8(BYE).s)) broken_ = true;
}

bool StoreClient::status(std::vector<RankStatus>* out, ms timeout) {
  std::lock_guard<std::mutex> lock(m_);
  if (broken_ || !send_frame(fd_, Writer().u8(STATUS).s)) return broken_ = true, false;
  std::string reply;
  if (!recv_msg(&reply, timeout)) return broken_ = true, false;
  Reader r(reply);
  if (r.u8() != 1) return false;
  const int world = r.raw<int32_t>();
  out->assign(std::max(0, world), RankStatus{});
  for (RankStatus& s : *out) {
    s.state = static_cast<RankStatus::State>(r.u8());
    s.seq = r.raw<int64_t>();
    s.silent_s = r.raw<double>();
    s.root_cause = r.u8() != 0;
    s.message = r.str();
  }
  return r.ok;
}

}  // namespace comm
}  // namespace tk
