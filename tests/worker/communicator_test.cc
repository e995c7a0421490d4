#include "mlscale/worker/communicator.h"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <ctime>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#include "ring_fixture.h"
#include "shared_memory_group.h"

namespace mlscale::worker {
namespace {

using testing::BindLoopback;
using testing::RingOptions;
using testing::RunRing;

uint16_t ToBFloat16(float f) { return uint16_t(std::bit_cast<uint32_t>(f) >> 16); }
float FromBFloat16(uint16_t v) { return std::bit_cast<float>(uint32_t(v) << 16); }

// Element i of rank r: small integers, exact in every type including bfloat16.
double Value(int rank, size_t i) { return double((rank + 1) * 3 + int(i % 7)) - 10; }

template <typename T>
std::vector<T> Fill(int rank, size_t count, T (*convert)(double)) {
  std::vector<T> v(count);
  for (size_t i = 0; i < count; ++i) v[i] = convert(Value(rank, i));
  return v;
}

// Ranks, and whether they may use shared memory (all ranks of these tests share a host).
class AllReduceTest : public ::testing::TestWithParam<std::tuple<int, bool>> {
 protected:
  int Ranks() const { return std::get<0>(GetParam()); }
  bool SharedMemory() const { return std::get<1>(GetParam()); }
  std::function<void(TcpRingOptions&)> Configure() const {
    return [shared = SharedMemory()](TcpRingOptions& options) { options.shared_memory = shared; };
  }
};

// Sums for odd sizes (fewer elements than ranks, not divisible by the ranks, larger than
// a socket buffer; through shared memory: the direct path, one piece and several pieces
// of the reduce-scatter) and every data type.
TEST_P(AllReduceTest, SumsEveryTypeAndOddSizes) {
  const int n = Ranks();
  const size_t counts[] = {0, 1, 2, 3, 5, 7, 1001, 65537, 1'000'003};
  RunRing(n, [&](int rank, Communicator& comm) {
    EXPECT_EQ(comm.rank(), rank);
    EXPECT_EQ(comm.size(), n);
    EXPECT_EQ(comm.transport(), SharedMemory() ? "shared-memory" : "tcp");
    for (size_t count : counts) {
      auto expected = [&](size_t i) {
        double sum = 0;
        for (int r = 0; r < n; ++r) sum += Value(r, i);
        return sum;
      };
      auto f32 = Fill<float>(rank, count, [](double v) { return float(v); });
      auto f64 = Fill<double>(rank, count, [](double v) { return v; });
      auto i32 = Fill<int32_t>(rank, count, [](double v) { return int32_t(v); });
      auto i64 = Fill<int64_t>(rank, count, [](double v) { return int64_t(int64_t(v) * int64_t(1'000'000'000'000)); });
      auto b16 = Fill<uint16_t>(rank, count, [](double v) { return ToBFloat16(float(v)); });
      ASSERT_TRUE(comm.AllReduceSum(f32.data(), count, DataType::kFloat32).ok());
      ASSERT_TRUE(comm.AllReduceSum(f64.data(), count, DataType::kFloat64).ok());
      ASSERT_TRUE(comm.AllReduceSum(i32.data(), count, DataType::kInt32).ok());
      ASSERT_TRUE(comm.AllReduceSum(i64.data(), count, DataType::kInt64).ok());
      ASSERT_TRUE(comm.AllReduceSum(b16.data(), count, DataType::kBFloat16).ok());
      for (size_t i = 0; i < count; ++i) {
        const double sum = expected(i);
        ASSERT_EQ(f32[i], float(sum)) << "count " << count << " element " << i;
        ASSERT_EQ(f64[i], sum);
        ASSERT_EQ(i32[i], int32_t(sum));
        ASSERT_EQ(i64[i], int64_t(sum) * int64_t(1'000'000'000'000));
        ASSERT_EQ(FromBFloat16(b16[i]), float(sum));
      }
    }
  }, Configure());
}

// Inexact floats: the sum is (x0 + x1) + x2 + ... in rank order, bit for bit, on every
// rank and in every repetition, whatever the timing.
TEST_P(AllReduceTest, FloatSumsAreInRankOrderBitForBit) {
  const int n = Ranks();
  auto value = [](int rank, size_t i) { return 0.1f * float(rank + 1) + 1e-3f * float(i % 1000) + 1e7f * float(rank == 1); };
  for (size_t count : {size_t(3), size_t(5000), size_t(300'000), size_t(700'001)}) {
    std::vector<float> expected(count);
    for (size_t i = 0; i < count; ++i) {
      float sum = value(0, i);
      for (int r = 1; r < n; ++r) sum += value(r, i);
      expected[i] = sum;
    }
    RunRing(n, [&](int rank, Communicator& comm) {
      for (int repeat = 0; repeat < 3; ++repeat) {
        std::vector<float> data(count);
        for (size_t i = 0; i < count; ++i) data[i] = value(rank, i);
        ASSERT_TRUE(comm.AllReduceSum(data.data(), count, DataType::kFloat32).ok());
        if (n == 2 || SharedMemory()) {  // the TCP ring adds 3 or more ranks in another order
          ASSERT_EQ(std::memcmp(data.data(), expected.data(), count * sizeof(float)), 0) << "count " << count;
        }
      }
    }, Configure());
  }
}

// Every algorithm of a transport sums in the same order, so the same inputs give the same
// bits whichever path a message takes: shared memory direct, reduce-scatter + gather or
// single copy; TCP whole messages or the ring. Sizes on both sides of every switch point,
// each configuration forcing one path for all sizes, and each repeated.
TEST(AllReduce, TheSameBitsOnEveryPathAndEveryRun) {
  auto value = [](int rank, size_t i) {
    return 0.1f * float(rank + 1) + 1e-3f * float(i % 997) + 1e7f * float(rank == 1) - 3e6f * float(rank == 2);
  };
  const size_t counts[] = {3, 5000, 16383, 16385, 65535, 65537, 300'001, 700'001};
  struct Path {
    const char* name;
    bool shared_memory;  // the group: every rank on one host
    std::function<void(TcpRingOptions&)> force;
  };
  // Two "hosts" (host identities), the first half of the ranks on one: with 3 or more
  // ranks some ring hops are shared-memory channels, the sums are still the ring's.
  auto two_hosts = [](TcpRingOptions& o) { o.host_identity = "host-" + std::to_string(o.rank * 2 / o.world_size); };
  const Path paths[] = {
      {"shared memory, defaults", true, [](TcpRingOptions&) {}},
      {"shared memory, direct only", true,
       [](TcpRingOptions& o) {
         o.direct_max_bytes = SIZE_MAX;
         o.single_copy_min_bytes = SIZE_MAX;
       }},
      {"shared memory, reduce-scatter only", true,
       [](TcpRingOptions& o) {
         o.direct_max_bytes = 0;
         o.single_copy_min_bytes = SIZE_MAX;
       }},
      {"shared memory, single copy only", true, [](TcpRingOptions& o) { o.single_copy_min_bytes = 0; }},
      {"tcp, defaults", false, [](TcpRingOptions&) {}},
      {"tcp, whole messages only", false, [](TcpRingOptions& o) { o.tcp_direct_max_bytes = SIZE_MAX; }},
      {"tcp, ring only", false, [](TcpRingOptions& o) { o.tcp_direct_max_bytes = 0; }},
      {"two hosts, defaults", false, two_hosts},
      {"two hosts, ring only", false,
       [&](TcpRingOptions& o) {
         two_hosts(o);
         o.tcp_direct_max_bytes = 0;
       }},
  };
  for (int n : {2, 3, 4}) {
    for (const Path& path : paths) {
      RunRing(n, [&](int rank, Communicator& comm) {
        ASSERT_EQ(comm.transport() == "shared-memory", path.shared_memory) << comm.transport();
        for (size_t count : counts) {
          // Shared memory adds ranks 0, 1, ..., n - 1; TCP adds each chunk c of the ring
          // from rank c on (c, c + 1, ..., c - 1); with 2 ranks the two are the same.
          std::vector<float> expected(count);
          for (int c = 0; c < n; ++c) {
            const int start = path.shared_memory ? 0 : c;
            for (size_t i = count * size_t(c) / size_t(n); i < count * size_t(c + 1) / size_t(n); ++i) {
              float sum = value(start, i);
              for (int k = 1; k < n; ++k) sum += value((start + k) % n, i);
              expected[i] = sum;
            }
          }
          for (int repeat = 0; repeat < 2; ++repeat) {
            std::vector<float> data(count);
            for (size_t i = 0; i < count; ++i) data[i] = value(rank, i);
            ASSERT_TRUE(comm.AllReduceSum(data.data(), count, DataType::kFloat32).ok());
            ASSERT_EQ(std::memcmp(data.data(), expected.data(), count * sizeof(float)), 0)
                << path.name << ", " << n << " ranks, count " << count;
            // Its halves (a sharded optimizer's): the same sum in this rank's share, then
            // every share everywhere.
            for (size_t i = 0; i < count; ++i) data[i] = value(rank, i);
            ASSERT_TRUE(comm.ReduceScatterSum(data.data(), count, DataType::kFloat32).ok());
            const auto [first, last] = ShareOf(count, rank, n);
            ASSERT_EQ(std::memcmp(data.data() + first, expected.data() + first, (last - first) * sizeof(float)), 0)
                << path.name << ", " << n << " ranks, count " << count << ": reduce-scatter";
            ASSERT_TRUE(comm.AllGather(data.data(), count, DataType::kFloat32).ok());
            ASSERT_EQ(std::memcmp(data.data(), expected.data(), count * sizeof(float)), 0)
                << path.name << ", " << n << " ranks, count " << count << ": all-gather";
          }
        }
      }, [&](TcpRingOptions& options) {
        options.shared_memory = path.shared_memory;
        path.force(options);
        if (options.host_identity.empty()) return;
        options.shared_memory = true;  // the group is refused (two hosts), the channels not
      });
    }
  }
}

// Four ranks on two "hosts" (host identities: the ranks are threads of this process, so
// the hosts cannot differ in their /dev/shm; the identity is what the negotiation
// compares): the hops 0 -> 1 and 2 -> 3 are shared-memory channels, 1 -> 2 and 3 -> 0
// TCP, and every sum is bit for bit the all-TCP one, for whole-message and ring sizes and
// more data than a channel's ring holds.
TEST(SharedMemory, RanksOnTwoHostsUseSharedMemoryWithinEachAndTheSameBitsAsTcp) {
  auto value = [](int rank, size_t i) { return 0.3f * float(rank + 1) + 1e-4f * float(i % 991) + 1e6f * float(rank == 3); };
  const size_t counts[] = {1000, 16385, 1'500'001};
  std::map<std::string, std::vector<std::vector<float>>> results;  // by configuration, then count
  std::mutex mutex;
  for (const bool two_hosts : {false, true}) {
    RunRing(4, [&](int rank, Communicator& comm) {
      EXPECT_EQ(comm.transport(), two_hosts ? "tcp+shared-memory" : "tcp");
      for (size_t count : counts) {
        for (int repeat = 0; repeat < 3; ++repeat) {
          std::vector<float> data(count);
          for (size_t i = 0; i < count; ++i) data[i] = value(rank, i);
          ASSERT_TRUE(comm.AllReduceSum(data.data(), count, DataType::kFloat32).ok());
          std::lock_guard lock(mutex);
          results[two_hosts ? "two hosts" : "tcp"].push_back(std::move(data));
        }
      }
    }, [&](TcpRingOptions& options) {
      options.shared_memory = two_hosts;
      if (two_hosts) options.host_identity = options.rank < 2 ? "host-a" : "host-b";
    });
  }
  ASSERT_EQ(results["tcp"].size(), results["two hosts"].size());
  for (const auto& result : results["two hosts"]) {
    const auto same = std::find(results["tcp"].begin(), results["tcp"].end(), result);
    EXPECT_NE(same, results["tcp"].end()) << "a two-host result of " << result.size() << " elements is not all-TCP's";
  }
  // Every rank and repetition of one count has the same result.
  for (const auto& [name, list] : results) {
    for (const auto& result : list) {
      EXPECT_EQ(std::count(list.begin(), list.end(), result), 12) << name << ", " << result.size() << " elements";
    }
  }
}

// Ranks in one process (and so one pid namespace) reach each other's memory: the
// single-copy path is on.
TEST(SharedMemory, RanksThatSeeEachOtherUseTheSingleCopyPath) {
  auto group = SharedMemoryGroup::Create(2, SharedMemoryOptions{});
  ASSERT_TRUE(group.ok()) << group.status().ToString();
  auto peer = SharedMemoryGroup::Open((*group)->name(), (*group)->nonce(), 1, 2, SharedMemoryOptions{});
  ASSERT_TRUE(peer.ok()) << peer.status().ToString();
  EXPECT_TRUE((*group)->CanReachPeers());
  EXPECT_TRUE((*peer)->CanReachPeers());
  (*group)->Unlink();
}

// A wait spins, then yields the CPU, then sleeps on the futex: one that lasts far longer
// than the yield window ends asleep (it does not hold a CPU for the whole wait) and is
// woken by the late rank's post with the right sum.
TEST(SharedMemory, ALongWaitSleepsAfterYieldingAndTheLatePostWakesIt) {
  SharedMemoryOptions options;
  options.yield_microseconds = 2000;
  auto group = SharedMemoryGroup::Create(2, options);
  ASSERT_TRUE(group.ok()) << group.status().ToString();
  auto peer = SharedMemoryGroup::Open((*group)->name(), (*group)->nonce(), 1, 2, options);
  ASSERT_TRUE(peer.ok()) << peer.status().ToString();
  (*group)->Unlink();
  const std::atomic<bool> failed{false};
  constexpr auto kLate = std::chrono::milliseconds(300);
  std::vector<float> early(1024, 1.0f), late(1024, 2.0f);
  Status early_status;
  double early_cpu_seconds = 0, early_wall_seconds = 0;
  std::thread waiter([&] {
    timespec cpu0{}, cpu1{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
    const auto wall0 = std::chrono::steady_clock::now();
    early_status = (*group)->AllReduceSum(early.data(), early.size(), DataType::kFloat32, failed);
    early_wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu1);
    early_cpu_seconds = double(cpu1.tv_sec - cpu0.tv_sec) + double(cpu1.tv_nsec - cpu0.tv_nsec) * 1e-9;
  });
  std::this_thread::sleep_for(kLate);
  ASSERT_TRUE((*peer)->AllReduceSum(late.data(), late.size(), DataType::kFloat32, failed).ok());
  waiter.join();
  ASSERT_TRUE(early_status.ok()) << early_status.ToString();
  EXPECT_EQ(std::count(early.begin(), early.end(), 3.0f), 1024);
  EXPECT_EQ(std::count(late.begin(), late.end(), 3.0f), 1024);
  EXPECT_GE(early_wall_seconds, 0.25);
  // Yielding all along would cost about the whole 300 ms of CPU; asleep, a few ms.
  EXPECT_LT(early_cpu_seconds, 0.1) << "the wait kept a CPU for " << early_cpu_seconds << " s of "
                                    << early_wall_seconds << " s";
}

TEST_P(AllReduceTest, BroadcastAndBarrier) {
  const int n = Ranks();
  RunRing(n, [&](int rank, Communicator& comm) {
    for (int root = 0; root < n; ++root) {
      std::vector<char> data(3'000'001, char(rank));
      ASSERT_TRUE(comm.Broadcast(data.data(), data.size(), root).ok());
      EXPECT_EQ(std::count(data.begin(), data.end(), char(root)), long(data.size())) << "root " << root;
    }
    EXPECT_TRUE(comm.Barrier().ok());
  }, Configure());
}

INSTANTIATE_TEST_SUITE_P(Ranks, AllReduceTest, ::testing::Combine(::testing::Values(2, 3, 4), ::testing::Bool()),
                         [](const auto& param_info) {
                           return std::to_string(std::get<0>(param_info.param)) +
                                  (std::get<1>(param_info.param) ? "RanksSharedMemory" : "RanksTcp");
                         });

// One rank that may not use shared memory keeps the group off (every rank runs the
// ring), the hop between the two others still goes through shared memory, and the sums
// stay right.
TEST(SharedMemory, OneRankWithoutItKeepsTheRestOnTheRing) {
  RunRing(3, [](int rank, Communicator& comm) {
    EXPECT_EQ(comm.transport(), rank == 2 ? "tcp" : "tcp+shared-memory");
    std::vector<int32_t> data(100'000, rank + 1);
    ASSERT_TRUE(comm.AllReduceSum(data.data(), data.size(), DataType::kInt32).ok());
    EXPECT_EQ(std::count(data.begin(), data.end(), 6), long(data.size()));
  }, [](TcpRingOptions& options) { options.shared_memory = options.rank != 2; });
}

// A segment is used only when it is the one rank 0 made for this group: another name,
// nonce or group size is refused (as a segment of another host's /dev/shm would be).
TEST(SharedMemory, OpenRefusesSegmentsThatAreNotThisGroups) {
  auto group = SharedMemoryGroup::Create(3, SharedMemoryOptions{});
  ASSERT_TRUE(group.ok()) << group.status().ToString();
  const std::string name = (*group)->name();
  const uint64_t nonce = (*group)->nonce();
  EXPECT_TRUE(SharedMemoryGroup::Open(name, nonce, 1, 3, SharedMemoryOptions{}).ok());
  EXPECT_EQ(SharedMemoryGroup::Open(name, nonce + 1, 1, 3, {}).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(SharedMemoryGroup::Open(name, nonce, 1, 4, {}).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(SharedMemoryGroup::Open(name, nonce, 3, 3, {}).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(SharedMemoryGroup::Open("/mlscale-none-such", nonce, 1, 3, {}).status().code(), StatusCode::kUnavailable);
  for (const char* bad : {"", "/", "noslash", "/a/b", "/../x"}) {
    EXPECT_EQ(SharedMemoryGroup::Open(bad, nonce, 1, 3, {}).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  (*group)->Unlink();  // gone from /dev/shm: nobody else can open it any more
  EXPECT_EQ(SharedMemoryGroup::Open(name, nonce, 1, 3, {}).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(SharedMemoryGroup::Create(1, {}).status().code(), StatusCode::kFailedPrecondition);
}

// The segment's name is gone from /dev/shm once the ring has formed.
TEST(SharedMemory, LeavesNothingInDevShm) {
  RunRing(2, [](int, Communicator& comm) {
    EXPECT_EQ(comm.transport(), "shared-memory");
    EXPECT_TRUE(comm.Barrier().ok());
    // Both ranks are past the negotiation: rank 0 unlinked before it answered.
  });
  // Tests running in parallel may hold a segment for the moment between its creation and
  // the end of their negotiation: only one that stays is a leak.
  std::vector<std::filesystem::path> segments;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm")) {
    if (entry.path().filename().string().rfind("mlscale-", 0) == 0) segments.push_back(entry.path());
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (const auto& segment : segments) {
    while (std::filesystem::exists(segment) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_FALSE(std::filesystem::exists(segment)) << segment;
  }
}

// A rank that leaves a single-copy AllReduce early (its wait aborted: a peer failed) gets
// its buffer back for good: a peer that enters the collective later, or is still copying,
// never writes into it afterwards. Before, a late peer still found the withdrawn buffer's
// address and wrote its sum there, into memory the caller had already reused.
TEST(SharedMemory, ARankThatLeavesASingleCopyEarlyGetsItsBufferBackUntouched) {
  constexpr size_t kCount = size_t(16) << 20 >> 2;  // 16 MiB of float
  constexpr float kSentinel = -7;
  int early_exits = 0;
  for (int round = 0; round < 10; ++round) {
    // Odd rounds: rank 1 enters only once rank 0 has left (it always finds the address
    // withdrawn); even rounds: both enter at once (rank 1 may be mid-copy when rank 0 leaves).
    const bool late_peer = round % 2 == 1;
    auto group = SharedMemoryGroup::Create(2, SharedMemoryOptions{});
    ASSERT_TRUE(group.ok()) << group.status().ToString();
    auto peer = SharedMemoryGroup::Open((*group)->name(), (*group)->nonce(), 1, 2, SharedMemoryOptions{});
    ASSERT_TRUE(peer.ok()) << peer.status().ToString();
    (*group)->Unlink();
    ASSERT_TRUE((*group)->CanReachPeers() && (*peer)->CanReachPeers());
    (*group)->EnableSingleCopy();
    (*peer)->EnableSingleCopy();
    std::vector<float> zero(kCount, 1.0f), one(kCount, 2.0f);
    std::atomic<bool> zero_failed{true}, one_failed{true}, zero_left{false};
    Status zero_status = Status::Ok();
    std::thread rank_zero([&] {
      zero_status = (*group)->AllReduceSum(zero.data(), kCount, DataType::kFloat32, zero_failed);
      // The caller reuses its buffer at once.
      if (!zero_status.ok()) std::fill(zero.begin(), zero.end(), kSentinel);
      zero_left.store(true);
    });
    std::thread rank_one([&] {
      while (late_peer && !zero_left.load()) std::this_thread::sleep_for(std::chrono::microseconds(100));
      (void)(*peer)->AllReduceSum(one.data(), kCount, DataType::kFloat32, one_failed);
    });
    rank_zero.join();
    rank_one.join();
    if (zero_status.ok()) continue;  // rank 1 came in time: a whole AllReduce, nothing to check
    ++early_exits;
    EXPECT_EQ(std::count(zero.begin(), zero.end(), kSentinel), long(kCount))
        << "round " << round << ": a peer wrote into the buffer rank 0 had left with";
  }
  EXPECT_GE(early_exits, 5);  // every late-peer round leaves early
}

// A rank process killed in the middle of AllReduces (SIGKILL: no goodbye, no failure
// message) fails the other ranks' collectives with its rank named, within seconds, over
// shared memory (small and large messages) as over TCP.
class KilledPeerTest : public ::testing::TestWithParam<bool> {};

TEST_P(KilledPeerTest, FailsTheOthersNamingTheRank) {
  const bool shared = GetParam();
  auto endpoints = BindLoopback(3);
  auto run = [&](Communicator& comm, std::atomic<int>* done) {
    std::vector<float> data(300'000, 1.0f);
    for (int i = 0;; ++i) {
      const size_t count = i % 2 == 0 ? 1000 : data.size();
      Status status = comm.AllReduceSum(data.data(), count, DataType::kFloat32);
      if (!status.ok()) return status;
      if (done != nullptr) done->store(i + 1);
    }
  };
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // rank 1, until killed
    auto options = RingOptions(endpoints, 1);
    options.shared_memory = shared;
    auto comm = ConnectTcpRing(options);
    if (comm.ok()) (void)run(**comm, nullptr);
    ::_exit(3);
  }
  std::atomic<int> done{0};
  std::vector<Status> results(3);
  std::vector<std::chrono::steady_clock::time_point> ended(3);
  std::vector<std::thread> threads;
  for (int r : {0, 2}) {
    threads.emplace_back([&, r] {
      auto options = RingOptions(endpoints, r);
      options.shared_memory = shared;
      auto comm = ConnectTcpRing(options);
      if (!comm.ok()) {
        results[size_t(r)] = comm.status();
        return;
      }
      EXPECT_EQ((*comm)->transport(), shared ? "shared-memory" : "tcp");
      results[size_t(r)] = run(**comm, r == 0 ? &done : nullptr);
      ended[size_t(r)] = std::chrono::steady_clock::now();
      (void)(*comm)->Shutdown(results[size_t(r)]);
    });
  }
  const auto wait_until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (done.load() < 20 && std::chrono::steady_clock::now() < wait_until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GE(done.load(), 20) << "the ring never ran";
  ::kill(child, SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  int wstatus = 0;
  ::waitpid(child, &wstatus, 0);
  for (auto& t : threads) t.join();
  for (int r : {0, 2}) {
    EXPECT_EQ(results[size_t(r)].code(), StatusCode::kAborted) << results[size_t(r)].ToString();
    EXPECT_NE(results[size_t(r)].message().find("rank 1"), std::string::npos) << results[size_t(r)].message();
    EXPECT_LT(ended[size_t(r)] - killed, std::chrono::seconds(10));
  }
}

INSTANTIATE_TEST_SUITE_P(Transports, KilledPeerTest, ::testing::Bool(),
                         [](const auto& param_info) { return param_info.param ? "SharedMemory" : "Tcp"; });

// target = first + second with the target apart from both operands, or either of them
// itself (the single-copy AllReduce sums into its own block from a copy of rank 0's):
// the same bits in every case, for lengths around every vector width and its tails.
TEST(ReduceSum, InPlaceOnEitherOperandOrApart) {
  auto check = [](DataType type, auto make) {
    using T = decltype(make(size_t(0), 0));
    for (size_t count : {size_t(1), size_t(7), size_t(16), size_t(33), size_t(1000), size_t(4099)}) {
      std::vector<T> first(count), second(count), expected(count);
      for (size_t i = 0; i < count; ++i) {
        first[i] = make(i, 0);
        second[i] = make(i, 1);
      }
      std::vector<T> apart(count);
      ReduceSum(apart.data(), first.data(), second.data(), count, type);
      expected = first;
      ReduceSum(expected.data(), second.data(), count, type);  // target = target + source
      EXPECT_EQ(std::memcmp(apart.data(), expected.data(), count * sizeof(T)), 0) << DataTypeName(type) << " " << count;
      std::vector<T> on_first = first, on_second = second;
      ReduceSum(on_first.data(), on_first.data(), second.data(), count, type);
      ReduceSum(on_second.data(), first.data(), on_second.data(), count, type);
      EXPECT_EQ(std::memcmp(on_first.data(), expected.data(), count * sizeof(T)), 0) << DataTypeName(type) << " " << count;
      EXPECT_EQ(std::memcmp(on_second.data(), expected.data(), count * sizeof(T)), 0) << DataTypeName(type) << " " << count;
      if constexpr (!std::is_same_v<T, uint16_t>) {  // bfloat16 rounds: BFloat16RoundsToNearestEven
        for (size_t i = 0; i < count; ++i) ASSERT_EQ(expected[i], T(first[i] + second[i])) << DataTypeName(type) << " " << i;
      }
    }
  };
  check(DataType::kFloat32, [](size_t i, int k) { return 0.1f * float(i % 13) + (k ? 1e7f : 0.3f); });
  check(DataType::kFloat64, [](size_t i, int k) { return 0.1 * double(i % 13) + (k ? 1e15 : 0.3); });
  check(DataType::kInt32, [](size_t i, int k) { return int32_t(i) * (k ? -3 : 5); });
  check(DataType::kInt64, [](size_t i, int k) { return int64_t(i) << (k ? 40 : 1); });
  check(DataType::kBFloat16, [](size_t i, int k) { return ToBFloat16(float(i % 64) + (k ? 0.5f : 2.0f)); });
}

TEST(ReduceSum, BFloat16RoundsToNearestEven) {
  uint16_t a = ToBFloat16(1.0f), b = ToBFloat16(1.0f / 256);  // 1 + 2^-8 is a tie
  ReduceSum(&a, &b, 1, DataType::kBFloat16);
  EXPECT_EQ(FromBFloat16(a), 1.0f);
}

TEST(ConnectTcpRing, NamesTheRanksThatNeverArrive) {
  auto endpoints = BindLoopback(4);
  // Only rank 0 and 2 start; ranks 1 and 3 never do.
  std::vector<std::thread> threads;
  std::vector<Status> results(4);
  for (int r : {0, 2}) {
    threads.emplace_back([&, r] {
      auto comm = ConnectTcpRing(RingOptions(endpoints, r, "test", 1.5));
      results[size_t(r)] = comm.status();
    });
  }
  for (auto& t : threads) t.join();
  for (int r : {0, 2}) {
    EXPECT_EQ(results[size_t(r)].code(), StatusCode::kAborted);
    EXPECT_NE(results[size_t(r)].message().find("1, 3 did not connect"), std::string::npos)
        << results[size_t(r)].message();
  }
}

TEST(ConnectTcpRing, TurnsAwayPeersOfAnotherRun) {
  auto endpoints = BindLoopback(2);
  Status other;
  std::thread stranger([&] { other = ConnectTcpRing(RingOptions(endpoints, 1, "another-run", 1.5)).status(); });
  auto own = ConnectTcpRing(RingOptions(endpoints, 0, "this-run", 1.5));
  stranger.join();
  EXPECT_FALSE(own.ok());
  EXPECT_NE(own.status().message().find("rank 1 did not connect"), std::string::npos) << own.status().message();
  EXPECT_FALSE(other.ok());
}

TEST(ConnectTcpRing, PeersWithTheSameTokenConnect) {
  auto endpoints = BindLoopback(3);
  const std::string token(64, 'a');
  std::vector<Status> results(3);
  std::vector<std::thread> threads;
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      auto options = RingOptions(endpoints, r, "test", 20);
      options.token = token;
      auto comm = ConnectTcpRing(options);
      results[size_t(r)] = comm.status();
      if (!comm.ok()) return;
      int32_t one = 1;
      results[size_t(r)] = (*comm)->AllReduceSum(&one, 1, DataType::kInt32);
      if (results[size_t(r)].ok() && one != 3) results[size_t(r)] = Internal("sum " + std::to_string(one));
      (void)(*comm)->Shutdown(Status::Ok());
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < 3; ++r) EXPECT_TRUE(results[size_t(r)].ok()) << "rank " << r << ": " << results[size_t(r)].ToString();
}

// Ranks with different tokens do not connect: the one refused first fails at once with
// kUnauthenticated; the other, whose peer is then gone, fails by the timeout (or is
// refused too). Neither token appears in the errors.
TEST(ConnectTcpRing, RefusesAPeerWithAnotherToken) {
  auto endpoints = BindLoopback(2);
  const std::string tokens[2] = {std::string(64, 'a'), std::string(64, 'b')};
  std::vector<Status> results(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      auto options = RingOptions(endpoints, r, "test", 3);
      options.token = tokens[r];
      results[size_t(r)] = ConnectTcpRing(options).status();
    });
  }
  for (auto& t : threads) t.join();
  int refused = 0;
  for (int r = 0; r < 2; ++r) {
    EXPECT_FALSE(results[size_t(r)].ok());
    if (results[size_t(r)].code() == StatusCode::kUnauthenticated) {
      ++refused;
      EXPECT_NE(results[size_t(r)].message().find("refused this rank's run token"), std::string::npos);
    }
    for (const auto& token : tokens) EXPECT_EQ(results[size_t(r)].message().find(token), std::string::npos);
  }
  EXPECT_GE(refused, 1) << results[0].ToString() << " / " << results[1].ToString();
}

// A peer without the token (here one that claims rank 1) is turned away, and does not
// stop the job: the real rank 1 joins after it and the ring forms.
TEST(ConnectTcpRing, AStrangerWithoutTheTokenIsTurnedAwayAndTheRingStillForms) {
  auto endpoints = BindLoopback(2);
  const std::string token(64, 'c');
  Status rank0;
  std::thread first([&] {
    auto options = RingOptions(endpoints, 0, "test", 30);
    options.token = token;
    auto comm = ConnectTcpRing(options);
    rank0 = comm.status();
    if (comm.ok()) (void)(*comm)->Shutdown(Status::Ok());
  });
  // The stranger listens on a socket of its own: it knows rank 0's endpoint, not the token.
  auto stranger_endpoints = BindLoopback(1);
  auto stranger = RingOptions(endpoints, 1, "test", 30);
  stranger.listen_fd = stranger_endpoints.listeners[0].get();
  stranger.peers[1] = stranger_endpoints.peers[0];
  for (const std::string& guess : {std::string(), std::string(64, 'd')}) {
    stranger.token = guess;
    EXPECT_EQ(ConnectTcpRing(stranger).status().code(), StatusCode::kUnauthenticated) << "token '" << guess << "'";
  }
  auto options = RingOptions(endpoints, 1, "test", 30);
  options.token = token;
  auto comm = ConnectTcpRing(options);
  EXPECT_TRUE(comm.ok()) << comm.status().ToString();
  if (comm.ok()) (void)(*comm)->Shutdown(Status::Ok());
  first.join();
  EXPECT_TRUE(rank0.ok()) << rank0.ToString();
}

// Hand-written hellos that no peer sends (wrong magic, an old version, run id or token
// lengths over the limits, a connection that closes mid-hello) are turned away, and the
// real peer still connects. The layout is tcp_ring.cc's Hello: seven native uint32s.
TEST(ConnectTcpRing, MalformedHellosAreTurnedAway) {
  auto endpoints = BindLoopback(2);
  const std::string token(64, 'h');
  Status rank0;
  std::thread first([&] {
    auto options = RingOptions(endpoints, 0, "test", 30);
    options.token = token;
    auto comm = ConnectTcpRing(options);
    rank0 = comm.status();
    if (comm.ok()) (void)(*comm)->Shutdown(Status::Ok());
  });
  auto port = uint16_t(std::stoi(endpoints.peers[0].substr(endpoints.peers[0].rfind(':') + 1)));
  const std::vector<std::vector<uint32_t>> hellos = {
      {0xdeadbeef, 2, 2, 1, 0, 4, 64},          // not our magic
      {0x4d4c5352, 1, 2, 1, 0, 4, 0},           // protocol 1: no token field
      {0x4d4c5352, 2, 2, 1, 0, 1u << 30, 64},   // a run id of 1 GiB
      {0x4d4c5352, 2, 2, 1, 0, 4, 1u << 30},    // a token of 1 GiB
      {0x4d4c5352, 2, 2, 1, 0, 4, 64},          // announces 4 + 64 bytes, then closes
  };
  for (const auto& hello : hellos) {
    auto fd = ConnectTcp("127.0.0.1", port, Clock::now() + std::chrono::seconds(5));
    ASSERT_TRUE(fd.ok()) << fd.status().ToString();
    ASSERT_TRUE(SendAll(fd->get(), hello.data(), hello.size() * sizeof(uint32_t), Clock::now() + std::chrono::seconds(5)).ok());
    char answer = 0;
    EXPECT_FALSE(ReceiveAll(fd->get(), &answer, 1, Clock::now() + std::chrono::seconds(2)).ok() && answer == 'A');
  }
  auto options = RingOptions(endpoints, 1, "test", 30);
  options.token = token;
  auto comm = ConnectTcpRing(options);
  EXPECT_TRUE(comm.ok()) << comm.status().ToString();
  if (comm.ok()) (void)(*comm)->Shutdown(Status::Ok());
  first.join();
  EXPECT_TRUE(rank0.ok()) << rank0.ToString();
}

TEST(ConnectTcpRing, RejectsBadPeerTables) {
  TcpRingOptions options;
  options.world_size = 2;
  options.peers = {"127.0.0.1:1"};
  EXPECT_NE(ConnectTcpRing(options).status().message().find("MLSCALE_PEERS has 1 endpoints"), std::string::npos);
  options.peers = {"127.0.0.1:1", "nohostport"};
  EXPECT_NE(ConnectTcpRing(options).status().message().find("'nohostport' is not host:port"), std::string::npos);
  EXPECT_FALSE(ParseEndpoint("host:70000").ok());
  EXPECT_EQ(ParseEndpoint("[::1]:80")->first, "::1");
}

// A rank that fails tells the others why; they report it by rank instead of hanging.
TEST(TcpRing, PeerFailureIsReportedByRank) {
  auto endpoints = BindLoopback(3);
  std::vector<Status> results(3);
  std::vector<std::thread> threads;
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      auto comm = ConnectTcpRing(RingOptions(endpoints, r));
      ASSERT_TRUE(comm.ok()) << comm.status().ToString();
      if (r == 1) {
        (void)(*comm)->Shutdown(InvalidArgument("bad data on this rank"));
        return;
      }
      std::vector<float> data(1000, 1.0f);
      const auto start = std::chrono::steady_clock::now();
      Status status;
      for (int i = 0; i < 1000 && status.ok(); ++i) status = (*comm)->AllReduceSum(data.data(), data.size(), DataType::kFloat32);
      EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
      results[size_t(r)] = status;
      (void)(*comm)->Shutdown(status);
    });
  }
  for (auto& t : threads) t.join();
  for (int r : {0, 2}) {
    EXPECT_EQ(results[size_t(r)].code(), StatusCode::kAborted);
    EXPECT_NE(results[size_t(r)].message().find("rank 1 failed: bad data on this rank"), std::string::npos)
        << results[size_t(r)].message();
  }
}

}  // namespace
}  // namespace mlscale::worker
