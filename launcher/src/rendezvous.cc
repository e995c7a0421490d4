#include "mlscale/launcher/rendezvous.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <thread>

#include "mlscale/common/run_token.h"
#include "mlscale/launcher/wire.h"

namespace mlscale::launcher {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

// Bounds that keep a misbehaving client from holding up or flooding rank 0.
constexpr milliseconds kRejectSendTimeout{200};
constexpr milliseconds kConnectAttemptTimeout{5000};
constexpr milliseconds kFirstBackoff{100};
constexpr milliseconds kMaxBackoff{2000};
constexpr std::size_t kMaxRememberedRejections = 5;
// Refusals logged as they happen; beyond this a flood of strays is not logged further.
constexpr std::size_t kMaxLoggedRejections = 20;
// How much longer than rank 0's own timeout a joined rank waits for rank 0's verdict.
constexpr milliseconds kVerdictGrace{3000};
// Connections that have not joined yet; more are closed as they arrive.
constexpr std::size_t kMaxPendingConnections = 256;

std::string Seconds(milliseconds duration) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g s", static_cast<double>(duration.count()) / 1000.0);
  return text;
}

int PollTimeout(Clock::time_point deadline) {
  auto remaining = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(remaining, 0, 1000));
}

// "rank 3" or "ranks 1-3, 7" for a sorted list of ranks.
std::string FormatRanks(const std::vector<std::int64_t>& ranks) {
  std::string text = ranks.size() == 1 ? "rank " : "ranks ";
  for (std::size_t i = 0; i < ranks.size();) {
    std::size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (i > 0) text += ", ";
    text += std::to_string(ranks[i]);
    if (j > i) text += "-" + std::to_string(ranks[j]);
    i = j + 1;
  }
  return text;
}

// The host this rank advertises for its data plane; `connection` is a socket
// connected to (or accepted from) another launcher.
StatusOr<std::string> AdvertisedHost(const RendezvousOptions& options, int connection) {
  if (!options.advertise_host.empty()) return options.advertise_host;
  if (!IsWildcardAddress(options.bind_address)) return options.bind_address;
  return LocalAddress(connection);
}

json PeersMessage(const std::string& run_id, const std::vector<Endpoint>& endpoints) {
  json list = json::array();
  for (const auto& endpoint : endpoints) list.push_back(endpoint.ToString());
  return {{"type", "peers"}, {"runId", run_id}, {"endpoints", std::move(list)}};
}

json ErrorMessage(const std::string& message) { return {{"type", "error"}, {"message", message}}; }

// Rank 0: collects a join from every other rank, sends the table, runs the barrier.
class RendezvousServer {
 public:
  RendezvousServer(const RendezvousOptions& options, std::uint16_t data_port)
      : options_(options), data_port_(data_port), deadline_(Clock::now() + options.timeout),
        joined_(static_cast<std::size_t>(options.world_size)) {}

  StatusOr<std::vector<Endpoint>> Run() {
    auto listener = ListenTcp(options_.bind_address, options_.master_port);
    if (!listener.ok()) return listener.status().WithContext("rank 0 cannot host the rendezvous");
    listener_ = std::move(*listener);
    MLSCALE_RETURN_IF_ERROR(CollectJoins());
    listener_.Reset();  // late or stray connections are refused from now on
    // The barrier gets a full timeout of its own, even when the last rank joined late.
    deadline_ = Clock::now() + options_.timeout;

    auto own_host = AdvertisedHost(options_, joined_[1]->fd.get());
    if (!own_host.ok()) return own_host.status();
    std::vector<Endpoint> endpoints;
    endpoints.push_back({*own_host, data_port_});
    for (std::size_t rank = 1; rank < joined_.size(); ++rank) endpoints.push_back(joined_[rank]->endpoint);

    json peers = PeersMessage(options_.run_id, endpoints);
    for (std::size_t rank = 1; rank < joined_.size(); ++rank) {
      Status sent = SendMessage(joined_[rank]->fd.get(), peers, deadline_);
      if (!sent.ok()) return Fail(sent.WithContext("sending the peer table to rank " + std::to_string(rank)));
    }
    MLSCALE_RETURN_IF_ERROR(Barrier());
    for (std::size_t rank = 1; rank < joined_.size(); ++rank) {
      Status sent = SendMessage(joined_[rank]->fd.get(), json{{"type", "go"}}, deadline_);
      if (!sent.ok()) return Fail(sent.WithContext("ending the barrier with rank " + std::to_string(rank)));
    }
    return endpoints;
  }

 private:
  struct Connection {
    FileDescriptor fd;
    FrameReader reader;
    std::string address;  // the peer's address, for messages
    Endpoint endpoint;    // set once joined
    bool closed = false;
  };

  // Tells every joined rank why the rendezvous failed, and returns that error.
  Status Fail(const Status& status) {
    for (auto& connection : joined_) {
      if (connection != nullptr) {
        (void)SendMessage(connection->fd.get(), ErrorMessage(status.message()), Clock::now() + kRejectSendTimeout);
      }
    }
    return status;
  }

  // Refuses a connection, telling it why. `why` never holds the run token.
  void Reject(Connection& connection, const std::string& why) {
    (void)SendMessage(connection.fd.get(), ErrorMessage(why), Clock::now() + kRejectSendTimeout);
    connection.closed = true;
    if (rejections_.size() < kMaxRememberedRejections) rejections_.push_back(connection.address + ": " + why);
    if (++rejection_count_ <= kMaxLoggedRejections) {
      std::fprintf(stderr, "mlscale-launch: rank 0 refused a join from %s: %s%s\n", connection.address.c_str(),
                   why.c_str(), rejection_count_ == kMaxLoggedRejections ? " (further refusals are not logged)" : "");
    }
  }

  std::vector<std::int64_t> MissingRanks() const {
    std::vector<std::int64_t> missing;
    for (std::size_t rank = 1; rank < joined_.size(); ++rank) {
      if (joined_[rank] == nullptr) missing.push_back(static_cast<std::int64_t>(rank));
    }
    return missing;
  }

  void Accept() {
    while (true) {
      FileDescriptor fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!fd.valid()) return;
      if (pending_.size() >= kMaxPendingConnections) continue;  // closes it
      auto connection = std::make_unique<Connection>();
      auto address = PeerAddress(fd.get());
      connection->address = address.ok() ? *address : "unknown peer";
      connection->fd = std::move(fd);
      pending_.push_back(std::move(connection));
    }
  }

  // Handles one message from a connection that has not joined yet.
  void HandleJoin(std::unique_ptr<Connection>& slot, const json& message) {
    Connection& connection = *slot;
    auto join = ParseJoin(message);
    if (!join.ok()) return Reject(connection, join.status().message());
    // The token first: a peer without it learns nothing about this run.
    if (!ConstantTimeEquals(join->token, options_.token)) {
      return Reject(connection, "a join that claims rank " + std::to_string(join->rank) + " has " +
                                    (join->token.empty() ? "no" : "a wrong") + " run token (MLSCALE_RUN_TOKEN)");
    }
    if (join->run_id != options_.run_id) {
      return Reject(connection, "rank " + std::to_string(join->rank) + " belongs to run '" + join->run_id +
                                    "', rank 0 to run '" + options_.run_id + "'");
    }
    if (join->world_size != options_.world_size) {
      return Reject(connection, "rank " + std::to_string(join->rank) + " has world size " +
                                    std::to_string(join->world_size) + ", rank 0 has " +
                                    std::to_string(options_.world_size));
    }
    if (join->rank == 0) return Reject(connection, "a second rank 0 (rank 0 hosts the rendezvous)");
    auto& owner = joined_[static_cast<std::size_t>(join->rank)];
    if (owner != nullptr) {
      return Reject(connection, "rank " + std::to_string(join->rank) + " has already joined from " + owner->address);
    }
    connection.endpoint = join->endpoint;
    owner = std::move(slot);
  }

  Status CollectJoins() {
    while (!MissingRanks().empty()) {
      if (Clock::now() >= deadline_) {
        auto missing = MissingRanks();
        std::string message = "rendezvous timed out after " + Seconds(options_.timeout) + ": " +
                              FormatRanks(missing) + " of " + std::to_string(options_.world_size) +
                              " never joined (run '" + options_.run_id + "')";
        if (!rejections_.empty()) {
          message += "; rejected:";
          for (const auto& rejection : rejections_) message += " [" + rejection + "]";
        }
        return Fail(DeadlineExceeded(message));
      }
      // Poll the listener, the pending connections and the joined ones (to notice a
      // rank that leaves, so that it may join again, e.g. after a pod restart).
      std::vector<pollfd> fds{{listener_.get(), POLLIN, 0}};
      std::vector<std::unique_ptr<Connection>*> slots;
      for (auto& connection : pending_) slots.push_back(&connection);
      for (auto& connection : joined_) {
        if (connection != nullptr) slots.push_back(&connection);
      }
      for (auto* slot : slots) fds.push_back({(*slot)->fd.get(), POLLIN, 0});
      int ready = ::poll(fds.data(), fds.size(), PollTimeout(deadline_));
      if (ready < 0 && errno != EINTR) return Fail(Internal(std::string("poll: ") + std::strerror(errno)));
      if (ready <= 0) continue;
      for (std::size_t i = 0; i < slots.size(); ++i) {
        if (fds[i + 1].revents != 0) Read(*slots[i]);
      }
      if (fds[0].revents & POLLIN) Accept();
      std::erase_if(pending_, [](const auto& c) { return c == nullptr || c->closed; });
      for (auto& connection : joined_) {
        if (connection != nullptr && connection->closed) connection.reset();
      }
    }
    return Status::Ok();
  }

  // Reads what arrived on one connection and handles its complete messages.
  void Read(std::unique_ptr<Connection>& slot) {
    Connection& connection = *slot;
    char buffer[4096];
    ssize_t n = ::recv(connection.fd.get(), buffer, sizeof buffer, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
      connection.closed = true;
      return;
    }
    connection.reader.Append(std::string_view(buffer, static_cast<std::size_t>(n)));
    bool joined = !connection.endpoint.host.empty();
    auto message = connection.reader.Next();
    if (!message.ok()) return Reject(connection, message.status().message());
    if (!message->has_value()) return;
    if (joined) return Reject(connection, "unexpected message before the peer table was sent");
    HandleJoin(slot, **message);
  }

  Status Barrier() {
    for (std::size_t rank = 1; rank < joined_.size(); ++rank) {
      Connection& connection = *joined_[rank];
      auto message = ReceiveMessage(connection.fd.get(), connection.reader, deadline_);
      std::string who = "rank " + std::to_string(rank);
      if (!message.ok()) {
        return Fail(message.status().WithContext(who + " did not reach the barrier within " + Seconds(options_.timeout)));
      }
      auto type = MessageType(*message);
      if (!type.ok() || *type != "ready") return Fail(DataLoss(who + " sent an unexpected message in the barrier"));
    }
    return Status::Ok();
  }

  const RendezvousOptions& options_;
  std::uint16_t data_port_;
  Clock::time_point deadline_;
  FileDescriptor listener_;
  std::vector<std::unique_ptr<Connection>> pending_;
  std::vector<std::unique_ptr<Connection>> joined_;  // by rank; [0] stays empty (this rank)
  std::vector<std::string> rejections_;
  std::size_t rejection_count_ = 0;
};

// A rank other than 0: joins rank 0, retrying until the deadline.
class RendezvousClient {
 public:
  RendezvousClient(const RendezvousOptions& options, std::uint16_t data_port)
      : options_(options), data_port_(data_port), deadline_(Clock::now() + options.timeout),
        random_(std::random_device{}()) {}

  StatusOr<std::vector<Endpoint>> Run() {
    std::string master = Endpoint{options_.master_host, options_.master_port}.ToString();
    milliseconds backoff = kFirstBackoff;
    std::string last_error;
    bool reached_master = false;
    while (true) {
      auto connection = ConnectTcp(options_.master_host, options_.master_port,
                                   std::min(deadline_, Clock::now() + kConnectAttemptTimeout));
      if (connection.ok()) {
        reached_master = true;
        auto peers = Join(connection->get());
        if (peers.ok() || peers.status().code() != StatusCode::kUnavailable) return peers;
        last_error = peers.status().message();  // rank 0 went away; it may come back
      } else if (connection.status().code() == StatusCode::kUnavailable) {
        last_error = connection.status().message();
      } else {
        return connection.status();
      }
      if (Clock::now() + backoff >= deadline_) {
        return DeadlineExceeded("rank " + std::to_string(options_.rank) + " could not " +
                                (reached_master ? "complete the rendezvous with" : "reach") + " rank 0's launcher at " +
                                master + " within " + Seconds(options_.timeout) + " (last error: " + last_error + ")");
      }
      // Jitter spreads the retries of many ranks so they do not arrive in bursts.
      std::uniform_int_distribution<long long> jitter(backoff.count() / 2, backoff.count());
      std::this_thread::sleep_for(milliseconds(jitter(random_)));
      backoff = std::min(backoff * 2, kMaxBackoff);
    }
  }

 private:
  StatusOr<std::vector<Endpoint>> Join(int fd) {
    auto host = AdvertisedHost(options_, fd);
    if (!host.ok()) return host.status();
    JoinRequest join{options_.run_id, options_.rank, options_.world_size, Endpoint{*host, data_port_}, options_.token};
    MLSCALE_RETURN_IF_ERROR(SendMessage(fd, ToJson(join), deadline_));
    // Rank 0 started before this connection and owns the timeout: once joined, wait
    // long enough to hear its verdict (which names the missing ranks) rather than
    // giving up on a clock of our own that started earlier.
    verdict_deadline_ = Clock::now() + options_.timeout + kVerdictGrace;
    FrameReader reader;
    auto peers = Expect(fd, reader, "peers");
    if (!peers.ok()) return peers.status();
    auto endpoints = ParsePeers(*peers, options_.run_id, options_.world_size);
    if (!endpoints.ok()) return endpoints.status();
    MLSCALE_RETURN_IF_ERROR(SendMessage(fd, json{{"type", "ready"}, {"rank", options_.rank}}, verdict_deadline_));
    auto go = Expect(fd, reader, "go");
    if (!go.ok()) return go.status();
    return endpoints;
  }

  // The next message, which must be of type `expected` (an error message from rank 0
  // becomes this rank's error).
  StatusOr<json> Expect(int fd, FrameReader& reader, const std::string& expected) {
    auto message = ReceiveMessage(fd, reader, verdict_deadline_);
    if (!message.ok()) {
      if (message.status().code() != StatusCode::kDeadlineExceeded) return message.status();
      return DeadlineExceeded("rank " + std::to_string(options_.rank) +
                              " joined, but rank 0 did not complete the rendezvous within " +
                              Seconds(options_.timeout));
    }
    auto type = MessageType(*message);
    if (!type.ok()) return type.status();
    if (*type == "error") {
      std::string why = message->value("message", std::string("no reason given"));
      return FailedPrecondition("rank 0 ended the rendezvous: " + why);
    }
    if (*type != expected) return DataLoss("malformed message: '" + *type + "' where '" + expected + "' was expected");
    return message;
  }

  const RendezvousOptions& options_;
  std::uint16_t data_port_;
  Clock::time_point deadline_;          // for reaching rank 0
  Clock::time_point verdict_deadline_{};  // for rank 0's answer, once joined
  std::mt19937 random_;
};

}  // namespace

StatusOr<std::vector<Endpoint>> Rendezvous(const RendezvousOptions& options, std::uint16_t data_port) {
  if (options.world_size < 1 || options.world_size > kMaxWorldSize) {
    return InvalidArgument("WORLD_SIZE must be in 1.." + std::to_string(kMaxWorldSize));
  }
  if (options.rank < 0 || options.rank >= options.world_size) {
    return InvalidArgument("RANK " + std::to_string(options.rank) + " is not in 0.." +
                           std::to_string(options.world_size - 1));
  }
  if (options.world_size == 1) {
    std::string host = !options.advertise_host.empty()              ? options.advertise_host
                       : !IsWildcardAddress(options.bind_address) ? options.bind_address
                                                                   : "127.0.0.1";
    return std::vector<Endpoint>{{host, data_port}};
  }
  if (options.rank == 0) return RendezvousServer(options, data_port).Run();
  return RendezvousClient(options, data_port).Run();
}

}  // namespace mlscale::launcher
