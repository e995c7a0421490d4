#include "mlscale/worker/communicator.h"

#include <bit>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "mlscale/common/run_token.h"

namespace mlscale::worker {

size_t DataTypeSize(DataType type) {
  switch (type) {
    case DataType::kFloat32: return 4;
    case DataType::kFloat64: return 8;
    case DataType::kBFloat16: return 2;
    case DataType::kInt32: return 4;
    case DataType::kInt64: return 8;
  }
  return 1;
}

std::string_view DataTypeName(DataType type) {
  switch (type) {
    case DataType::kFloat32: return "float32";
    case DataType::kFloat64: return "float64";
    case DataType::kBFloat16: return "bfloat16";
    case DataType::kInt32: return "int32";
    case DataType::kInt64: return "int64";
  }
  return "unknown";
}

namespace {

// The sums are compiled for AVX-512, AVX2 and the baseline ISA, one chosen at load time
// (an ifunc): the library itself is built for baseline x86-64. Each element is one
// addition of the same two operands at every vector width (no reassociation, nothing to
// fuse), so the result is the same bits whichever variant runs. ivdep: the target is
// either one of the operands itself or apart from both (ReduceSum's contract), so each
// element is read before it is written and the loop is vectorized without the runtime
// overlap check (which would run one element at a time when target == second).
#if defined(__x86_64__) && !defined(__clang__)
#define MLSCALE_SUM_VARIANTS __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MLSCALE_SUM_VARIANTS
#endif

template <typename T>
MLSCALE_SUM_VARIANTS void Add(T* target, const T* first, const T* second, size_t count) {
#pragma GCC ivdep
  for (size_t i = 0; i < count; ++i) target[i] = first[i] + second[i];
}

float BFloat16ToFloat(uint16_t v) { return std::bit_cast<float>(uint32_t(v) << 16); }

// Rounds to nearest even, keeping NaN a NaN.
uint16_t FloatToBFloat16(float f) {
  uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

MLSCALE_SUM_VARIANTS void AddBFloat16(uint16_t* target, const uint16_t* first, const uint16_t* second, size_t count) {
#pragma GCC ivdep
  for (size_t i = 0; i < count; ++i) {
    target[i] = FloatToBFloat16(BFloat16ToFloat(first[i]) + BFloat16ToFloat(second[i]));
  }
}

template <typename T>
void AddAs(void* target, const void* first, const void* second, size_t count) {
  Add(static_cast<T*>(target), static_cast<const T*>(first), static_cast<const T*>(second), count);
}

}  // namespace

void ReduceSum(void* target, const void* first, const void* second, size_t count, DataType type) {
  switch (type) {
    case DataType::kFloat32: return AddAs<float>(target, first, second, count);
    case DataType::kFloat64: return AddAs<double>(target, first, second, count);
    case DataType::kInt32: return AddAs<int32_t>(target, first, second, count);
    case DataType::kInt64: return AddAs<int64_t>(target, first, second, count);
    case DataType::kBFloat16:
      return AddBFloat16(static_cast<uint16_t*>(target), static_cast<const uint16_t*>(first),
                         static_cast<const uint16_t*>(second), count);
  }
}

Status Communicator::AllGather(void* data, size_t count, DataType type) {
  const size_t element = DataTypeSize(type);
  for (int root = 0; root < size(); ++root) {
    const auto [first, last] = ShareOf(count, root, size());
    MLSCALE_RETURN_IF_ERROR(Broadcast(static_cast<char*>(data) + first * element, (last - first) * element, root));
  }
  return Status::Ok();
}

namespace {

class SingleProcessCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string_view name() const override { return "single"; }
  Status AllReduceSum(void*, size_t, DataType) override { return Status::Ok(); }
  Status Broadcast(void*, size_t, int root) override {
    return root == 0 ? Status::Ok() : InvalidArgument("broadcast root out of range");
  }
  Status Barrier() override { return Status::Ok(); }
  Status Shutdown(const Status&) override { return Status::Ok(); }
};

StatusOr<int> IntegerVariable(const char* name, int fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < 0 || value > (1 << 20)) {
    return InvalidArgument(std::string(name) + "='" + text + "' is not a non-negative integer");
  }
  return int(value);
}

}  // namespace

std::unique_ptr<Communicator> CreateSingleProcessCommunicator() {
  return std::make_unique<SingleProcessCommunicator>();
}

StatusOr<std::pair<std::string, uint16_t>> ParseEndpoint(const std::string& endpoint) {
  size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos || colon == 0) return InvalidArgument("'" + endpoint + "' is not host:port");
  std::string host = endpoint.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  char* end = nullptr;
  std::string port_text = endpoint.substr(colon + 1);
  long port = std::strtol(port_text.c_str(), &end, 10);
  if (port_text.empty() || *end != '\0' || port < 1 || port > 65535) {
    return InvalidArgument("'" + endpoint + "' has no valid port");
  }
  return std::make_pair(host, uint16_t(port));
}

StatusOr<ProcessEnvironment> ReadProcessEnvironment() {
  ProcessEnvironment env;
  if (const char* mpi_size = std::getenv("OMPI_COMM_WORLD_SIZE"); mpi_size != nullptr && *mpi_size != '\0') {
    env.mode = ProcessEnvironment::Mode::kMpi;
    auto size = IntegerVariable("OMPI_COMM_WORLD_SIZE", 1);
    auto rank = IntegerVariable("OMPI_COMM_WORLD_RANK", 0);
    auto local = IntegerVariable("OMPI_COMM_WORLD_LOCAL_RANK", 0);
    if (!size.ok()) return size.status();
    if (!rank.ok()) return rank.status();
    if (!local.ok()) return local.status();
    env.world_size = *size;
    env.rank = *rank;
    env.local_rank = *local;
    return env;
  }
  auto world = IntegerVariable("WORLD_SIZE", 1);
  auto rank = IntegerVariable("RANK", 0);
  auto local = IntegerVariable("LOCAL_RANK", 0);
  if (!world.ok()) return world.status();
  if (!rank.ok()) return rank.status();
  if (!local.ok()) return local.status();
  if (*world < 1) return InvalidArgument("WORLD_SIZE must be >= 1");
  if (*rank >= *world) {
    return InvalidArgument("RANK=" + std::to_string(*rank) + " is not below WORLD_SIZE=" + std::to_string(*world));
  }
  env.world_size = *world;
  env.rank = *rank;
  env.local_rank = *local;
  if (env.world_size == 1) return env;
  env.mode = ProcessEnvironment::Mode::kTcpRing;
  env.tcp.rank = env.rank;
  env.tcp.world_size = env.world_size;
  const char* peers = std::getenv("MLSCALE_PEERS");
  if (peers == nullptr || *peers == '\0') return InvalidArgument("WORLD_SIZE > 1 needs MLSCALE_PEERS (host:port per rank)");
  std::stringstream list(peers);
  std::string item;
  while (std::getline(list, item, ',')) env.tcp.peers.push_back(item);
  auto listen_fd = IntegerVariable("MLSCALE_LISTEN_FD", -1);
  if (!listen_fd.ok()) return listen_fd.status();
  env.tcp.listen_fd = *listen_fd;
  if (const char* run_id = std::getenv("MLSCALE_RUN_ID")) env.tcp.run_id = run_id;
  if (const char* token = std::getenv(kRunTokenVariable)) env.tcp.token = token;
  if (env.tcp.token.size() > kMaxRunTokenBytes) {
    return InvalidArgument(std::string(kRunTokenVariable) + " is longer than " + std::to_string(kMaxRunTokenBytes) +
                           " characters");
  }
  auto timeout = IntegerVariable("MLSCALE_CONNECT_TIMEOUT_SECONDS", 120);
  if (!timeout.ok()) return timeout.status();
  env.tcp.connect_timeout_seconds = *timeout;
  if (const char* transport = std::getenv("MLSCALE_TRANSPORT"); transport != nullptr && *transport != '\0') {
    const std::string_view value = transport;
    if (value != "auto" && value != "tcp") {
      return InvalidArgument("MLSCALE_TRANSPORT='" + std::string(value) + "' is neither 'auto' nor 'tcp'");
    }
    env.tcp.shared_memory = value == "auto";
  }
  auto spin = IntegerVariable("MLSCALE_SPIN_MICROSECONDS", -1);
  if (!spin.ok()) return spin.status();
  env.tcp.spin_microseconds = *spin;
  auto yield = IntegerVariable("MLSCALE_YIELD_MICROSECONDS", env.tcp.yield_microseconds);
  if (!yield.ok()) return yield.status();
  env.tcp.yield_microseconds = *yield;
  return env;
}

StatusOr<std::unique_ptr<Communicator>> CreateCommunicator(const ProcessEnvironment& environment) {
  switch (environment.mode) {
    case ProcessEnvironment::Mode::kSingle: return CreateSingleProcessCommunicator();
    case ProcessEnvironment::Mode::kMpi: return CreateMpiCommunicator();
    case ProcessEnvironment::Mode::kTcpRing: return ConnectTcpRing(environment.tcp);
  }
  return Internal("unknown process mode");
}

}  // namespace mlscale::worker
