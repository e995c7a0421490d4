// The CRD (crds/trainingjobs.mlscale.io.yaml) against the C++ it mirrors, without a
// cluster: its spec.trainer schema has the trainer parser's fields, defaults, enums and
// ranges (probed by asking the parser), and its spec schema the API library's defaults
// and limits. The corpus test checks the same through a real API server.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "mlscale/api/manifest.h"
#include "mlscale/api/training_job.h"
#include "mlscale/worker/config.h"

namespace mlscale::api {
namespace {

using nlohmann::json;

json LoadCrd() {
  std::ifstream in(MLSCALE_CRD_FILE);
  std::stringstream text;
  text << in.rdbuf();
  auto crd = ParseYamlDocument(text.str());
  EXPECT_TRUE(crd.ok()) << crd.status().ToString();
  return crd.ok() ? *crd : json();
}

std::string TypeOf(const json& schema) {
  auto it = schema.find("type");
  return it != schema.end() && it->is_string() ? it->get_ref<const std::string&>() : std::string();
}

const json& VersionSchema(const json& crd) { return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]; }

// `trainer` with `value` placed at `path` (creating objects on the way).
json TrainerWith(const std::vector<std::string>& path, const json& value) {
  json trainer = json::object();
  json* at = &trainer;
  for (std::size_t i = 0; i + 1 < path.size(); ++i) at = &(*at)[path[i]];
  (*at)[path.back()] = value;
  // Fields that are only valid with a sibling.
  if (path.size() == 2 && path[0] == "optimizer" && path[1] == "momentum") trainer["optimizer"]["name"] = "sgd";
  return trainer;
}

std::string Dotted(const std::vector<std::string>& path) {
  std::string dotted = "trainer";
  for (const auto& p : path) dotted += "." + p;
  return dotted;
}

// The known fields the trainer lists when an object at `path` has an unknown one.
std::set<std::string> TrainerKnownFields(std::vector<std::string> path) {
  path.push_back("zzzUnknown");
  auto parsed = worker::ParseTrainerConfig(TrainerWith(path, 1));
  EXPECT_FALSE(parsed.ok()) << Dotted(path);
  const std::string message = parsed.status().message();
  std::size_t start = message.find("(known: ");
  EXPECT_NE(start, std::string::npos) << message;
  std::set<std::string> known;
  std::stringstream list(message.substr(start + 8, message.size() - start - 9));
  for (std::string name; std::getline(list, name, ',');) known.insert(name.substr(name.front() == ' ' ? 1 : 0));
  return known;
}

// Walks the trainer schema: for every object, its properties are the trainer's fields;
// for every leaf, the bounds and enum values of the schema are where the trainer draws
// its lines.
void CheckTrainerSchema(const json& schema, const std::vector<std::string>& path) {
  SCOPED_TRACE(Dotted(path));
  if (TypeOf(schema) == "object") {
    std::set<std::string> properties;
    for (const auto& [name, child] : schema["properties"].items()) properties.insert(name);
    EXPECT_EQ(properties, TrainerKnownFields(path));
    for (const auto& [name, child] : schema["properties"].items()) {
      auto child_path = path;
      child_path.push_back(name);
      CheckTrainerSchema(child, child_path);
    }
    return;
  }
  // Dataset fields depend on each other (checked by the corpus); the rest stand alone.
  if (!path.empty() && path[0] == "dataset" && !(path.size() == 3 && path[1] == "synthetic")) return;
  auto accepts = [&](const json& value) { return worker::ParseTrainerConfig(TrainerWith(path, value)).ok(); };
  if (schema.contains("enum")) {
    for (const auto& choice : schema["enum"]) EXPECT_TRUE(accepts(choice)) << choice;
    EXPECT_FALSE(accepts("not-a-choice"));
  }
  if (schema.contains("default")) {
    EXPECT_TRUE(accepts(schema["default"])) << schema["default"];
  }
  std::string type = TypeOf(schema);
  if (type == "integer") {
    if (schema.contains("minimum")) {
      auto minimum = schema["minimum"].get<std::int64_t>();
      EXPECT_TRUE(accepts(minimum));
      EXPECT_FALSE(accepts(minimum - 1));
    }
    if (schema.contains("maximum")) {
      auto maximum = schema["maximum"].get<std::int64_t>();
      EXPECT_TRUE(accepts(maximum));
      EXPECT_FALSE(accepts(maximum + 1));
    }
    EXPECT_FALSE(accepts(1.5));
  } else if (type == "number") {
    for (const char* bound : {"minimum", "maximum"}) {
      if (!schema.contains(bound)) continue;
      double at = schema[bound].get<double>();
      std::string exclusive_key = bound == std::string("minimum") ? "exclusiveMinimum" : "exclusiveMaximum";
      bool exclusive = schema.contains(exclusive_key) && schema[exclusive_key].get<bool>();
      double beyond = bound == std::string("minimum") ? at - 1e-6 : at + 1e-6;
      EXPECT_EQ(accepts(at), !exclusive) << bound << " " << at;
      EXPECT_FALSE(accepts(beyond)) << bound << " " << beyond;
    }
    EXPECT_FALSE(accepts("1"));
  } else if (type == "string") {
    EXPECT_FALSE(accepts(7));
  }
}

TEST(Crd, TrainerSchemaHasTheTrainersFieldsEnumsAndRanges) {
  json crd = LoadCrd();
  const json& trainer = VersionSchema(crd)["properties"]["spec"]["properties"]["trainer"];
  ASSERT_TRUE(trainer.is_object());
  CheckTrainerSchema(trainer, {});
}

// The defaults the schema fills in, collected as one object (nested defaults apply
// only inside objects that exist, or that default to {}).
json SchemaDefaults(const json& schema) {
  json defaults = schema.contains("default") ? schema["default"] : json::object();
  if (TypeOf(schema) != "object") return defaults;
  if (!schema.contains("properties")) return defaults;
  const json& properties = schema["properties"];
  for (const auto& [name, child] : properties.items()) {
    if (child.contains("default")) defaults[name] = SchemaDefaults(child);
  }
  return defaults;
}

TEST(Crd, TrainerDefaultsAreTheTrainers) {
  json crd = LoadCrd();
  json defaults = SchemaDefaults(VersionSchema(crd)["properties"]["spec"]["properties"]["trainer"]);
  json expected = worker::TrainerConfigToJson(worker::TrainerConfig{});
  // Not defaulted in the schema, because their presence means something to the trainer:
  // the dataset's source, and the optimizer fields valid for one optimizer only.
  expected.erase("dataset");
  for (const char* field : {"momentum", "beta1", "beta2", "epsilon"}) expected["optimizer"].erase(field);
  EXPECT_EQ(defaults, expected);
  EXPECT_EQ(kDefaultTrainerBatchSize, worker::TrainerConfig{}.batch_size);
}

TEST(Crd, SpecDefaultsAndLimitsAreTheParsers) {
  json crd = LoadCrd();
  const json& spec = VersionSchema(crd)["properties"]["spec"];
  const json& p = spec["properties"];
  std::vector<std::string> fields;
  for (const auto& [name, child] : p.items()) fields.push_back(name);
  std::vector<std::string> expected_fields(std::begin(kSpecFields), std::end(kSpecFields));
  std::sort(expected_fields.begin(), expected_fields.end());
  EXPECT_EQ(fields, expected_fields);  // nlohmann keeps keys sorted

  TrainingJobSpec defaults;
  EXPECT_EQ(p["replicas"]["default"], defaults.replicas);
  EXPECT_EQ(p["replicas"]["maximum"], kMaxReplicas);
  EXPECT_EQ(p["launcher"]["default"], LauncherKindName(defaults.launcher));
  EXPECT_EQ(p["backend"]["default"], BackendName(defaults.backend));
  EXPECT_EQ(p["image"]["maxLength"], kMaxImageBytes);
  EXPECT_NE(p["image"]["description"].get<std::string>().find(kDefaultWorkerImage), std::string::npos);
  EXPECT_EQ(p["container"]["properties"]["command"]["maxItems"], kMaxArguments);
  EXPECT_EQ(p["container"]["properties"]["args"]["items"]["maxLength"], kMaxArgumentBytes);
  EXPECT_EQ(p["resources"]["properties"]["limits"]["maxProperties"], kMaxResourceNames);
  const json& run = p["runPolicy"]["properties"];
  EXPECT_EQ(run["backoffLimit"]["default"], defaults.run_policy.backoff_limit);
  EXPECT_EQ(run["backoffLimit"]["maximum"], kMaxBackoffLimit);
  EXPECT_EQ(run["activeDeadlineSeconds"]["maximum"], kMaxSeconds);
  EXPECT_EQ(run["ttlSecondsAfterFinished"]["maximum"], kMaxSeconds);
  EXPECT_EQ(run["suspend"]["default"], defaults.run_policy.suspend);
  EXPECT_EQ(run["cleanPodPolicy"]["default"], CleanPodPolicyName(defaults.run_policy.clean_pod_policy));
  EXPECT_EQ(p["failurePolicy"]["properties"]["rules"]["maxItems"], kMaxFailureRules);
  EXPECT_EQ(p["gang"]["properties"]["timeoutSeconds"]["default"], defaults.gang.timeout_seconds);
  EXPECT_EQ(p["gang"]["properties"]["timeoutSeconds"]["maximum"], kMaxGangTimeoutSeconds);
  EXPECT_EQ(p["checkpoint"]["properties"]["path"]["default"], defaults.checkpoint.location.path);
  EXPECT_EQ(p["checkpoint"]["properties"]["intervalSteps"]["maximum"], kMaxIntervalSteps);
  EXPECT_EQ(p["output"]["properties"]["path"]["default"], defaults.output.location.path);
  const json& overlay = p["template"]["properties"];
  for (const char* list : {"tolerations", "volumes", "volumeMounts"}) EXPECT_EQ(overlay[list]["maxItems"], kMaxListItems);
  EXPECT_EQ(overlay["env"]["maxItems"], kMaxEnvItems);

  // The CEL rules name the same constants.
  std::string env_rule = overlay["env"]["items"]["x-kubernetes-validations"][0]["rule"];
  for (std::string_view name : kReservedEnvNames) {
    EXPECT_NE(env_rule.find("'" + std::string(name) + "'"), std::string::npos) << name;
  }
  bool batch_rule_found = false;
  for (const auto& rule : spec["x-kubernetes-validations"]) {
    if (rule["rule"].get<std::string>().find("batchSize") == std::string::npos) continue;
    batch_rule_found = true;
    EXPECT_NE(rule["rule"].get<std::string>().find(": " + std::to_string(kDefaultTrainerBatchSize) + ")"),
              std::string::npos);
  }
  EXPECT_TRUE(batch_rule_found);
}

TEST(Crd, NamesPrinterColumnsAndStatus) {
  json crd = LoadCrd();
  EXPECT_EQ(crd["spec"]["group"], "mlscale.io");
  EXPECT_EQ(crd["spec"]["names"]["shortNames"], json::array({"tj"}));
  EXPECT_EQ(crd["spec"]["names"]["categories"], json::array({"mlscale"}));
  const json& version = crd["spec"]["versions"][0];
  EXPECT_EQ(version["name"], "v1alpha1");
  EXPECT_TRUE(version["served"].get<bool>() && version["storage"].get<bool>());
  EXPECT_TRUE(version["subresources"].contains("status"));
  std::vector<std::string> columns;
  for (const auto& column : version["additionalPrinterColumns"]) {
    if (!column.contains("priority")) columns.push_back(column["name"]);
  }
  EXPECT_EQ(columns, (std::vector<std::string>{"Ready", "State", "Progress", "Loss", "Restarts", "Age"}));
}

}  // namespace
}  // namespace mlscale::api
