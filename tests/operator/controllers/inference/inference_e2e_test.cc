// InferenceService end to end (issue 12, tests 1-6): the real control plane, mlscale-operator,
// a node agent running real mlscale-serve and mlscale-router processes, requests over real
// HTTP counted by a keep-alive load loop (e2e_fixture.h). Figures (scale-up time, wait from
// zero) are printed and recorded as test properties; they are not asserted (timings are the
// benchmarks' business: tests/bench/results/inference.md).
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "e2e_fixture.h"
#include "mlscale/api/manifest.h"
#include "mlscale/serve/inference_model.h"

namespace mlscale::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::vector<std::pair<std::string, std::int64_t>> Traffic(const json& service) {
  std::vector<std::pair<std::string, std::int64_t>> traffic;
  if (!service.is_object()) return traffic;
  for (const auto& entry : service.value("status", json::object()).value("traffic", json::array())) {
    traffic.emplace_back(entry.value("revision", ""), entry.value("percent", 0));
  }
  return traffic;
}

std::string ConditionReason(const json& service, const std::string& type) {
  if (!service.is_object()) return "";
  for (const auto& c : service.value("status", json::object()).value("conditions", json::array())) {
    if (c.value("type", "") == type) return c.value("status", "") + "/" + c.value("reason", "") + ": " + c.value("message", "");
  }
  return "";
}

// 1. A service from a finished TrainingJob (examples/inferenceservice-digits.yaml) becomes
//    Ready; predictions through the router equal local inference on the same inputs.
TEST_F(InferenceE2E, ServesAFinishedTrainingJobsModelAsLocalInferenceDoes) {
  const std::string output = dir_ + "/digits-output";
  std::filesystem::create_directories(output);
  json placement = json::object();
  node_->PlaceHere(placement);
  json job = {{"apiVersion", "mlscale.io/v1alpha1"},
              {"kind", "TrainingJob"},
              {"metadata", {{"name", "digits"}, {"namespace", namespace_}}},
              {"spec",
               {{"replicas", 1},
                {"backend", "cpu"},
                {"trainer",
                 {{"dataset", {{"name", "digits"}}},
                  {"model", {{"hiddenLayers", {32}}, {"activation", "relu"}}},
                  {"optimizer", {{"name", "adam"}, {"learningRate", 0.01}}},
                  {"batchSize", 64},
                  {"epochs", 10},
                  {"seed", 3}}},
                {"template",
                 {{"nodeSelector", placement["nodeSelector"]},
                  {"tolerations", placement["tolerations"]},
                  {"volumes", {{{"name", "out"}, {"hostPath", {{"path", output}}}}}}}},
                {"output", {{"volume", "out"}}}}}};
  // The example, as a user applies it, placed on this test's node; before its job exists.
  StatusOr<json> example = api::ParseYamlDocument(*api::ReadManifestFile(std::string(MLSCALE_EXAMPLES_DIR) +
                                                                         "/inferenceservice-digits.yaml"));
  ASSERT_TRUE(example.ok()) << example.status().ToString();
  json service = Service("digits", (*example)["spec"]);
  Apply(service);
  // No model yet: a not-ready condition says why.
  ASSERT_TRUE(WaitFor([&] { return ConditionReason(Get("isvc", "digits"), "ModelLoaded").starts_with("False/TrainingJobNotFound"); }, 30s))
      << ConditionReason(Get("isvc", "digits"), "ModelLoaded");
  Apply(job);
  CommandResult done = Kubectl({"-n", namespace_, "wait", "tj/digits", "--for=condition=Succeeded", "--timeout=240s"});
  ASSERT_EQ(done.exit_code, 0) << done.output << Kubectl({"-n", namespace_, "get", "tj", "digits", "-o", "yaml"}).output;
  json ready = WaitForCondition("digits", "Ready", 120);
  ASSERT_TRUE(ready.is_object()) << Diagnostics("digits");
  EXPECT_EQ(ready["status"]["url"], "http://digits." + namespace_ + ".svc.cluster.local");
  EXPECT_EQ(ConditionReason(ready, "ModelLoaded").substr(0, 4), "True");
  CommandResult table = Kubectl({"-n", namespace_, "get", "isvc", "digits"});
  EXPECT_NE(table.output.find("URL"), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("svc.cluster.local"), std::string::npos) << table.output;

  auto model = serve::InferenceModel::Load(output);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const std::string router = RouterAddress("digits", 60);
  ASSERT_FALSE(router.empty()) << Diagnostics("digits");
  for (int seed = 0; seed < 3; ++seed) {
    const int rows = 4;
    HttpAnswer answer = HttpRequest(router, 8080, "POST", "/v2/models/digits/infer", InferBody(rows, seed));
    ASSERT_EQ(answer.status, 200) << answer.body << Diagnostics("digits");
    json reply = json::parse(answer.body);
    std::vector<float> features;
    json body = json::parse(InferBody(rows, seed));
    for (const auto& v : body["inputs"][0]["data"]) features.push_back(v.get<float>());
    std::vector<float> probabilities;
    std::vector<std::int64_t> classes;
    (*model)->Predict(features.data(), rows, probabilities, classes);
    for (const auto& out : reply["outputs"]) {
      if (out["name"] == "class") {
        for (int r = 0; r < rows; ++r) EXPECT_EQ(out["data"][r].get<std::int64_t>(), classes[r]) << "row " << r;
      }
      if (out["name"] == "probabilities") {
        ASSERT_EQ(out["data"].size(), probabilities.size());
        for (std::size_t i = 0; i < probabilities.size(); ++i) EXPECT_NEAR(out["data"][i].get<float>(), probabilities[i], 1e-6);
      }
    }
  }
  EXPECT_TRUE(operator_->Running());
}

// 2. A load step scales up within the panic window plus pod start; when the load stops the
//    replicas come down after the stable window; no request fails throughout.
TEST_F(InferenceE2E, ALoadStepScalesUpAndDownWithoutAFailedRequest) {
  WriteModel("m1", 1);
  Apply(Service("step", {{"model", {{"volume", "models"}, {"path", "m1"}}},
                         {"autoscaling", {{"target", 2}, {"minReplicas", 1}, {"maxReplicas", 4}, {"stableWindowSeconds", 12},
                                          {"panicWindowSeconds", 2}, {"scaleDownDelaySeconds", 0}}}}));
  ASSERT_TRUE(WaitForCondition("step", "Ready", 90).is_object()) << Diagnostics("step");
  const std::string router = RouterAddress("step", 30);
  ASSERT_FALSE(router.empty());
  LoadLoop base(router, 8080, "/v2/models/step/infer", InferBody(1), 1);
  std::this_thread::sleep_for(4s);
  EXPECT_EQ(ReadyServers("step"), 1);
  const auto step = Clock::now();
  auto burst = std::make_unique<LoadLoop>(router, 8080, "/v2/models/step/infer", InferBody(1), 9);
  ASSERT_TRUE(WaitFor([&] { return ReadyServers("step") >= 3; }, 60s)) << Diagnostics("step");
  const double scale_up = SecondsSince(step);
  // Serving: the router has sent requests to more than one revision pod (its ready endpoints).
  HttpAnswer stats = HttpRequest(router, 9090, "GET", "/v1/stats");
  std::cout << "[ figure ] load step 1 -> 10 connections: 3 ready replicas after " << scale_up << " s; router stats "
            << stats.body << "\n";
  RecordProperty("scale_up_seconds", std::to_string(scale_up));
  std::this_thread::sleep_for(5s);
  burst->Stop();
  const std::int64_t burst_ok = burst->ok(), burst_failed = burst->failed();
  const std::string burst_sample = burst->FailureSample();
  burst.reset();
  base.Stop();
  const auto stopped = Clock::now();
  ASSERT_TRUE(WaitFor([&] { return Pods("step", "predictor").size() == 1 && ReadyServers("step") == 1; }, 90s))
      << Diagnostics("step");
  const double scale_down = SecondsSince(stopped);
  std::cout << "[ figure ] after the load stopped: back to 1 replica in " << scale_down << " s (stable window 12 s)\n";
  RecordProperty("scale_down_seconds", std::to_string(scale_down));
  EXPECT_GE(scale_down, 6.0);  // not before the stable window's average came down
  std::cout << "[ figure ] requests answered 200: " << base.ok() + burst_ok << ", failed: " << base.failed() + burst_failed
            << "\n";
  EXPECT_EQ(base.failed(), 0) << base.FailureSample();
  EXPECT_EQ(burst_failed, 0) << burst_sample;
  EXPECT_GT(base.ok(), 0);
  EXPECT_TRUE(operator_->Running());
}

// 3. min 0: idle scales to zero; the next request is answered once a replica is up.
TEST_F(InferenceE2E, IdleScalesToZeroAndTheNextRequestWaitsForAReplica) {
  WriteModel("m1", 1);
  Apply(Service("zero", {{"model", {{"volume", "models"}, {"path", "m1"}}},
                         {"autoscaling", {{"target", 5}, {"minReplicas", 0}, {"maxReplicas", 2}, {"stableWindowSeconds", 6},
                                          {"panicWindowSeconds", 2}, {"scaleToZeroGracePeriodSeconds", 2}}}}));
  ASSERT_TRUE(WaitForCondition("zero", "Ready", 90).is_object()) << Diagnostics("zero");
  const std::string router = RouterAddress("zero", 30);
  ASSERT_FALSE(router.empty());
  ASSERT_EQ(HttpRequest(router, 8080, "POST", "/v2/models/zero/infer", InferBody(1)).status, 200);
  ASSERT_TRUE(WaitFor([&] { return Pods("zero", "predictor").empty(); }, 90s)) << Diagnostics("zero");
  json idle = Get("isvc", "zero");
  EXPECT_EQ(idle["status"]["replicas"], 0);
  EXPECT_EQ(ConditionReason(idle, "Ready").substr(0, 4), "True") << ConditionReason(idle, "Ready");
  const auto sent = Clock::now();
  HttpAnswer answer = HttpRequest(router, 8080, "POST", "/v2/models/zero/infer", InferBody(1), 120s);
  const double waited = SecondsSince(sent);
  EXPECT_EQ(answer.status, 200) << answer.body << Diagnostics("zero");
  std::cout << "[ figure ] scale from zero: the first request waited " << waited << " s (router held it "
            << answer.headers["x-mlscale-queued-ms"] << " ms)\n";
  RecordProperty("scale_from_zero_seconds", std::to_string(waited));
  EXPECT_TRUE(operator_->Running());
}

// 4. A canary at 20 % gets 20 +- 3 % of 5,000 requests; promoting it and then a model update
//    roll out with zero failed requests.
TEST_F(InferenceE2E, CanarySplitPromotionAndModelUpdateWithoutAFailedRequest) {
  WriteModel("v1", 1);
  WriteModel("v2", 2);
  WriteModel("v3", 3);
  Apply(Service("canary", {{"model", {{"volume", "models"}, {"path", "v1"}, {"name", "m"}}}, {"replicas", 1}}));
  ASSERT_TRUE(WaitForCondition("canary", "Ready", 90).is_object()) << Diagnostics("canary");
  const std::string router = RouterAddress("canary", 30);
  ASSERT_FALSE(router.empty());
  auto patch = [&](const json& spec) {
    CommandResult r = Kubectl({"-n", namespace_, "patch", "isvc", "canary", "--type=merge", "-p", json{{"spec", spec}}.dump()});
    ASSERT_EQ(r.exit_code, 0) << r.output;
  };
  patch({{"canary", {{"model", {{"volume", "models"}, {"path", "v2"}, {"name", "m"}}}, {"trafficPercent", 20}}}});
  std::string canary_revision;
  ASSERT_TRUE(WaitFor([&] {
    auto traffic = Traffic(Get("isvc", "canary"));
    for (const auto& [revision, percent] : traffic) {
      if (percent == 20) canary_revision = revision;
    }
    return traffic.size() == 2 && !canary_revision.empty();
  }, 90s)) << Diagnostics("canary");
  std::this_thread::sleep_for(2s);  // the routers see the split
  {
    LoadLoop load(router, 8080, "/v2/models/m/infer", InferBody(1), 4);
    ASSERT_TRUE(WaitFor([&] { return load.ok() >= 5000; }, 180s)) << load.ok();
    load.Stop();
    auto by_revision = load.ByRevision();
    const double share = 100.0 * double(by_revision[canary_revision]) / double(load.ok());
    std::cout << "[ figure ] canary share " << share << " % of " << load.ok() << " requests\n";
    EXPECT_NEAR(share, 20.0, 3.0);
    EXPECT_EQ(load.failed(), 0) << load.FailureSample();
  }
  // Promote the canary (same model and template: its revision takes all the traffic), then
  // update the model, under load.
  LoadLoop load(router, 8080, "/v2/models/m/infer", InferBody(1), 4);
  patch({{"model", {{"volume", "models"}, {"path", "v2"}, {"name", "m"}}}, {"canary", nullptr}});
  ASSERT_TRUE(WaitFor([&] {
    auto traffic = Traffic(Get("isvc", "canary"));
    return traffic.size() == 1 && traffic[0].first == canary_revision && Pods("canary", "predictor").size() == 1;
  }, 90s)) << Diagnostics("canary");
  patch({{"model", {{"volume", "models"}, {"path", "v3"}, {"name", "m"}}}});
  ASSERT_TRUE(WaitFor([&] {
    json s = Get("isvc", "canary");
    auto traffic = Traffic(s);
    return traffic.size() == 1 && traffic[0].first != canary_revision && Pods("canary", "predictor").size() == 1 &&
           ConditionReason(s, "RolloutInProgress").starts_with("False/RolloutComplete");
  }, 120s)) << Diagnostics("canary");
  std::this_thread::sleep_for(2s);
  load.Stop();
  std::cout << "[ figure ] promotion + model update under load: " << load.ok() << " answered 200, " << load.failed()
            << " failed\n";
  EXPECT_EQ(load.failed(), 0) << load.FailureSample() << " statuses: " << json(load.ByStatus()).dump();
  EXPECT_GT(load.ok(), 100);
  EXPECT_TRUE(operator_->Running());
}

// 5. kubectl scale with autoscaling off is honoured and never reverted; an HPA targeting the
//    scale subresource is accepted, reads its replicas, and the subresource's selector lists
//    exactly the current revision's model-server pods. Also: the status' model version is the
//    one the pods serve (the newest of the folder's numbered versions), not "latest".
TEST_F(InferenceE2E, KubectlScaleAndAnHpaUseTheScaleSubresource) {
  WriteModel("versioned/1", 1);
  WriteModel("versioned/3", 3);
  Apply(Service("scaled", {{"model", {{"volume", "models"}, {"path", "versioned"}}}}));
  ASSERT_TRUE(WaitForCondition("scaled", "Ready", 90).is_object()) << Diagnostics("scaled");
  std::string served;
  ASSERT_TRUE(WaitFor([&] {
    json revisions = Get("isvc", "scaled")["status"].value("revisions", json::array());
    served = revisions.empty() ? "" : revisions[0].value("modelVersion", "");
    return !served.empty();
  }, 30s)) << Diagnostics("scaled");
  EXPECT_EQ(served, "3") << "the version mlscale-serve loaded";

  auto deployment_replicas = [&](const std::string& revision) {
    return Get("deployment", revision)["spec"].value("replicas", -1);
  };
  CommandResult scaled = Kubectl({"-n", namespace_, "scale", "isvc", "scaled", "--replicas=3"});
  ASSERT_EQ(scaled.exit_code, 0) << scaled.output;
  ASSERT_TRUE(WaitFor([&] { return ReadyServers("scaled") == 3; }, 90s)) << Diagnostics("scaled");
  ASSERT_TRUE(WaitFor([&] { return Get("isvc", "scaled")["status"].value("replicas", 0) == 3; }, 30s));
  json service = Get("isvc", "scaled");
  const std::string revision = service["status"].value("latestReadyRevision", "");
  ASSERT_FALSE(revision.empty()) << service.dump();
  // Never reverted: reconciles woken on purpose (an annotation, the pods' own events) leave
  // the count the user set, in the spec and in the revision's Deployment.
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Kubectl({"-n", namespace_, "annotate", "--overwrite", "isvc", "scaled", "e2e/poke=" + std::to_string(i)})
                  .exit_code,
              0);
    std::this_thread::sleep_for(1s);
    EXPECT_EQ(Get("isvc", "scaled")["spec"]["replicas"], 3);
    EXPECT_EQ(deployment_replicas(revision), 3);
  }
  CommandResult raw = Kubectl({"get", "--raw", "/apis/mlscale.io/v1alpha1/namespaces/" + namespace_ +
                                                  "/inferenceservices/scaled/scale"});
  ASSERT_EQ(raw.exit_code, 0) << raw.output;
  json scale = json::parse(raw.output);
  EXPECT_EQ(scale["spec"]["replicas"], 3);
  EXPECT_EQ(scale["status"]["replicas"], 3);
  // The selector (what an HPA or KEDA lists pods by) names exactly the revision's predictor pods.
  const std::string selector = scale["status"].value("selector", "");
  auto names = [&](const std::vector<std::string>& args) {
    CommandResult listed = Kubectl(args);
    EXPECT_EQ(listed.exit_code, 0) << listed.output;
    std::vector<std::string> lines;
    std::istringstream in(listed.output);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) lines.push_back(line);
    }
    std::sort(lines.begin(), lines.end());
    return lines;
  };
  const auto by_selector = names({"-n", namespace_, "get", "pods", "-l", selector, "-o", "name"});
  const auto of_revision = names({"-n", namespace_, "get", "pods", "-l",
                                  "mlscale.io/revision=" + revision + ",mlscale.io/component=predictor", "-o", "name"});
  EXPECT_EQ(by_selector.size(), 3u) << selector;
  EXPECT_EQ(by_selector, of_revision) << selector;

  json hpa = {{"apiVersion", "autoscaling/v2"},
              {"kind", "HorizontalPodAutoscaler"},
              {"metadata", {{"name", "scaled"}, {"namespace", namespace_}}},
              {"spec",
               {{"scaleTargetRef", {{"apiVersion", "mlscale.io/v1alpha1"}, {"kind", "InferenceService"}, {"name", "scaled"}}},
                {"minReplicas", 1},
                {"maxReplicas", 5},
                {"metrics", {{{"type", "Resource"},
                              {"resource", {{"name", "cpu"}, {"target", {{"type", "Utilization"}, {"averageUtilization", 80}}}}}}}}}}};
  Apply(hpa);
  // The HPA controller read the scale subresource: it may scale it (AbleToScale) and it
  // reports the subresource's total replicas as its current replicas. (The test cluster has
  // no metrics API, so the HPA computes no recommendation and changes nothing.)
  bool read = WaitFor([&] {
    json status = Get("hpa", "scaled").value("status", json::object());
    bool able = false;
    for (const auto& c : status.value("conditions", json::array())) {
      if (c.value("type", "") == "AbleToScale" && c.value("status", "") == "True") able = true;
    }
    return able && status.value("currentReplicas", -1) == 3;
  }, 60s);
  EXPECT_TRUE(read) << Kubectl({"-n", namespace_, "describe", "hpa", "scaled"}).output;
  EXPECT_EQ(Get("isvc", "scaled")["spec"]["replicas"], 3);
  EXPECT_EQ(deployment_replicas(revision), 3);
  EXPECT_TRUE(operator_->Running());
}

// 6. A bad model path gives a not-ready condition with the reason; malformed requests through
//    the router get 4xx with an error body; the operator never restarts.
TEST_F(InferenceE2E, ABadModelPathAndMalformedRequestsAreRefusedWithReasons) {
  Apply(Service("broken", {{"model", {{"volume", "models"}, {"path", "missing"}}}}));
  std::string reason;
  ASSERT_TRUE(WaitFor([&] {
    reason = ConditionReason(Get("isvc", "broken"), "ModelLoaded");
    return reason.starts_with("False/ServerFailed");
  }, 90s)) << reason << Diagnostics("broken");
  EXPECT_NE(reason.find("is not a folder"), std::string::npos) << reason;
  EXPECT_TRUE(ConditionReason(Get("isvc", "broken"), "Ready").starts_with("False")) << ConditionReason(Get("isvc", "broken"), "Ready");

  WriteModel("m1", 1);
  Apply(Service("good", {{"model", {{"volume", "models"}, {"path", "m1"}}}}));
  ASSERT_TRUE(WaitForCondition("good", "Ready", 90).is_object()) << Diagnostics("good");
  const std::string router = RouterAddress("good", 30);
  ASSERT_FALSE(router.empty());
  struct Case {
    std::string path, body;
    int status;
  };
  for (const Case& c : std::vector<Case>{{"/v2/models/good/infer", "{not json", 400},
                                         {"/v2/models/good/infer", R"({"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]})", 400},
                                         {"/v2/models/other/infer", InferBody(1), 404},
                                         {"/v1/models/good:predict", R"({"instances":"nope"})", 400}}) {
    HttpAnswer answer = HttpRequest(router, 8080, "POST", c.path, c.body, 10s);
    EXPECT_EQ(answer.status, c.status) << c.path << " " << c.body << " -> " << answer.body;
    json error = json::parse(answer.body, nullptr, false);
    EXPECT_TRUE(error.is_object() && error.contains("error")) << answer.body;
  }
  EXPECT_EQ(HttpRequest(router, 8080, "POST", "/v2/models/good/infer", InferBody(2)).status, 200) << Diagnostics("good");
  EXPECT_TRUE(operator_->Running());
  EXPECT_EQ(operator_->LogTail(1 << 20).find("restarted"), std::string::npos);
}

}  // namespace
}  // namespace mlscale::testing
