// The TCP ring communicator: a control connection between every pair of ranks (watched
// for failures) and a data connection from each rank to its right neighbour, over which
// AllReduce runs as reduce-scatter then all-gather (2 (n-1)/n of the data per rank),
// each step's receive reduced as its bytes arrive while the send goes on; messages up to
// tcp_direct_max_bytes go whole around the ring instead (n - 1 steps, not 2 (n - 1); the
// latency of a small message is the steps') and each rank sums all copies in the ring's
// order. When every rank
// is on one host and can open the segment rank 0 offers at rendezvous, AllReduce (and
// so Barrier) goes through shared memory instead (shared_memory_group.h); the control
// connections still watch for failures.
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "mlscale/common/run_token.h"
#include "mlscale/worker/communicator.h"
#include "shared_memory_channel.h"
#include "shared_memory_group.h"
#include "socket.h"

namespace mlscale::worker {
namespace {

constexpr uint32_t kMagic = 0x4d4c5352;  // "MLSR"
constexpr uint32_t kVersion = 4;  // 2: the run token; 3: the shared-memory offer; 4: the single-copy round
enum Channel : uint32_t { kControl = 0, kData = 1 };
// Control messages: one type byte, a 4-byte length, text.
constexpr char kBye = 'B';      // clean exit: closing the connection next is not a failure
constexpr char kFailure = 'F';  // this rank is failing; the text says why
// A rank whose failure has been seen exits on its own within this time even when a
// collective outside our control (NCCL) does not return.
constexpr auto kFailureGrace = std::chrono::seconds(30);
constexpr size_t kSegmentBytes = 1 << 20;
// A rank waiting on a shared-memory channel naps this long at first, twice as long each
// time nothing came, up to kLongestNap.
constexpr std::chrono::microseconds kFirstNap{20}, kLongestNap{1000};

// The first bytes of every connection, followed by the run id and the run token.
struct Hello {
  uint32_t magic, version, world_size, rank, channel, run_id_length, token_length;
};
// The acceptor's one-byte answer to a hello.
constexpr char kAccepted = 'A';
constexpr char kTokenRefused = 'T';  // wrong or missing run token: retrying will not help

std::string RankName(int rank) { return "rank " + std::to_string(rank); }

std::string HostIdentity(const TcpRingOptions& options) {
  return options.host_identity.empty() ? SharedMemoryHostIdentity() : options.host_identity;
}

// options.single_copy_min_bytes, resolved: with 2 ranks single copy beats staging from
// 16 KiB, with 4 on 2 cores from 512 KiB (below, reduce-scatter + gather of staged copies
// wins: fewer system calls per byte).
size_t SingleCopyMinBytes(const TcpRingOptions& options) {
  return options.single_copy_min_bytes.value_or(options.world_size == 2 ? size_t(16) << 10 : size_t(512) << 10);
}

// options.spin_microseconds, with -1 resolved: 10 us when this process may run on a CPU
// for every rank, else 0.
int SpinMicroseconds(const TcpRingOptions& options) {
  if (options.spin_microseconds >= 0) return options.spin_microseconds;
  cpu_set_t cpus;
  const int available = ::sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) : 1;
  return options.world_size <= available ? 10 : 0;
}

class TcpRingCommunicator final : public Communicator {
 public:
  TcpRingCommunicator(const TcpRingOptions& options, std::vector<FileDescriptor> control,
                      FileDescriptor send_fd, FileDescriptor receive_fd,
                      std::unique_ptr<SharedMemoryGroup> shared_memory,
                      std::unique_ptr<SharedMemoryChannel> send_channel,
                      std::unique_ptr<SharedMemoryChannel> receive_channel)
      : options_(options), control_(std::move(control)), send_fd_(std::move(send_fd)),
        receive_fd_(std::move(receive_fd)), shared_memory_(std::move(shared_memory)),
        send_channel_(std::move(send_channel)), receive_channel_(std::move(receive_channel)),
        wakeup_(::eventfd(0, EFD_CLOEXEC)), spin_(SpinMicroseconds(options)),
        peer_done_(size_t(options.world_size), false) {
    watchdog_ = std::thread([this] { Watch(); });
  }

  ~TcpRingCommunicator() override {
    StopWatchdog();
  }

  int rank() const override { return options_.rank; }
  int size() const override { return options_.world_size; }
  std::string_view name() const override { return "tcp-ring"; }
  std::string_view transport() const override {
    if (shared_memory_) return "shared-memory";
    return send_channel_ || receive_channel_ ? "tcp+shared-memory" : "tcp";
  }

  Status AllReduceSum(void* data, size_t count, DataType type) override {
    const int n = size();
    if (n == 1 || count == 0) return Status::Ok();
    if (shared_memory_) return SharedMemoryResult(shared_memory_->AllReduceSum(data, count, type, failed_));
    const size_t element = DataTypeSize(type);
    auto chunk_begin = [&](int c) { return count * size_t(c) / size_t(n); };
    auto chunk_elements = [&](int c) { return chunk_begin(c + 1) - chunk_begin(c); };
    char* base = static_cast<char*>(data);
    if (count * element <= options_.tcp_direct_max_bytes) {
      // All-gather of the whole messages (copy k holds rank k's), then every rank sums
      // each chunk c as the ring would: rank c's values first, then c + 1, c + 2, ...
      // (the ring adds a received partial sum to its own values, b + a == a + b).
      const size_t bytes = count * element;
      scratch_.resize(size_t(n) * bytes);
      auto copy = [&](int k) { return scratch_.data() + size_t(k) * bytes; };
      std::memcpy(copy(rank()), base, bytes);
      for (int s = 0; s < n - 1; ++s) {
        const int send_copy = ((rank() - s) % n + n) % n, receive_copy = ((rank() - s - 1) % n + n) % n;
        MLSCALE_RETURN_IF_ERROR(Exchange(copy(send_copy), bytes, copy(receive_copy), bytes, [](size_t) {}));
      }
      for (int c = 0; c < n; ++c) {
        const size_t offset = chunk_begin(c) * element;
        std::memcpy(base + offset, copy(c) + offset, chunk_elements(c) * element);
        for (int k = 1; k < n; ++k) ReduceSum(base + offset, copy((c + k) % n) + offset, chunk_elements(c), type);
      }
      return Status::Ok();
    }
    scratch_.resize(chunk_elements(n - 1) * element + element);
    // Reduce-scatter: after step s, chunk (rank - s - 1) holds the sum of s + 2 ranks.
    for (int s = 0; s < n - 1; ++s) {
      int send_chunk = ((rank() - s) % n + n) % n;
      int receive_chunk = ((rank() - s - 1) % n + n) % n;
      char* target = base + chunk_begin(receive_chunk) * element;
      size_t reduced = 0;  // elements of the received chunk already added into target
      MLSCALE_RETURN_IF_ERROR(Exchange(
          base + chunk_begin(send_chunk) * element, chunk_elements(send_chunk) * element,
          scratch_.data(), chunk_elements(receive_chunk) * element, [&](size_t received_bytes) {
            size_t complete = received_bytes / element;
            ReduceSum(target + reduced * element, scratch_.data() + reduced * element, complete - reduced, type);
            reduced = complete;
          }));
    }
    // All-gather: pass the reduced chunks around the ring.
    for (int s = 0; s < n - 1; ++s) {
      int send_chunk = ((rank() + 1 - s) % n + n) % n;
      int receive_chunk = ((rank() - s) % n + n) % n;
      MLSCALE_RETURN_IF_ERROR(Exchange(base + chunk_begin(send_chunk) * element,
                                       chunk_elements(send_chunk) * element,
                                       base + chunk_begin(receive_chunk) * element,
                                       chunk_elements(receive_chunk) * element, [](size_t) {}));
    }
    return Status::Ok();
  }

  // Shared memory with single copy: each half of its AllReduce. Otherwise the defaults
  // (ShardsCheaply says false: the ring's own halves are not exposed).
  Status ReduceScatterSum(void* data, size_t count, DataType type) override {
    if (!ShardsCheaply(count, type)) return Communicator::ReduceScatterSum(data, count, type);
    return SharedMemoryResult(shared_memory_->ReduceScatterSum(data, count, type, failed_));
  }
  Status AllGather(void* data, size_t count, DataType type) override {
    if (!ShardsCheaply(count, type)) return Communicator::AllGather(data, count, type);
    return SharedMemoryResult(shared_memory_->AllGather(data, count, type, failed_));
  }
  bool ShardsCheaply(size_t count, DataType type) const override {
    return shared_memory_ && shared_memory_->ShardsCheaply(count * DataTypeSize(type));
  }

  Status Broadcast(void* data, size_t bytes, int root) override {
    const int n = size();
    if (n == 1 || bytes == 0) return Status::Ok();
    if (root < 0 || root >= n) return InvalidArgument("broadcast root " + std::to_string(root) + " out of range");
    char* p = static_cast<char*>(data);
    const bool forward = (rank() + 1) % n != root;
    // Segments travel root -> root+1 -> ... so the ranks forward them in a pipeline.
    for (size_t offset = 0; offset < bytes; offset += kSegmentBytes) {
      size_t length = std::min(kSegmentBytes, bytes - offset);
      if (rank() != root) MLSCALE_RETURN_IF_ERROR(Exchange(nullptr, 0, p + offset, length, [](size_t) {}));
      if (forward) MLSCALE_RETURN_IF_ERROR(Exchange(p + offset, length, nullptr, 0, [](size_t) {}));
    }
    return Status::Ok();
  }

  Status Barrier() override {
    int32_t token = 1;
    return AllReduceSum(&token, 1, DataType::kInt32);
  }

  Status Shutdown(const Status& failure) override {
    const bool failing = !failure.ok();
    // A peer's failure (Aborted) is passed on as it is: it already names the rank.
    std::string text = failure.message();
    if (failing && failure.code() != StatusCode::kAborted) text = RankName(rank()) + " failed: " + text;
    const auto deadline = Clock::now() + std::chrono::seconds(2);
    for (int peer = 0; peer < size(); ++peer) {
      if (peer == rank() || !control_[size_t(peer)].valid()) continue;
      std::string message(1, failing ? kFailure : kBye);
      uint32_t length = uint32_t(text.size());
      message.append(reinterpret_cast<const char*>(&length), 4);
      if (failing) message += text;
      (void)SendAll(control_[size_t(peer)].get(), message.data(), message.size(), deadline);
    }
    StopWatchdog();
    for (auto& fd : control_) fd.Reset();
    send_fd_.Reset();
    receive_fd_.Reset();
    return Status::Ok();
  }

 private:
  // Sends `send_bytes` to the right neighbour while receiving `receive_bytes` from the
  // left one; calls on_received(total) as bytes arrive. Fails with the watchdog's verdict
  // when a peer is lost.
  template <typename OnReceived>
  Status Exchange(const char* send, size_t send_bytes, char* receive, size_t receive_bytes,
                  OnReceived&& on_received) {
    size_t sent = 0, received = 0;
    // Nothing blocks: try both sides first, and sleep only once neither moved for spin_
    // (a wake-up from poll costs tens of microseconds on loopback).
    auto spin_until = Clock::now() + spin_;
    auto nap = kFirstNap;
    while (sent < send_bytes || received < receive_bytes) {
      if (failed_.load()) return Failure();
      bool moved = false;
      if (sent < send_bytes) {
        const size_t length = std::min(send_bytes - sent, kSegmentBytes);
        ssize_t k = send_channel_ ? ssize_t(send_channel_->Write(send + sent, length))
                                  : ::send(send_fd_.get(), send + sent, length, MSG_NOSIGNAL);
        if (k > 0) {
          sent += size_t(k);
          moved = true;
        }
        if (k < 0 && errno != EAGAIN && errno != EINTR) return LostNeighbour((rank() + 1) % size());
      }
      if (received < receive_bytes) {
        const size_t length = receive_bytes - received;
        if (receive_channel_) {
          const size_t k = receive_channel_->Read(receive + received, length);
          if (k > 0) {
            received += k;
            moved = true;
            on_received(received);
          }
        } else {
          ssize_t k = ::recv(receive_fd_.get(), receive + received, length, 0);
          if (k > 0) {
            received += size_t(k);
            moved = true;
            on_received(received);
          }
          if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
            return LostNeighbour((rank() + size() - 1) % size());
          }
        }
      }
      if (moved || (sent == send_bytes && received == receive_bytes)) {
        spin_until = Clock::now() + spin_;
        nap = kFirstNap;
        continue;
      }
      if (Clock::now() < spin_until) continue;
      // Sleep until a pending socket is ready; a pending channel has nothing to wait on,
      // so then the sleep is a nap that doubles up to kLongestNap (a peer's failure is
      // seen through failed_ within one).
      pollfd fds[2];
      nfds_t count = 0;
      if (sent < send_bytes && !send_channel_) fds[count++] = {send_fd_.get(), POLLOUT, 0};
      if (received < receive_bytes && !receive_channel_) fds[count++] = {receive_fd_.get(), POLLIN, 0};
      const bool channel_pending = (sent < send_bytes && send_channel_) || (received < receive_bytes && receive_channel_);
      const auto timeout = channel_pending ? nap : std::chrono::microseconds(500'000);
      const timespec wait{time_t(timeout.count() / 1'000'000), long(timeout.count() % 1'000'000) * 1000L};
      int rc = ::ppoll(fds, count, &wait, nullptr);
      if (rc < 0 && errno != EINTR) return Internal(std::string("ppoll: ") + std::strerror(errno));
      if (channel_pending) nap = std::min(nap * 2, kLongestNap);
    }
    return Status::Ok();
  }

  // Whether the watchdog has recorded a failure, waiting up to 2 s for its verdict: a
  // broken connection or an unreadable peer buffer is seen here before the control
  // connection of the rank that died reports it.
  bool AwaitVerdict() const {
    for (int i = 0; i < 40 && !failed_.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return failed_.load();
  }

  // A data connection broke: the watchdog normally knows which rank failed first; wait
  // for its verdict briefly, else blame the neighbour.
  Status LostNeighbour(int neighbour) {
    if (AwaitVerdict()) return Failure();
    RecordFailure(RankName(neighbour) + " (" + options_.peers[size_t(neighbour)] + ") lost its data connection");
    return Failure();
  }

  Status Failure() {
    std::lock_guard lock(mutex_);
    return Status(StatusCode::kAborted, failure_);
  }

  // A shared-memory collective's status, with the peer's failure (which names the rank)
  // in place of the bare abort or copy error once the watchdog records one: reading a
  // killed peer's buffer fails ("Bad address") before its control connection closes.
  Status SharedMemoryResult(Status status) {
    if (status.ok()) return status;
    return AwaitVerdict() ? Failure() : status;
  }

  void RecordFailure(const std::string& text) {
    {
      std::lock_guard lock(mutex_);
      if (failed_.load()) return;
      failure_ = text;
      failed_.store(true);
    }
    // Unblock any collective waiting on the data connections or in shared memory.
    if (send_fd_.valid()) ::shutdown(send_fd_.get(), SHUT_RDWR);
    if (receive_fd_.valid()) ::shutdown(receive_fd_.get(), SHUT_RDWR);
    if (shared_memory_) shared_memory_->WakeAll();
  }

  // Watches the control connections: a failure message or a connection closed without a
  // goodbye is a failed peer.
  void Watch() {
    std::vector<std::string> buffers(static_cast<size_t>(size()));
    std::optional<Clock::time_point> failed_at;
    while (true) {
      std::vector<pollfd> fds;
      std::vector<int> ranks;
      fds.push_back({wakeup_.get(), POLLIN, 0});
      ranks.push_back(-1);
      for (int peer = 0; peer < size(); ++peer) {
        if (peer == rank() || !control_[size_t(peer)].valid() || peer_closed_.contains(peer)) continue;
        fds.push_back({control_[size_t(peer)].get(), POLLIN, 0});
        ranks.push_back(peer);
      }
      int rc = ::poll(fds.data(), nfds_t(fds.size()), 500);
      if (failed_.load() && !failed_at) failed_at = Clock::now();
      if (failed_at && Clock::now() - *failed_at > kFailureGrace) {
        std::fprintf(stderr, "mlscale-train: %s; exiting (a collective did not return)\n", Failure().message().c_str());
        std::fflush(stderr);
        ::_exit(2);
      }
      if (rc <= 0) continue;
      if (fds[0].revents != 0) return;
      // Failure messages first: they name the rank that failed first.
      std::vector<int> closed;
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        int peer = ranks[i];
        char chunk[4096];
        ssize_t k = ::recv(fds[i].fd, chunk, sizeof(chunk), 0);
        if (k > 0) {
          buffers[size_t(peer)].append(chunk, size_t(k));
          ParseControl(peer, buffers[size_t(peer)]);
        } else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
          closed.push_back(peer);
        }
      }
      for (int peer : closed) {
        peer_closed_.insert(peer);
        if (!peer_done_[size_t(peer)]) {
          RecordFailure(RankName(peer) + " (" + options_.peers[size_t(peer)] + ") died: its connection closed");
        }
      }
    }
  }

  void ParseControl(int peer, std::string& buffer) {
    while (buffer.size() >= 5) {
      uint32_t length;
      std::memcpy(&length, buffer.data() + 1, 4);
      if (buffer.size() < 5 + size_t(length)) return;
      char type = buffer[0];
      std::string text = buffer.substr(5, length);
      buffer.erase(0, 5 + length);
      if (type == kBye) peer_done_[size_t(peer)] = true;
      if (type == kFailure) {
        peer_done_[size_t(peer)] = true;
        RecordFailure(text.empty() ? RankName(peer) + " failed" : text);
      }
    }
  }

  void StopWatchdog() {
    if (!watchdog_.joinable()) return;
    uint64_t one = 1;
    (void)!::write(wakeup_.get(), &one, sizeof(one));
    watchdog_.join();
  }

  TcpRingOptions options_;
  std::vector<FileDescriptor> control_;  // by rank; invalid for this rank
  FileDescriptor send_fd_, receive_fd_;
  std::unique_ptr<SharedMemoryGroup> shared_memory_;  // null: AllReduce over the ring
  // The ring's hops to the right and from the left when they go through shared memory.
  std::unique_ptr<SharedMemoryChannel> send_channel_, receive_channel_;
  FileDescriptor wakeup_;
  std::chrono::microseconds spin_;
  std::vector<char> scratch_;
  std::mutex mutex_;
  std::atomic<bool> failed_{false};
  std::string failure_;
  std::vector<bool> peer_done_;  // watchdog thread only
  std::set<int> peer_closed_;    // watchdog thread only
  std::thread watchdog_;
};

// Accepts the connections this rank expects (control from higher ranks, data from the
// left neighbour), turning away peers of other runs.
class Acceptor {
 public:
  Acceptor(const TcpRingOptions& options, int listen_fd, Clock::time_point deadline)
      : options_(options), listen_fd_(listen_fd), deadline_(deadline) {
    for (int peer = options.rank + 1; peer < options.world_size; ++peer) missing_control_.insert(peer);
    control_.resize(size_t(options.world_size));
    thread_ = std::thread([this] { status_ = Run(); });
  }
  ~Acceptor() {
    if (thread_.joinable()) thread_.join();
  }

  Status Finish() {
    thread_.join();
    return status_;
  }
  // Makes Run stop waiting within a fraction of a second (the connect already failed).
  void Cancel() { cancelled_.store(true); }
  std::vector<FileDescriptor>& control() { return control_; }
  FileDescriptor& data() { return data_; }
  std::set<int> missing() const {
    std::set<int> m = missing_control_;
    if (!data_.valid()) m.insert((options_.rank + options_.world_size - 1) % options_.world_size);
    return m;
  }

 private:
  Status Run() {
    while (!missing_control_.empty() || !data_.valid()) {
      auto connection = AcceptTcp(listen_fd_, std::min(deadline_, Clock::now() + std::chrono::milliseconds(200)));
      if (cancelled_.load()) return Status(StatusCode::kAborted, "stopped waiting for peers");
      if (!connection.ok() && connection.status().code() == StatusCode::kDeadlineExceeded && Clock::now() < deadline_) {
        continue;
      }
      if (!connection.ok()) return connection.status();
      Hello hello{};
      auto handshake_deadline = std::min(deadline_, Clock::now() + std::chrono::seconds(10));
      if (!ReceiveAll(connection->get(), &hello, sizeof(hello), handshake_deadline).ok()) continue;
      if (hello.magic != kMagic || hello.version != kVersion || hello.run_id_length > 4096 ||
          hello.token_length > kMaxRunTokenBytes) {
        std::fprintf(stderr, "mlscale-train: warning: turned away a connection from %s that is not an mlscale peer "
                     "of this version\n", Peer(connection->get()).c_str());
        continue;
      }
      std::string run_id(hello.run_id_length, '\0'), token(hello.token_length, '\0');
      if (!ReceiveAll(connection->get(), run_id.data(), run_id.size(), handshake_deadline).ok() ||
          !ReceiveAll(connection->get(), token.data(), token.size(), handshake_deadline).ok()) {
        continue;
      }
      const int peer = int(hello.rank);
      // The token first, and the log never shows it (nor what a stranger claims to be).
      if (!ConstantTimeEquals(token, options_.token)) {
        std::fprintf(stderr, "mlscale-train: warning: turned away a connection from %s: %s run token "
                     "(MLSCALE_RUN_TOKEN)\n", Peer(connection->get()).c_str(), token.empty() ? "no" : "wrong");
        (void)SendAll(connection->get(), &kTokenRefused, 1, handshake_deadline);
        continue;
      }
      if (run_id != options_.run_id || int(hello.world_size) != options_.world_size || peer < 0 ||
          peer >= options_.world_size) {
        std::fprintf(stderr,
                     "mlscale-train: warning: turned away rank %d of run '%s' (world size %u); this is run '%s' "
                     "(world size %d)\n",
                     peer, run_id.c_str(), hello.world_size, options_.run_id.c_str(), options_.world_size);
        continue;
      }
      const bool is_left = peer == (options_.rank + options_.world_size - 1) % options_.world_size;
      if (hello.channel == kControl && missing_control_.contains(peer)) {
        missing_control_.erase(peer);
        control_[size_t(peer)] = std::move(*connection);
        MLSCALE_RETURN_IF_ERROR(SendAll(control_[size_t(peer)].get(), &kAccepted, 1, handshake_deadline));
      } else if (hello.channel == kData && is_left && !data_.valid()) {
        data_ = std::move(*connection);
        MLSCALE_RETURN_IF_ERROR(SendAll(data_.get(), &kAccepted, 1, handshake_deadline));
      } else {
        std::fprintf(stderr, "mlscale-train: warning: turned away an unexpected connection from rank %d\n", peer);
      }
    }
    return Status::Ok();
  }

  // The numeric address of a connection's other end, for warnings.
  static std::string Peer(int fd) {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    char host[INET6_ADDRSTRLEN] = "unknown";
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      const void* raw = address.ss_family == AF_INET6
                            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&address)->sin6_addr)
                            : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&address)->sin_addr);
      ::inet_ntop(address.ss_family, raw, host, sizeof host);
    }
    return host;
  }

  const TcpRingOptions& options_;
  int listen_fd_;
  Clock::time_point deadline_;
  std::set<int> missing_control_;
  std::vector<FileDescriptor> control_;
  FileDescriptor data_;
  Status status_;
  std::atomic<bool> cancelled_{false};
  std::thread thread_;
};

// Connects to `peer` on `channel` and completes the handshake.
StatusOr<FileDescriptor> ConnectPeer(const TcpRingOptions& options, int peer, Channel channel,
                                     Clock::time_point deadline) {
  auto endpoint = ParseEndpoint(options.peers[size_t(peer)]);
  if (!endpoint.ok()) return endpoint.status();
  while (true) {
    auto fd = ConnectTcp(endpoint->first, endpoint->second, deadline);
    if (!fd.ok()) return fd.status();
    Hello hello{kMagic, kVersion, uint32_t(options.world_size), uint32_t(options.rank), channel,
                uint32_t(options.run_id.size()), uint32_t(options.token.size())};
    char answer = 0;
    if (SendAll(fd->get(), &hello, sizeof(hello), deadline).ok() &&
        SendAll(fd->get(), options.run_id.data(), options.run_id.size(), deadline).ok() &&
        SendAll(fd->get(), options.token.data(), options.token.size(), deadline).ok() &&
        ReceiveAll(fd->get(), &answer, 1, deadline).ok()) {
      if (answer == kAccepted) return fd;
      if (answer == kTokenRefused) {
        return Status(StatusCode::kUnauthenticated, "rank " + std::to_string(peer) + " at " + options.peers[size_t(peer)] +
                                " refused this rank's run token (MLSCALE_RUN_TOKEN differs)");
      }
    }
    if (Clock::now() >= deadline) {
      return DeadlineExceeded("rank " + std::to_string(peer) + " at " + options.peers[size_t(peer)] +
                              " did not accept this run ('" + options.run_id + "')");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// Rank 0's offer of a segment to each peer: whether there is one, its name, its nonce and
// the host identity of rank 0. Each peer answers whether it opened it; rank 0 then tells
// all whether every peer did (only then is it used: one collective, one transport).
// When it is used, a second round the same way decides the single-copy path: each rank
// says whether it reaches every other rank's memory (SharedMemoryGroup::CanReachPeers).
constexpr char kYes = 'Y', kNo = 'N';
constexpr uint32_t kMaxOfferText = 4096;

Status SendText(int fd, const std::string& text, Clock::time_point deadline) {
  uint32_t length = uint32_t(text.size());
  MLSCALE_RETURN_IF_ERROR(SendAll(fd, &length, 4, deadline));
  return SendAll(fd, text.data(), text.size(), deadline);
}

StatusOr<std::string> ReceiveText(int fd, Clock::time_point deadline) {
  uint32_t length = 0;
  MLSCALE_RETURN_IF_ERROR(ReceiveAll(fd, &length, 4, deadline));
  if (length > kMaxOfferText) return InvalidArgument("shared-memory offer longer than " + std::to_string(kMaxOfferText));
  std::string text(length, '\0');
  MLSCALE_RETURN_IF_ERROR(ReceiveAll(fd, text.data(), text.size(), deadline));
  return text;
}

// An offer of a segment (the group's or a channel's) as it travels: whether there is one,
// its name and nonce, and the host identity of the rank that offers it.
struct SegmentOffer {
  bool offered = false;
  std::string name;
  uint64_t nonce = 0;
  std::string identity;
};

Status SendOffer(int fd, const SegmentOffer& offer, Clock::time_point deadline) {
  const char offered = offer.offered ? kYes : kNo;
  MLSCALE_RETURN_IF_ERROR(SendAll(fd, &offered, 1, deadline));
  MLSCALE_RETURN_IF_ERROR(SendText(fd, offer.name, deadline));
  MLSCALE_RETURN_IF_ERROR(SendAll(fd, &offer.nonce, 8, deadline));
  return SendText(fd, offer.identity, deadline);
}

StatusOr<SegmentOffer> ReceiveOffer(int fd, Clock::time_point deadline) {
  SegmentOffer offer;
  char offered = kNo;
  MLSCALE_RETURN_IF_ERROR(ReceiveAll(fd, &offered, 1, deadline));
  offer.offered = offered == kYes;
  auto name = ReceiveText(fd, deadline);
  if (!name.ok()) return name.status();
  offer.name = std::move(*name);
  MLSCALE_RETURN_IF_ERROR(ReceiveAll(fd, &offer.nonce, 8, deadline));
  auto identity = ReceiveText(fd, deadline);
  if (!identity.ok()) return identity.status();
  offer.identity = std::move(*identity);
  return offer;
}

// Agrees with every peer over the control connections whether AllReduce goes through
// shared memory; null when it stays on TCP. Fails only when a control connection breaks
// or a peer sends a malformed offer.
StatusOr<std::unique_ptr<SharedMemoryGroup>> NegotiateSharedMemory(const TcpRingOptions& options,
                                                                   std::vector<FileDescriptor>& control,
                                                                   Clock::time_point deadline) {
  const int n = options.world_size;
  const SharedMemoryOptions shm_options{options.direct_max_bytes, SpinMicroseconds(options),
                                        options.yield_microseconds, SingleCopyMinBytes(options)};
  const std::string identity = HostIdentity(options);
  auto lost = [&](int peer, const Status& status) {
    return Status(StatusCode::kAborted, RankName(peer) + " (" + options.peers[size_t(peer)] +
                                            ") broke off the shared-memory negotiation: " + status.message());
  };
  // Rank 0 collects every peer's yes or no and tells every peer whether all said yes; a
  // peer sends its own and hears the verdict.
  auto agree = [&](bool mine) -> StatusOr<bool> {
    const char answer = mine ? kYes : kNo;
    char verdict = kNo;
    if (options.rank != 0) {
      if (Status sent = SendAll(control[0].get(), &answer, 1, deadline); !sent.ok()) return lost(0, sent);
      if (Status got = ReceiveAll(control[0].get(), &verdict, 1, deadline); !got.ok()) return lost(0, got);
      return verdict == kYes;
    }
    bool all = mine;
    for (int peer = 1; peer < n; ++peer) {
      char theirs = kNo;
      if (Status got = ReceiveAll(control[size_t(peer)].get(), &theirs, 1, deadline); !got.ok()) return lost(peer, got);
      all = all && theirs == kYes;
    }
    verdict = all ? kYes : kNo;
    for (int peer = 1; peer < n; ++peer) {
      if (Status sent = SendAll(control[size_t(peer)].get(), &verdict, 1, deadline); !sent.ok()) return lost(peer, sent);
    }
    return all;
  };
  std::unique_ptr<SharedMemoryGroup> group;
  if (options.rank == 0) {
    if (options.shared_memory && n <= SharedMemoryGroup::kMaxRanks) {
      auto created = SharedMemoryGroup::Create(n, shm_options);
      if (created.ok()) {
        group = std::move(*created);
      } else {
        std::fprintf(stderr, "mlscale-train: rank 0: AllReduce stays on TCP: %s\n", created.status().message().c_str());
      }
    }
    const SegmentOffer offer{group != nullptr, group ? group->name() : "", group ? group->nonce() : 0, identity};
    for (int peer = 1; peer < n; ++peer) {
      if (Status sent = SendOffer(control[size_t(peer)].get(), offer, deadline); !sent.ok()) return lost(peer, sent);
    }
  } else {
    auto offer = ReceiveOffer(control[0].get(), deadline);
    if (!offer.ok()) return lost(0, offer.status());
    if (offer->offered && options.shared_memory && offer->identity == identity) {
      auto opened = SharedMemoryGroup::Open(offer->name, offer->nonce, options.rank, n, shm_options);
      if (opened.ok()) {
        group = std::move(*opened);
      } else {
        std::fprintf(stderr, "mlscale-train: rank %d: cannot use rank 0's shared memory (AllReduce stays on TCP): %s\n",
                     options.rank, opened.status().message().c_str());
      }
    }
  }
  auto everyone = agree(group != nullptr);
  if (!everyone.ok()) return everyone.status();
  if (!*everyone) return std::unique_ptr<SharedMemoryGroup>();
  group->Unlink();  // every rank has it mapped (no-op but on rank 0)
  // Every rank made or opened the segment before the verdict: all have published.
  auto reach = agree(SingleCopyMinBytes(options) != SIZE_MAX && group->CanReachPeers());
  if (!reach.ok()) return reach.status();
  if (*reach) group->EnableSingleCopy();
  return group;
}

// When the ranks do not all share one host: a shared-memory channel for each ring hop
// whose two ranks have the same host identity, TCP for the others. Over the data
// connections each rank offers a channel to its right neighbour (whether there is one,
// its name, its nonce, this rank's host identity), answers its left neighbour's offer
// (whether it opened it), then reads its right neighbour's answer. The offers are small
// enough for the sockets' buffers, so no rank waits for another before it has sent.
Status NegotiateChannels(const TcpRingOptions& options, int send_fd, int receive_fd, Clock::time_point deadline,
                         std::unique_ptr<SharedMemoryChannel>& send_channel,
                         std::unique_ptr<SharedMemoryChannel>& receive_channel) {
  const int n = options.world_size, right = (options.rank + 1) % n, left = (options.rank + n - 1) % n;
  auto lost = [&](int peer, const Status& status) {
    return Status(StatusCode::kAborted, RankName(peer) + " (" + options.peers[size_t(peer)] +
                                            ") broke off the shared-memory channel negotiation: " + status.message());
  };
  const std::string identity = HostIdentity(options);
  std::unique_ptr<SharedMemoryChannel> offered;
  if (options.shared_memory) {
    auto created = SharedMemoryChannel::Create();
    if (created.ok()) {
      offered = std::move(*created);
    } else {
      std::fprintf(stderr, "mlscale-train: rank %d: the hop to rank %d stays on TCP: %s\n", options.rank, right,
                   created.status().message().c_str());
    }
  }
  const SegmentOffer offer{offered != nullptr, offered ? offered->name() : "", offered ? offered->nonce() : 0, identity};
  if (Status sent = SendOffer(send_fd, offer, deadline); !sent.ok()) return lost(right, sent);
  auto left_offer = ReceiveOffer(receive_fd, deadline);
  if (!left_offer.ok()) return lost(left, left_offer.status());
  if (left_offer->offered && options.shared_memory && left_offer->identity == identity) {
    auto opened = SharedMemoryChannel::Open(left_offer->name, left_offer->nonce);
    if (opened.ok()) {
      receive_channel = std::move(*opened);
    } else {
      std::fprintf(stderr, "mlscale-train: rank %d: the hop from rank %d stays on TCP: %s\n", options.rank, left,
                   opened.status().message().c_str());
    }
  }
  const char answer = receive_channel ? kYes : kNo;
  if (Status sent_answer = SendAll(receive_fd, &answer, 1, deadline); !sent_answer.ok()) return lost(left, sent_answer);

  char right_answer = kNo;
  if (Status got = ReceiveAll(send_fd, &right_answer, 1, deadline); !got.ok()) return lost(right, got);
  if (right_answer == kYes && offered) {
    offered->Unlink();  // the reader has it mapped
    send_channel = std::move(offered);
  }
  return Status::Ok();
}

std::string RankList(const std::set<int>& ranks) {
  std::string text;
  for (int r : ranks) text += (text.empty() ? "" : ", ") + std::to_string(r);
  return text;
}

}  // namespace

StatusOr<std::unique_ptr<Communicator>> ConnectTcpRing(const TcpRingOptions& options) {
  const int n = options.world_size;
  if (n < 1 || options.rank < 0 || options.rank >= n) return InvalidArgument("RANK must be in [0, WORLD_SIZE)");
  if (int(options.peers.size()) != n) {
    return InvalidArgument("MLSCALE_PEERS has " + std::to_string(options.peers.size()) + " endpoints, WORLD_SIZE is " +
                           std::to_string(n));
  }
  for (const auto& peer : options.peers) {
    if (auto endpoint = ParseEndpoint(peer); !endpoint.ok()) return endpoint.status().WithContext("MLSCALE_PEERS");
  }
  FileDescriptor own_listener;
  int listen_fd = options.listen_fd;
  if (listen_fd < 0) {
    auto endpoint = ParseEndpoint(options.peers[size_t(options.rank)]);
    auto listener = ListenTcp(endpoint->first, endpoint->second);
    if (!listener.ok()) return listener.status().WithContext("MLSCALE_PEERS[" + std::to_string(options.rank) + "]");
    own_listener = std::move(*listener);
    listen_fd = own_listener.get();
  }
  if (n == 1) return CreateSingleProcessCommunicator();
  const auto deadline = Clock::now() + std::chrono::milliseconds(int64_t(options.connect_timeout_seconds * 1000));
  Acceptor acceptor(options, listen_fd, deadline);
  std::vector<FileDescriptor> control(static_cast<size_t>(n));
  std::set<int> unreachable;
  Status connect_status;
  // A refused token will not be accepted later: stop waiting for anyone.
  auto refused = [&] { return connect_status.code() == StatusCode::kUnauthenticated; };
  for (int peer = 0; peer < options.rank && !refused(); ++peer) {
    auto fd = ConnectPeer(options, peer, kControl, deadline);
    if (fd.ok()) {
      control[size_t(peer)] = std::move(*fd);
    } else {
      unreachable.insert(peer);
      if (connect_status.ok() || fd.status().code() == StatusCode::kUnauthenticated) connect_status = fd.status();
    }
  }
  FileDescriptor send_fd;
  const int right = (options.rank + 1) % n;
  if (!unreachable.contains(right) && !refused()) {
    auto fd = ConnectPeer(options, right, kData, deadline);
    if (fd.ok()) {
      send_fd = std::move(*fd);
    } else {
      unreachable.insert(right);
      if (connect_status.ok() || fd.status().code() == StatusCode::kUnauthenticated) connect_status = fd.status();
    }
  }
  if (refused()) {
    acceptor.Cancel();
    (void)acceptor.Finish();
    return connect_status;
  }
  Status accept_status = acceptor.Finish();
  std::set<int> missing = acceptor.missing();
  missing.insert(unreachable.begin(), unreachable.end());
  if (!missing.empty()) {
    std::string detail = !connect_status.ok() ? connect_status.message() : accept_status.message();
    return Status(StatusCode::kAborted, std::string(missing.size() == 1 ? "rank " : "ranks ") + RankList(missing) +
                                            " did not connect within " +
                                            std::to_string(int(options.connect_timeout_seconds)) + " s (" + detail + ")");
  }
  for (int peer = options.rank + 1; peer < n; ++peer) control[size_t(peer)] = std::move(acceptor.control()[size_t(peer)]);
  auto shared_memory =
      NegotiateSharedMemory(options, control, std::max(deadline, Clock::now() + std::chrono::seconds(10)));
  if (!shared_memory.ok()) return shared_memory.status();
  std::unique_ptr<SharedMemoryChannel> send_channel, receive_channel;
  if (!*shared_memory) {
    MLSCALE_RETURN_IF_ERROR(NegotiateChannels(options, send_fd.get(), acceptor.data().get(),
                                              std::max(deadline, Clock::now() + std::chrono::seconds(10)),
                                              send_channel, receive_channel));
  }
  return std::unique_ptr<Communicator>(std::make_unique<TcpRingCommunicator>(
      options, std::move(control), std::move(send_fd), std::move(acceptor.data()), std::move(*shared_memory),
      std::move(send_channel), std::move(receive_channel)));
}

}  // namespace mlscale::worker
