// MPI mode as in a cluster, with two "pods" on this machine: a worker pod (mlscale-launch
// --mode mpi-worker: sshd on 127.0.0.3 with the job's key) and the launcher pod
// (mlscale-launch --mode mpi), whose mpirun runs rank 0 locally and reaches rank 1 over
// ssh, as launcher/README.md tells the controller to set it up. The key is made the way
// the controller makes it (an ECDSA P-256 key in PEM, here by `openssl genpkey`).
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <fstream>

#include "support.h"

namespace mlscale::launcher {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace testing;
using namespace std::chrono_literals;

class MpiSshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists("/usr/sbin/sshd")) << "sshd is missing: scripts/deps.sh installs openssh-server";
    ASSERT_TRUE(MakeKey(secret_)) << "openssl genpkey failed";
    std::ofstream(scratch_.path() / "trainer.json") << R"({"epochs": 5})";
    // Rank 0 on the launcher's own host, rank 1 on the worker "pod".
    std::ofstream(hostfile_) << "localhost slots=1\n" << kWorker << " slots=1\n";
  }

  // The job's SSH Secret as mounted: a folder with ssh-privatekey.
  bool MakeKey(const fs::path& folder) {
    fs::create_directories(folder);
    std::string command = "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out '" +
                          (folder / "ssh-privatekey").string() + "' 2>/dev/null";
    return std::system(command.c_str()) == 0;
  }

  Started StartWorker() {
    return StartProgram({kLaunchProgram, "--mode", "mpi-worker", "--ssh-port", std::to_string(ssh_port_),
                         "--ssh-dir", secret_.string()},
                        {{"MLSCALE_ADVERTISE_ADDRESS", kWorker},
                         {"MLSCALE_STATE_DIR", (scratch_.path() / "worker-state").string()}},
                        scratch_.path() / "worker.log");
  }

  Started StartLauncher(const fs::path& secret, const std::string& log) {
    return StartProgram(
        {kLaunchProgram, "--mode", "mpi", "--hostfile", hostfile_.string(), "--np", "2", "--ssh-port",
         std::to_string(ssh_port_), "--ssh-dir", secret.string(), "--timeout", "60", "--", MLSCALE_TRAIN_PROGRAM,
         "--config", (scratch_.path() / "trainer.json").string(), "--output-dir", (scratch_.path() / "model").string(),
         "--backend", "cpu"},
        {{"MLSCALE_RUN_TOKEN", std::string(64, '3')},
         {"MLSCALE_PROGRESS_PORT", "0"},
         {"MLSCALE_STATE_DIR", (scratch_.path() / (log + "-state")).string()},
         {"MLSCALE_TERMINATION_LOG", (scratch_.path() / (log + "-termination-log")).string()},
         // Both "pods" share this machine's loopback interface, which Open MPI leaves out
         // by default (in a pod, eth0 is used and none of this is needed).
         {"OMPI_MCA_oob_tcp_if_include", "lo"},
         {"OMPI_MCA_btl_tcp_if_include", "lo"},
         {"OMPI_MCA_btl", "self,tcp"}},
        scratch_.path() / (log + ".log"));
  }

  static constexpr const char* kWorker = "127.0.0.3";
  ScratchDirectory scratch_;
  fs::path secret_ = scratch_.path() / "secret";
  fs::path hostfile_ = scratch_.path() / "hostfile";
  std::uint16_t ssh_port_ = FreePort();
};

TEST_F(MpiSshTest, MpirunReachesTheWorkerPodOverSshAndTheJobTrains) {
  Started worker = StartWorker();
  Started launcher = StartLauncher(secret_, "launcher");
  ASSERT_EQ(WaitFor(launcher.process, 300s), 0) << ReadText(launcher.output) << "\nworker:\n" << ReadText(worker.output);
  json result = ReadJson(scratch_.path() / "launcher-termination-log");
  ASSERT_TRUE(result.is_object()) << ReadText(launcher.output);
  EXPECT_EQ(result["communicator"], "mpi");
  EXPECT_EQ(result["worldSize"], 2);
  EXPECT_GE(result["metrics"]["testAccuracy"].get<double>(), 0.9);
  // Rank 1 came through the worker's sshd, authenticated by the job's key.
  std::string worker_log = ReadText(worker.output);
  EXPECT_NE(worker_log.find("Accepted publickey for"), std::string::npos) << worker_log;
  EXPECT_NE(worker_log.find("sshd for the MPI launcher on 127.0.0.3:" + std::to_string(ssh_port_)), std::string::npos)
      << worker_log;
  // The key copies are private to their owner.
  auto permissions = fs::status(scratch_.path() / "worker-state" / "ssh" / "id").permissions();
  EXPECT_EQ(permissions & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);

  // A launcher with another job's key is turned away: it does not know the worker's host
  // key, and the worker does not know its key.
  fs::path stranger = scratch_.path() / "other-secret";
  ASSERT_TRUE(MakeKey(stranger));
  Started refused = StartLauncher(stranger, "stranger");
  EXPECT_NE(WaitFor(refused.process, 120s), 0) << ReadText(refused.output);
  EXPECT_NE(ReadText(refused.output).find("Host key verification failed"), std::string::npos)
      << ReadText(refused.output);

  worker.process.Signal(SIGTERM);
  EXPECT_NE(WaitFor(worker.process, 10s), -1) << "sshd must stop on SIGTERM";
}

TEST_F(MpiSshTest, AWorkerWithoutTheKeyExplainsWhatIsMissing) {
  fs::remove(secret_ / "ssh-privatekey");
  Started worker = StartWorker();
  EXPECT_EQ(WaitFor(worker.process, 10s), 1);
  EXPECT_NE(ReadText(worker.output).find("ssh-privatekey is missing"), std::string::npos) << ReadText(worker.output);
  std::ofstream(secret_ / "ssh-privatekey") << "not a key\n";
  Started bad = StartWorker();
  EXPECT_EQ(WaitFor(bad.process, 10s), 1);
  EXPECT_NE(ReadText(bad.output).find("is not a private key OpenSSH can read"), std::string::npos)
      << ReadText(bad.output);
}

}  // namespace
}  // namespace mlscale::launcher
