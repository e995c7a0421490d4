// Reading the trainer's progress file and showing it.
#include "mlscale/launcher/progress.h"
#include "mlscale/launcher/progress_server.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <limits>

namespace mlscale::launcher {
namespace {

TEST(ParseProgress, ReadsTheTrainersFields) {
  auto progress = ParseProgress({{"step", 450}, {"totalSteps", 1000}, {"epoch", 3}, {"epochs", 20},
                                 {"loss", 0.2345}, {"samplesPerSecond", 1234.4}, {"etaSeconds", 32.2},
                                 {"elapsedSeconds", 61}, {"phase", "training"}});
  ASSERT_TRUE(progress.ok()) << progress.status().ToString();
  EXPECT_EQ(progress->step, 450);
  EXPECT_EQ(progress->total_steps, 1000);
  EXPECT_DOUBLE_EQ(progress->loss, 0.2345);
  EXPECT_EQ(FormatProgressLine(*progress),
            "progress  45% epoch 3/20 step 450/1000 loss 0.2345 1234 samples/s ETA 0:32 elapsed 1:01");
}

TEST(ParseProgress, RejectsWrongTypesAndAcceptsMissingFields) {
  EXPECT_FALSE(ParseProgress(nlohmann::json::array()).ok());
  EXPECT_FALSE(ParseProgress({{"loss", "low"}}).ok());
  auto empty = ParseProgress(nlohmann::json::object());
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->total_steps, 0);
}

TEST(FormatProgressLine, ShowsNoLossOrSpeedBeforeTheFirstStep) {
  Progress loading{0, 460, 1, 20, 0, 0, 0, 0.2, "loading"};
  EXPECT_EQ(FormatProgressLine(loading), "progress   0% epoch 1/20 step 0/460 (loading) elapsed 0:00");
}

TEST(FormatProgressBar, FillsTheBarAndFitsTheWidth) {
  Progress p{50, 100, 1, 2, 0.5, 100, 75, 10, "training"};
  std::string bar = FormatProgressBar(p, 120);
  EXPECT_TRUE(bar.starts_with("[###############...............]  50% epoch 1/2 step 50/100")) << bar;
  EXPECT_LE(FormatProgressBar(p, 40).size(), 40u);
  p.step = 500;  // past the end (a resumed run may count on): the bar stays full
  EXPECT_TRUE(FormatProgressBar(p, 120).starts_with("[##############################] 100%"));
}

TEST(FormatDuration, WritesMinutesAndHours) {
  EXPECT_EQ(FormatDuration(0), "0:00");
  EXPECT_EQ(FormatDuration(65), "1:05");
  EXPECT_EQ(FormatDuration(3723), "1:02:03");
  EXPECT_EQ(FormatDuration(-1), "--:--");
  EXPECT_EQ(FormatDuration(std::numeric_limits<double>::infinity()), "--:--");
}

TEST(SanitizeProgress, KeepsTheContractsFieldsOfTheRightType) {
  using nlohmann::json;
  EXPECT_TRUE(SanitizeProgress(json::array()).is_null());
  EXPECT_TRUE(SanitizeProgress("text").is_null());
  EXPECT_EQ(SanitizeProgress(json::object()), json::object());
  json written = json::parse(R"({"step": 3, "totalSteps": 9, "loss": 0.5, "phase": "training",
                                 "extra": 1, "epoch": "2", "epochs": null, "etaSeconds": true})");
  EXPECT_EQ(SanitizeProgress(written), json::parse(R"({"step": 3, "totalSteps": 9, "loss": 0.5, "phase": "training"})"));
  json long_phase{{"phase", std::string(65, 'p')}, {"loss", std::numeric_limits<double>::infinity()}};
  EXPECT_EQ(SanitizeProgress(long_phase), json::object());
}

TEST(SanitizeProgress, KeepsTheLatestEvaluationWithItsFiniteMetrics) {
  using nlohmann::json;
  json written = json::parse(R"({"step": 50, "evaluation": {"step": 46, "extra": 1,
      "metrics": {"testAccuracy": 0.93, "testLoss": 0.2, "label": "x", "none": null}}})");
  written["evaluation"]["metrics"]["nan"] = std::numeric_limits<double>::quiet_NaN();
  written["evaluation"]["metrics"][std::string(254, 'm')] = 1;
  EXPECT_EQ(SanitizeProgress(written),
            json::parse(R"({"step": 50, "evaluation": {"step": 46, "metrics": {"testAccuracy": 0.93, "testLoss": 0.2}}})"));
  json many = {{"evaluation", {{"step", 1}, {"metrics", json::object()}}}};
  for (int i = 0; i < 40; ++i) many["evaluation"]["metrics"]["m" + std::to_string(i)] = i;
  EXPECT_EQ(SanitizeProgress(many)["evaluation"]["metrics"].size(), 32u);
  for (const char* bad : {R"({"evaluation": 3})", R"({"evaluation": {"step": 1.5, "metrics": {}}})",
                          R"({"evaluation": {"step": 1}})", R"({"evaluation": {"step": 1, "metrics": [1]}})"}) {
    EXPECT_EQ(SanitizeProgress(json::parse(bad)), json::object()) << bad;
  }
}

TEST(ProgressDocument, HasProgressResultAndTime) {
  using nlohmann::json;
  auto when = std::chrono::system_clock::from_time_t(1796135495);  // 2026-12-01T14:31:35Z
  EXPECT_EQ(FormatRfc3339(when), "2026-12-01T14:31:35Z");
  EXPECT_EQ(ProgressDocument(std::nullopt, std::nullopt, when),
            json::parse(R"({"progress": null, "result": null, "time": "2026-12-01T14:31:35Z"})"));
  json result{{"metrics", {{"testAccuracy", 0.98}}}};
  auto document = ProgressDocument(json{{"step", 1}, {"junk", 2}}, result, when);
  EXPECT_EQ(document["progress"], json::parse(R"({"step": 1})"));
  EXPECT_EQ(document["result"], result);
}

TEST(ReadJsonObjectFile, ReadsOnlySmallJsonObjects) {
  auto folder = std::filesystem::temp_directory_path() / ("progress-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(folder);
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(folder / name) << text;
    return folder / name;
  };
  EXPECT_EQ(ReadJsonObjectFile(write("ok.json", R"({"a": 1})"), 100), nlohmann::json::parse(R"({"a": 1})"));
  EXPECT_FALSE(ReadJsonObjectFile(folder / "missing.json", 100));
  EXPECT_FALSE(ReadJsonObjectFile(write("array.json", "[1]"), 100));
  EXPECT_FALSE(ReadJsonObjectFile(write("half.json", R"({"a": )"), 100));
  EXPECT_FALSE(ReadJsonObjectFile(write("big.json", "{\"a\": \"" + std::string(200, 'x') + "\"}"), 100));
  EXPECT_TRUE(ReadJsonObjectFile(write("exact.json", "{\"a\":\"" + std::string(92, 'x') + "\"}"), 100));
  EXPECT_FALSE(ReadJsonObjectFile(write("binary.json", std::string("{\"a\": \"\xff\xfe\"}")), 100));
  std::filesystem::remove_all(folder);
}

}  // namespace
}  // namespace mlscale::launcher
