// Runs n ranks as threads of the test process, each with a TCP ring communicator over
// real loopback sockets (and, unless told otherwise, a real shared-memory segment).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "mlscale/worker/communicator.h"
#include "socket.h"

namespace mlscale::worker::testing {

// Loopback endpoints with listening sockets bound to free ports (as the launcher passes
// them in MLSCALE_LISTEN_FD).
struct Endpoints {
  std::vector<FileDescriptor> listeners;
  std::vector<std::string> peers;
};

inline Endpoints BindLoopback(int n) {
  Endpoints e;
  for (int r = 0; r < n; ++r) {
    auto listener = ListenTcp("127.0.0.1", 0);
    e.peers.push_back("127.0.0.1:" + std::to_string(*LocalPort(listener->get())));
    e.listeners.push_back(std::move(*listener));
  }
  return e;
}

inline TcpRingOptions RingOptions(const Endpoints& e, int rank, const std::string& run_id = "test",
                                  double timeout = 20) {
  TcpRingOptions options;
  options.rank = rank;
  options.world_size = int(e.peers.size());
  options.peers = e.peers;
  options.listen_fd = e.listeners[size_t(rank)].get();
  options.run_id = run_id;
  options.connect_timeout_seconds = timeout;
  return options;
}

// Connects n ranks and runs body(rank, communicator) on a thread per rank; `configure`
// adjusts each rank's options (e.g. the transport).
inline void RunRing(int n, const std::function<void(int, Communicator&)>& body,
                    const std::function<void(TcpRingOptions&)>& configure = {}) {
  Endpoints endpoints = BindLoopback(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      TcpRingOptions options = RingOptions(endpoints, r);
      if (configure) configure(options);
      auto communicator = ConnectTcpRing(options);
      if (!communicator.ok()) {
        ADD_FAILURE() << "rank " << r << ": " << communicator.status().ToString();
        return;
      }
      body(r, **communicator);
      EXPECT_TRUE((*communicator)->Shutdown(Status::Ok()).ok());
    });
  }
  for (auto& t : threads) t.join();
}

}  // namespace mlscale::worker::testing
