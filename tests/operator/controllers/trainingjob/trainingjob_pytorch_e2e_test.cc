// A user image end to end: examples/trainingjob-pytorch.yaml (a real PyTorch DDP script,
// gloo on CPU, 2 workers) through the operator on a test node agent. The script reads the
// torchrun environment the controller sets, reports progress and its final metric through
// the launcher's file protocol (env mode), and the job succeeds with the metric in status.
// PyTorch comes from the venv of tests/launcher/setup-torch-venv.sh (outside the source
// tree; a cold install is large: launcher/README.md); without it the test is SKIPPED.
#include <cstdlib>
#include <filesystem>
#include <set>

#include "e2e_fixture.h"

namespace mlscale::testing {
namespace {

namespace fs = std::filesystem;

fs::path TorchVenv() {
  if (const char* venv = std::getenv("MLSCALE_TORCH_VENV"); venv != nullptr && *venv != '\0') return venv;
  if (const char* cache = std::getenv("MLSCALE_CACHE"); cache != nullptr && *cache != '\0') return fs::path(cache) / "venv-torch";
  const char* home = std::getenv("HOME");
  return fs::path(home != nullptr ? home : "/root") / ".cache" / "mlscale" / "venv-torch";
}

TEST_F(TrainingJobE2E, PyTorchDdpUserImageSucceedsAndReportsItsMetric) {
  const fs::path venv = TorchVenv();
  if (!fs::exists(venv / ".complete")) {
    std::fprintf(stderr, "\n*** SKIPPED: no PyTorch venv at %s (tests/launcher/setup-torch-venv.sh creates it) ***\n\n",
                 venv.c_str());
    GTEST_SKIP() << "no PyTorch venv at " << venv;
  }
  StartNode();
  StartOperator();
  EventLog jobs(*client_, {"mlscale.io", "v1alpha1", "trainingjobs", true, "TrainingJob"}, namespace_);
  json example = ReadExample("trainingjob-pytorch.yaml");
  ASSERT_TRUE(example.is_object());
  json job = Job("ddp", example["spec"]);
  // The example's image has mlscale-launch, python3 and the script at fixed paths; on this
  // machine they are the build's launcher, the venv's python and the source tree's script.
  json command = job["spec"]["container"]["command"];
  ASSERT_EQ(command[0], "mlscale-launch");
  command[0] = LauncherBinary();
  command[4] = (venv / "bin" / "python").string();
  command[5] = std::string(MLSCALE_EXAMPLES_DIR) + "/pytorch/ddp_train.py";
  job["spec"]["container"]["command"] = command;
  job["spec"]["container"]["args"] = {"--epochs", "30"};
  Apply(job);
  job = WaitForCondition("ddp", "Succeeded", 480);
  const json result = job["status"].value("result", json::object());
  ASSERT_TRUE(result.contains("metrics")) << job["status"].dump();
  EXPECT_GE(result["metrics"].value("accuracy", 0.0), 0.9) << result.dump();
  std::set<std::int64_t> steps;
  for (const json& state : jobs.States()) {
    if (!state.contains("status") || !state["status"].is_object()) continue;
    const json progress = state["status"].value("progress", json());
    if (progress.is_object() && progress.contains("step")) steps.insert(progress["step"].get<std::int64_t>());
  }
  EXPECT_GE(steps.size(), 2u) << "progress readings seen: " << steps.size();
}

}  // namespace
}  // namespace mlscale::testing
