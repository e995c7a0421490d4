// AllReduce benchmark in the style of nccl-tests: for each size, the time of one float32
// sum AllReduce and its algorithm and bus bandwidth, for our TCP ring beside OpenMPI's
// MPI_Allreduce, alternating in the same processes of one mpirun.
//   mpirun -np N allreduce_bench [--min-bytes 8] [--max-bytes 268435456] [--budget-mb 256]
// algbw = bytes / time; busbw = algbw * 2 (n - 1) / n (what each link carries, as nccl-tests).
// Each size runs max(2, min(100, budget / bytes)) timed iterations after one warm-up; the
// reported time is the mean over ranks' slowest (MPI_MAX) of each iteration's mean.
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "mlscale/worker/communicator.h"
#include "socket.h"

using namespace mlscale::worker;

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

}  // namespace

int main(int argc, char** argv) {
  size_t min_bytes = 8, max_bytes = size_t(256) << 20, budget = size_t(256) << 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--min-bytes")) min_bytes = std::strtoull(argv[i + 1], nullptr, 10);
    if (!std::strcmp(argv[i], "--max-bytes")) max_bytes = std::strtoull(argv[i + 1], nullptr, 10);
    if (!std::strcmp(argv[i], "--budget-mb")) budget = std::strtoull(argv[i + 1], nullptr, 10) << 20;
  }
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
  TcpRingOptions options;
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

  std::vector<float> ring_buffer(max_bytes / 4 + 1), mpi_buffer(max_bytes / 4 + 1);
  if (rank == 0) {
    std::printf("# %d processes, float32 sum; times in us, bandwidths in GB/s\n", size);
    std::printf("%12s %10s %6s | %10s %8s %8s | %10s %8s %8s | %9s\n", "size(B)", "count", "iters", "ring time",
                "algbw", "busbw", "mpi time", "algbw", "busbw", "ring/mpi");
  }
  for (size_t bytes = min_bytes; bytes <= max_bytes; bytes *= 2) {
    const size_t count = bytes / 4;
    const int iterations = int(std::max<size_t>(2, std::min<size_t>(100, budget / bytes)));
    for (size_t i = 0; i < count; ++i) ring_buffer[i] = mpi_buffer[i] = float((i + size_t(rank)) % 7);
    const double ring_seconds = Time(iterations, [&] {
      auto status = (*ring)->AllReduceSum(ring_buffer.data(), count, DataType::kFloat32);
      if (!status.ok()) {
        std::fprintf(stderr, "%s\n", status.ToString().c_str());
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
    });
    const double mpi_seconds = Time(iterations, [&] {
      MPI_Allreduce(MPI_IN_PLACE, mpi_buffer.data(), int(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    });
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
