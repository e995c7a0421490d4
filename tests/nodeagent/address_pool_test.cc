#include "address_pool.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

namespace mlscale::nodeagent {
namespace {

class AddressPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("nodeagent-pool-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

uint32_t Address(const char* text) { return *ParseIPv4(text); }

TEST_F(AddressPoolTest, LeasesAreDistinctAcrossPoolsSharingTheFolder) {
  // Two agents on one machine: same folder, same range.
  AddressPool a(dir_, Address("127.99.0.1"), Address("127.99.0.6"));
  AddressPool b(dir_, Address("127.99.0.1"), Address("127.99.0.6"));
  std::set<std::string> seen;
  for (int i = 0; i < 3; ++i) {
    StatusOr<std::string> from_a = a.Acquire("pod-a-" + std::to_string(i));
    StatusOr<std::string> from_b = b.Acquire("pod-b-" + std::to_string(i));
    ASSERT_TRUE(from_a.ok() && from_b.ok());
    EXPECT_TRUE(seen.insert(*from_a).second);
    EXPECT_TRUE(seen.insert(*from_b).second);
  }
  StatusOr<std::string> full = a.Acquire("one-too-many");
  EXPECT_EQ(full.status().code(), StatusCode::kResourceExhausted);
  a.Release(*seen.begin());
  EXPECT_EQ(*a.Acquire("again"), *seen.begin());
}

TEST_F(AddressPoolTest, SkipsNetworkAndBroadcastLookingAddresses) {
  AddressPool pool(dir_, Address("127.99.0.255"), Address("127.99.1.1"));
  EXPECT_EQ(*pool.Acquire("x"), "127.99.1.1");
  EXPECT_FALSE(pool.Acquire("y").ok());
}

TEST_F(AddressPoolTest, TakesOverLeasesOfDeadProcesses) {
  AddressPool pool(dir_, Address("127.99.0.1"), Address("127.99.0.1"));
  pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  std::ofstream(dir_ / "127.99.0.1") << child << "\n";  // a lease of a process that exited
  EXPECT_EQ(*pool.Acquire("x"), "127.99.0.1");
  std::ofstream(dir_ / "127.99.0.1") << getppid() << "\n";  // a live owner keeps it
  EXPECT_FALSE(pool.Acquire("y").ok());
}

TEST_F(AddressPoolTest, NeverLeasesAnAddressAProcessStillListensOn) {
  // A pod process outliving its agent (its lease reclaimed) still listens on its address.
  const char* busy = "127.99.0.9";
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = 0;
  ASSERT_EQ(inet_pton(AF_INET, busy, &address.sin_addr), 1);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  AddressPool pool(dir_, Address(busy), Address(busy));
  EXPECT_EQ(pool.Acquire("x").status().code(), StatusCode::kResourceExhausted);
  close(listener);
  EXPECT_EQ(*pool.Acquire("x"), busy);
}

TEST(IPv4, ParsesAndFormats) {
  EXPECT_EQ(FormatIPv4(Address("127.64.3.4")), "127.64.3.4");
  for (const char* bad : {"", "127.0.0", "127.0.0.256", "a.b.c.d", "127.0.0.1x"}) {
    EXPECT_FALSE(ParseIPv4(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace mlscale::nodeagent
