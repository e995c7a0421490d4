#include "render.h"

#include <gtest/gtest.h>

#include "mlscale/kube/time_format.h"

namespace mlscale::plugin {
namespace {

using nlohmann::json;

TEST(Render, ProgressBarDurationNumber) {
  struct Bar {
    double percent;
    const char* text;
  };
  for (const Bar& b : {Bar{0, "[..........]   0%"}, Bar{35, "[####......]  35%"}, Bar{100, "[##########] 100%"},
                       Bar{250, "[##########] 100%"}, Bar{-3, "[..........]   0%"}, Bar{NAN, "[..........]   0%"}}) {
    EXPECT_EQ(ProgressBar(b.percent, 10), b.text) << b.percent;
  }
  struct Duration {
    double seconds;
    const char* text;
  };
  for (const Duration& d : {Duration{0, "0s"}, Duration{45.4, "45s"}, Duration{185, "3m05s"}, Duration{7620, "2h07m"},
                            Duration{273600, "3d04h"}, Duration{-1, "-"}, Duration{INFINITY, "-"}}) {
    EXPECT_EQ(FormatDuration(d.seconds), d.text) << d.seconds;
  }
  EXPECT_EQ(FormatNumber(json(0.012345)), "0.01235");
  EXPECT_EQ(FormatNumber(json(12345.6)), "1.235e+04");
  EXPECT_EQ(FormatNumber(json(42)), "42");
  EXPECT_EQ(FormatNumber(json("x")), "-");
  EXPECT_EQ(FormatNumber(json()), "-");
  EXPECT_EQ(Table({{"A", "LONG"}, {"wide cell", "b"}}), "A          LONG\nwide cell  b\n");
}

TEST(Render, StatusOfARunningJob) {
  auto now = *kube::ParseTime("2026-12-01T12:10:00Z");
  json job = json::parse(R"({"metadata":{"name":"digits","namespace":"ml"},
    "status":{"state":"Running","workersReady":"3/4","restarts":1,"disruptions":2,
      "workers":{"running":4,"succeeded":0,"failed":0},
      "progress":{"step":350,"totalSteps":1000,"epoch":7,"epochs":20,"loss":0.2345678,"samplesPerSecond":1234.5,
                  "etaSeconds":185,"elapsedSeconds":100},
      "conditions":[{"type":"Running","status":"True","reason":"AllWorkersRunning","lastTransitionTime":"2026-12-01T12:05:00Z",
                     "message":"4 workers run"}]}})");
  EXPECT_EQ(RenderStatus(job, now),
            "TrainingJob ml/digits\n"
            "  State:       Running\n"
            "  Progress:    [###########...................]  35%  step 350/1000  epoch 7/20\n"
            "  Loss:        0.2346\n"
            "  Samples/s:   1234\n"
            "  ETA:         3m05s\n"
            "  Elapsed:     1m40s\n"
            "  Workers:     3/4 ready (running 4, succeeded 0, failed 0)\n"
            "  Restarts:    1 (+2 disruptions)\n"
            "Conditions:\n"
            "  TYPE     STATUS  REASON             AGE    MESSAGE\n"
            "  Running  True    AllWorkersRunning  5m00s  4 workers run\n");
}

TEST(Render, StatusOfNewFinishedAndMalformedJobs) {
  auto now = Clock::now();
  std::string fresh = RenderStatus(json::parse(R"({"metadata":{"name":"new","namespace":"ml"}})"), now);
  EXPECT_NE(fresh.find("State:       Pending\n"), std::string::npos) << fresh;
  EXPECT_NE(fresh.find("Progress:    [..............................]   0%\n"), std::string::npos) << fresh;
  EXPECT_NE(fresh.find("Restarts:    0\n"), std::string::npos) << fresh;
  std::string done = RenderStatus(json::parse(R"({"metadata":{"name":"d"},"status":{"state":"Succeeded",
      "reason":"Completed","result":{"metrics":{"testAccuracy":0.97}}}})"), now);
  EXPECT_NE(done.find("State:       Succeeded (Completed)\n"), std::string::npos) << done;
  EXPECT_NE(done.find("100%"), std::string::npos) << done;
  EXPECT_NE(done.find("Result:      testAccuracy=0.97\n"), std::string::npos) << done;
  // Wrong types anywhere: shown as "-", never a crash.
  for (const char* bad : {R"([])", R"({"status":"Running"})", R"({"status":{"progress":[1],"conditions":{"a":1}}})",
                          R"({"status":{"progress":{"step":"x","totalSteps":0,"percent":"y"},"conditions":[1,{"type":3}]}})"}) {
    std::string text = RenderStatus(json::parse(bad), now);
    EXPECT_NE(text.find("Loss:        -\n"), std::string::npos) << bad << "\n" << text;
  }
}

json Trial(const std::string& name, int index, json metrics, const std::string& state = "Succeeded") {
  json trial = {{"metadata", {{"name", name},
                              {"labels", {{"mlscale.io/sweep-name", "s"}, {"mlscale.io/trial-index", std::to_string(index)}}},
                              {"annotations", {{"mlscale.io/assignment", R"({"lr": 0.1})"}}}}},
                {"status", {{"state", state}}}};
  if (!metrics.is_null()) trial["status"]["result"]["metrics"] = metrics;
  return trial;
}

TEST(Render, TrialsBestFirstByDirection) {
  json sweep = json::parse(R"({"metadata":{"name":"s","namespace":"ml"},
      "spec":{"objective":{"metric":"loss","direction":"minimize","goal":0.1}},
      "status":{"state":"Running","bestTrial":{"name":"s-2","value":0.2}}})");
  std::vector<json> trials = {Trial("s-0", 0, {{"loss", 0.5}}), Trial("s-1", 1, nullptr, "Running"),
                              Trial("s-2", 2, {{"loss", 0.2}}), Trial("s-3", 3, {{"loss", "NaN"}}, "Failed"),
                              Trial("s-4", 4, {{"loss", 0.3}})};
  std::vector<std::string> order;
  for (const TrialRow& row : TrialRows(sweep, trials)) order.push_back(row.name);
  EXPECT_EQ(order, (std::vector<std::string>{"s-2", "s-4", "s-0", "s-1", "s-3"}));
  sweep["spec"]["objective"]["direction"] = "maximize";
  order.clear();
  for (const TrialRow& row : TrialRows(sweep, trials)) order.push_back(row.name);
  EXPECT_EQ(order, (std::vector<std::string>{"s-0", "s-4", "s-2", "s-1", "s-3"}));
  sweep["spec"]["objective"]["direction"] = "minimize";
  EXPECT_EQ(RenderTrials(sweep, trials),
            "HyperparameterSweep ml/s: Running, objective minimize loss (goal 0.1)\n"
            "Best: s-2 = 0.2\n"
            "#  TRIAL  INDEX  STATE      loss  ASSIGNMENT\n"
            "1  s-2    2      Succeeded  0.2   {\"lr\":0.1}\n"
            "2  s-4    4      Succeeded  0.3   {\"lr\":0.1}\n"
            "3  s-0    0      Succeeded  0.5   {\"lr\":0.1}\n"
            "4  s-1    1      Running    -     {\"lr\":0.1}\n"
            "5  s-3    3      Failed     -     {\"lr\":0.1}\n");
  EXPECT_NE(RenderTrials(sweep, {}).find("No trials yet."), std::string::npos);
}

TEST(Render, TopWithAndWithoutInferenceServices) {
  std::vector<json> jobs = {json::parse(R"({"metadata":{"name":"digits"},"status":{"state":"Running","workersReady":"4/4",
      "restarts":0,"progress":{"percent":35,"loss":0.25,"samplesPerSecond":1000,"etaSeconds":60}}})")};
  std::vector<json> sweeps = {json::parse(R"({"metadata":{"name":"s"},"status":{"state":"Running",
      "trials":{"running":2,"succeeded":3,"failed":0,"earlyStopped":1},"bestTrial":{"name":"s-2","value":0.2}}})")};
  std::string text = RenderTop(jobs, sweeps, std::nullopt);
  EXPECT_EQ(text,
            "TRAININGJOB  STATE    PROGRESS  LOSS  SAMPLES/S  ETA    WORKERS  RESTARTS\n"
            "digits       Running  35%       0.25  1000       1m00s  4/4      0\n\n"
            "SWEEP  STATE    TRIALS (run/ok/failed/stopped)  BEST  VALUE\n"
            "s      Running  2/3/0/1                         s-2   0.2\n\n"
            "InferenceServices: not installed (no inferenceservices.mlscale.io CRD)\n");
  std::vector<json> services = {json::parse(R"({"metadata":{"name":"digits"},"status":{"url":"http://digits.ml.svc",
      "conditions":[{"type":"Ready","status":"True"}],"traffic":[{"revision":"r1","percent":90},{"revision":"r2","percent":10}]}})")};
  text = RenderTop({}, {}, services);
  EXPECT_EQ(text,
            "No TrainingJobs.\n\nNo HyperparameterSweeps.\n\n"
            "INFERENCESERVICE  READY  URL                   TRAFFIC\n"
            "digits            True   http://digits.ml.svc  r1=90% r2=10%\n");
}

}  // namespace
}  // namespace mlscale::plugin
