// AllReduce benchmark in the style of nccl-tests: for each size, the time of one float32
// sum AllReduce and its algorithm and bus bandwidth, for our communicator (the ring's
// rendezvous; shared memory between ranks on this host unless --tcp) beside
// OpenMPI's MPI_Allreduce, alternating in the same processes of one mpirun.
//   mpirun -np N allreduce_bench [--min-bytes 4096] [--max-bytes 268435456] [--rounds 3] ...
// algbw = bytes / time; busbw = algbw * 2 (n - 1) / n (what each link carries, as nccl-tests).
// Each size runs `rounds` alternating rounds (ours, then MPI); a round is one warm-up and
// max(2, min(1000, budget / bytes)) timed calls, and its time the slowest rank's
// (MPI_MAX) mean per call. The table shows each side's best round.
#include <mpi.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "flags.h"
#include "huge_page_allocator.h"
#include "mlscale/worker/communicator.h"
#include "socket.h"

using namespace mlscale::worker;
namespace po = boost::program_options;

namespace {

double Now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Mean seconds per call of `op` over `iterations`, the slowest rank's.
template <typename Op>
double Time(int iterations, Op&& op) {
  op();  // warm-up
  MPI_Barrier(MPI_COMM_WORLD);
  const double start = Now();
  for (int i = 0; i < iterations; ++i) op();
  double seconds = (Now() - start) / iterations;
  double slowest = 0;
  MPI_Allreduce(&seconds, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return slowest;
}

// A float buffer of `count` elements, on huge pages as the trainer allocates its gradients
// (huge_page_allocator.h) or on ordinary pages (`--plain-pages`).
struct Buffer {
  Buffer(size_t count, bool huge_pages) {
    if (huge_pages) {
      huge.resize(count);
    } else {
      plain.resize(count);
    }
    data = huge_pages ? huge.data() : plain.data();
  }
  HugePageVector<float> huge;
  std::vector<float> plain;
  float* data;
  float& operator[](size_t i) { return data[i]; }
};

}  // namespace

int main(int argc, char** argv) {
  size_t min_bytes = 4096, max_bytes = size_t(256) << 20, budget_mb = 256;
  int rounds = 3;
  bool tcp = false, plain_pages = false;
  TcpRingOptions options;
  size_t single_copy_min_bytes = 0;
  po::options_description description("allreduce_bench (run under mpirun)");
  description.add_options()(
      "min-bytes", po::value(&min_bytes)->default_value(min_bytes), "smallest message (doubled up to --max-bytes)")(
      "max-bytes", po::value(&max_bytes)->default_value(max_bytes), "largest message")(
      "budget-mb", po::value(&budget_mb)->default_value(budget_mb), "MiB moved per round and size (sets the calls)")(
      "rounds", po::value(&rounds)->default_value(rounds), "alternating rounds per size; the best is shown")(
      "plain-pages", po::bool_switch(&plain_pages), "both sides' buffers on ordinary pages (default: huge pages, as the trainer's gradients)")(
      "tcp", po::bool_switch(&tcp), "ours over TCP only (default: shared memory between ranks on this host)")(
      "spin-us", po::value(&options.spin_microseconds)->default_value(options.spin_microseconds),
      "shared memory: spin this long before sleeping on the futex (-1: 10 us, 0 with more ranks than CPUs)")(
      "yield-us", po::value(&options.yield_microseconds)->default_value(options.yield_microseconds),
      "shared memory: after spinning, give the CPU away (sched_yield) this long before sleeping")(
      "direct-max-bytes", po::value(&options.direct_max_bytes)->default_value(options.direct_max_bytes),
      "shared memory: largest message summed directly (one wait)")(
      "single-copy-min-bytes", po::value(&single_copy_min_bytes),
      "shared memory: smallest message read and written straight from the peers' buffers (no staging; default: "
      "16 KiB with 2 ranks, 512 KiB with more)")(
      "tcp-direct-max-bytes", po::value(&options.tcp_direct_max_bytes)->default_value(options.tcp_direct_max_bytes),
      "TCP: largest message passed whole around the ring and summed by every rank");
  po::variables_map values;
  if (std::optional<int> exit_code = mlscale::testing::ParseFlags(argc, argv, description, values)) return *exit_code;
  if (rounds < 1 || min_bytes < 4 || max_bytes < min_bytes) {
    std::cerr << "allreduce_bench: --rounds >= 1 and 4 <= --min-bytes <= --max-bytes\n";
    return 2;
  }
  options.shared_memory = !tcp;
  if (values.count("single-copy-min-bytes")) options.single_copy_min_bytes = single_copy_min_bytes;
  auto mpi = CreateMpiCommunicator();
  if (!mpi.ok()) {
    std::fprintf(stderr, "%s\n", mpi.status().ToString().c_str());
    return 1;
  }
  const int rank = (*mpi)->rank(), size = (*mpi)->size();

  // The ring's peer table: every rank listens on a free loopback port; MPI shares them.
  auto listener = ListenTcp("127.0.0.1", 0);
  int port = *LocalPort(listener->get());
  std::vector<int> ports(size_t(size), 0);
  MPI_Allgather(&port, 1, MPI_INT, ports.data(), 1, MPI_INT, MPI_COMM_WORLD);
  options.rank = rank;
  options.world_size = size;
  options.listen_fd = listener->get();
  options.run_id = "allreduce-bench";
  for (int p : ports) options.peers.push_back("127.0.0.1:" + std::to_string(p));
  auto ring = ConnectTcpRing(options);
  if (!ring.ok()) {
    std::fprintf(stderr, "rank %d: %s\n", rank, ring.status().ToString().c_str());
    return 1;
  }

  const bool huge_pages = !plain_pages;
  Buffer ring_buffer(max_bytes / 4 + 1, huge_pages), mpi_buffer(max_bytes / 4 + 1, huge_pages);
  if (rank == 0) {
    const std::string spin = options.spin_microseconds < 0 ? "auto" : std::to_string(options.spin_microseconds) + " us";
    const std::string single_copy =
        options.single_copy_min_bytes ? std::to_string(*options.single_copy_min_bytes) + " B" : "the default";
    std::printf("# %d processes, float32 sum; ours over %s (spin %s, then yield %d us; shared memory: direct up to %zu B, single copy "
                "from %s; TCP: direct up to %zu B); buffers on %s pages; best of %d alternating rounds; times in us, bandwidths in GB/s\n",
                size, std::string((*ring)->transport()).c_str(), spin.c_str(), options.yield_microseconds,
                options.direct_max_bytes,
                single_copy.c_str(), options.tcp_direct_max_bytes, huge_pages ? "huge" : "ordinary", rounds);
    std::printf("%12s %10s %6s | %10s %8s %8s | %10s %8s %8s | %9s\n", "size(B)", "count", "iters", "ours time",
                "algbw", "busbw", "mpi time", "algbw", "busbw", "ours/mpi");
  }
  for (size_t bytes = min_bytes; bytes <= max_bytes; bytes *= 2) {
    const size_t count = bytes / 4;
    const int iterations = int(std::max<size_t>(2, std::min<size_t>(1000, (budget_mb << 20) / bytes)));
    double ring_seconds = 1e30, mpi_seconds = 1e30;
    for (int round = 0; round < rounds; ++round) {
      for (size_t i = 0; i < count; ++i) ring_buffer[i] = mpi_buffer[i] = float((i + size_t(rank)) % 7);
      ring_seconds = std::min(ring_seconds, Time(iterations, [&] {
        auto status = (*ring)->AllReduceSum(ring_buffer.data, count, DataType::kFloat32);
        if (!status.ok()) {
          std::fprintf(stderr, "%s\n", status.ToString().c_str());
          MPI_Abort(MPI_COMM_WORLD, 1);
        }
      }));
      mpi_seconds = std::min(mpi_seconds, Time(iterations, [&] {
        MPI_Allreduce(MPI_IN_PLACE, mpi_buffer.data, int(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      }));
    }
    if (rank == 0) {
      auto algbw = [&](double s) { return double(bytes) / s / 1e9; };
      const double factor = 2.0 * (size - 1) / size;
      std::printf("%12zu %10zu %6d | %10.1f %8.3f %8.3f | %10.1f %8.3f %8.3f | %9.2f\n", bytes, count, iterations,
                  ring_seconds * 1e6, algbw(ring_seconds), algbw(ring_seconds) * factor, mpi_seconds * 1e6,
                  algbw(mpi_seconds), algbw(mpi_seconds) * factor, mpi_seconds / ring_seconds);
      std::fflush(stdout);
    }
  }
  (void)(*ring)->Shutdown(mlscale::Status::Ok());
  return 0;
}
