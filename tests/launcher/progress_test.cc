// Reading the trainer's progress file and showing it.
#include "mlscale/launcher/progress.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace mlscale::launcher
