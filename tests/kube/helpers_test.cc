// The controller helpers without an API server: label selectors, the cache reader,
// child names, typed conditions, merge patches, expectations, predicates and owner
// references.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "mlscale/kube/conditions.h"
#include "mlscale/kube/events.h"
#include "mlscale/kube/expectations.h"
#include "mlscale/kube/names.h"
#include "mlscale/kube/objects.h"
#include "mlscale/kube/patch.h"
#include "mlscale/kube/reader.h"
#include "mlscale/kube/selector.h"
#include "mlscale/kube/workqueue.h"

namespace mlscale::kube {
namespace {

using namespace std::chrono_literals;

Object Labels(std::initializer_list<std::pair<const char*, const char*>> labels) {
  Object out = Object::object();
  for (const auto& [key, value] : labels) out[key] = value;
  return out;
}

TEST(LabelSelectorTest, ParsesAndMatchesAsTheApiServerDoes) {
  struct Case {
    const char* selector;
    Object labels;
    bool matches;
  };
  const Object web = Labels({{"app", "web"}, {"tier", "front"}, {"replicas", "3"}});
  const Case cases[] = {
      {"", web, true},
      {"app=web", web, true},
      {"app==web", web, true},
      {"app=db", web, false},
      {"app!=db", web, true},
      {"missing!=x", web, true},  // != holds when the key is absent
      {"app in (db,web)", web, true},
      {"app in (db)", web, false},
      {"app notin (db)", web, true},
      {"missing notin (db)", web, true},
      {"app", web, true},
      {"missing", web, false},
      {"!missing", web, true},
      {"!app", web, false},
      {"replicas>2", web, true},
      {"replicas<3", web, false},
      {"app=web, tier in (front,back) ,!canary", web, true},
      {"app=web,tier=back", web, false},
      {"example.com/role=x", Labels({{"example.com/role", "x"}}), true},
      {"app=", Labels({{"app", ""}}), true},
      {"app=web", Object(), false},
  };
  for (const Case& test : cases) {
    StatusOr<LabelSelector> selector = LabelSelector::Parse(test.selector);
    ASSERT_TRUE(selector.ok()) << test.selector << ": " << selector.status().ToString();
    EXPECT_EQ(selector->Matches(test.labels), test.matches) << test.selector << " vs " << test.labels.dump();
    // The printed form means the same.
    StatusOr<LabelSelector> again = LabelSelector::Parse(selector->ToString());
    ASSERT_TRUE(again.ok()) << selector->ToString();
    EXPECT_EQ(again->Matches(test.labels), test.matches) << selector->ToString();
  }
}

TEST(LabelSelectorTest, MalformedSelectorsAreClearErrors) {
  struct Case {
    const char* selector;
    const char* error;
  };
  const Case cases[] = {
      {"app in (a", "expected ',' or ')'"},
      {"app in ()", "needs at least one value"},
      {"app in a", "expected '('"},
      {"app web", "expected an operator"},
      {"=web", "expected a key"},
      {"app=web,", "expected a key"},
      {"app=we b", "expected ','"},
      {"-app=x", "invalid label key"},
      {"app=-x", "invalid label value"},
      {"Bad_Prefix/app=x", "invalid label key"},
      {"replicas>three", "expected an integer"},
      {"!", "expected a key after '!'"},
  };
  for (const Case& test : cases) {
    StatusOr<LabelSelector> selector = LabelSelector::Parse(test.selector);
    ASSERT_FALSE(selector.ok()) << test.selector;
    EXPECT_EQ(selector.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(selector.status().message().find(test.error), std::string::npos)
        << test.selector << ": " << selector.status().message();
  }
}

TEST(LabelSelectorTest, FromLabelSelectorObjectsWithErrorsNamingTheField) {
  StatusOr<LabelSelector> selector = LabelSelector::FromObject(
      Object::parse(R"({"matchLabels": {"app": "web"},
                        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]},
                                             {"key": "canary", "operator": "DoesNotExist"}]})"),
      "spec.selector");
  ASSERT_TRUE(selector.ok()) << selector.status().ToString();
  EXPECT_TRUE(selector->Matches(Labels({{"app", "web"}, {"tier", "front"}})));
  EXPECT_FALSE(selector->Matches(Labels({{"app", "web"}, {"tier", "front"}, {"canary", "1"}})));
  EXPECT_TRUE(LabelSelector::FromObject(Object::object())->Matches(Labels({{"any", "thing"}})));

  struct Case {
    const char* json;
    const char* error;
  };
  const Case cases[] = {
      {R"({"matchLabels": {"app": 1}})", "spec.selector.matchLabels.app: must be a string"},
      {R"({"matchLabels": []})", "spec.selector.matchLabels: must be a map"},
      {R"({"matchExpressions": [{"key": "a", "operator": "Near", "values": ["x"]}]})",
       "spec.selector.matchExpressions[0].operator: must be In, NotIn, Exists or DoesNotExist"},
      {R"({"matchExpressions": [{"key": "a", "operator": "In"}]})", "spec.selector.matchExpressions[0].values: In needs"},
      {R"({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})", "must be empty for Exists"},
      {R"({"matchExpressions": [{"operator": "Exists"}]})", "spec.selector.matchExpressions[0].key: must be a string"},
      {R"("app=web")", "spec.selector: must be an object"},
  };
  for (const Case& test : cases) {
    StatusOr<LabelSelector> bad = LabelSelector::FromObject(Object::parse(test.json), "spec.selector");
    ASSERT_FALSE(bad.ok()) << test.json;
    EXPECT_NE(bad.status().message().find(test.error), std::string::npos) << bad.status().message();
  }
}

ObjectPtr Pod(const std::string& ns, const std::string& name, Object labels, const std::string& owner_uid = "",
              bool controller = true) {
  Object pod = {{"metadata", {{"namespace", ns}, {"name", name}, {"labels", std::move(labels)}}}};
  if (!owner_uid.empty()) {
    pod["metadata"]["ownerReferences"] = {{{"uid", owner_uid}, {"controller", controller}, {"kind", "TrainingJob"}}};
  }
  return std::make_shared<const Object>(std::move(pod));
}

std::vector<std::string> Keys(const std::vector<ObjectPtr>& objects) {
  std::vector<std::string> keys;
  for (const ObjectPtr& object : objects) keys.push_back(KeyOf(*object));
  return keys;
}

TEST(CacheReaderTest, ListsByNamespaceOwnerAndSelector) {
  ObjectCache cache;
  cache.Upsert(Pod("a", "w0", Labels({{"role", "worker"}}), "job-1"));
  cache.Upsert(Pod("a", "w1", Labels({{"role", "worker"}}), "job-1"));
  cache.Upsert(Pod("a", "l0", Labels({{"role", "launcher"}}), "job-1"));
  cache.Upsert(Pod("a", "adopted", Labels({{"role", "worker"}}), "job-1", /*controller=*/false));
  cache.Upsert(Pod("b", "w0", Labels({{"role", "worker"}}), "job-2"));
  CacheReader reader(cache);
  EXPECT_EQ(NameOf(*reader.Get("b", "w0")), "w0");
  EXPECT_EQ(reader.Get("b", "missing"), nullptr);
  EXPECT_EQ(Keys(reader.List()), (std::vector<std::string>{"a/adopted", "a/l0", "a/w0", "a/w1", "b/w0"}));
  EXPECT_EQ(Keys(reader.List({.namespace_name = "b"})), (std::vector<std::string>{"b/w0"}));
  CacheQuery workers{.namespace_name = "a", .selector = *LabelSelector::Parse("role=worker")};
  EXPECT_EQ(Keys(reader.List(workers)), (std::vector<std::string>{"a/adopted", "a/w0", "a/w1"}));
  CacheQuery owned{.owner_uid = "job-1", .controlled_only = true, .selector = *LabelSelector::Parse("role in (worker)")};
  EXPECT_EQ(Keys(reader.List(owned)), (std::vector<std::string>{"a/w0", "a/w1"}));
  EXPECT_TRUE(reader.List({.namespace_name = "c"}).empty());
}

TEST(ChildNameTest, StaysALabelWithinSixtyThreeCharacters) {
  EXPECT_EQ(ChildName("train", "worker-3"), "train-worker-3");
  EXPECT_EQ(ChildName("train", "token"), "train-token");

  // The longest legal custom-resource name: a 253-character DNS subdomain (dots
  // included), with the highest rank a 4096-worker job has.
  std::string longest;
  while (longest.size() < 253) longest += longest.size() % 64 == 63 ? '.' : 'j';
  longest.resize(253);
  ASSERT_NE(longest.back(), '.');
  for (const std::string& base : {longest, std::string(63, 'a'), std::string(62, 'b') + "." , std::string("a.b")}) {
    std::string name = ChildName(base, "worker-4095");
    EXPECT_LE(name.size(), 63u) << name;
    EXPECT_TRUE(IsDnsLabel(name)) << name;
    EXPECT_TRUE(IsDns1035Label(name)) << name;
    EXPECT_TRUE(name.ends_with("-worker-4095")) << name;
    EXPECT_EQ(name, ChildName(base, "worker-4095")) << "deterministic";
  }
  // Bases that share their first 60 characters, or that sanitize alike, stay distinct.
  std::string one = std::string(70, 'x') + "1";
  std::string two = std::string(70, 'x') + "2";
  EXPECT_NE(ChildName(one, "worker-0"), ChildName(two, "worker-0"));
  EXPECT_NE(ChildName("a.b", "worker-0"), ChildName("a-b", "worker-0"));
  // Every rank of the longest name gets its own name.
  std::set<std::string> names;
  for (int rank = 0; rank < 4096; ++rank) names.insert(ChildName(longest, "worker-" + std::to_string(rank)));
  EXPECT_EQ(names.size(), 4096u);
  EXPECT_FALSE(IsDnsLabel(std::string(64, 'a')));
  EXPECT_FALSE(IsDnsLabel("-a"));
  EXPECT_FALSE(IsDnsLabel("A"));
}

// Names of the children of running jobs: these must never change (computed by ChildName
// before its hash moved to mlscale/common/hash.h).
TEST(ChildNameTest, KeepsTheNamesOfExistingChildren) {
  EXPECT_EQ(ChildName("train", "worker-3"), "train-worker-3");
  EXPECT_EQ(ChildName(std::string(70, 'a'), "worker-0"), std::string(45, 'a') + "-4826bed6-worker-0");
  EXPECT_EQ(ChildName("My.Job", "launcher"), "my-job-7a13610e-launcher");
  EXPECT_EQ(ChildName("1job", "worker"), "x1job-9780042f-worker");
  EXPECT_EQ(ChildName("digits-sweep-with-a-rather-long-name-that-goes-past-the-limit", "12"),
            "digits-sweep-with-a-rather-long-name-that-goes-past-d5f1fdaa-12");
}

// Services are named by ChildName too (the headless "<job>-worker"), and a Service name
// is a DNS-1035 label: it must begin with a letter, while a TrainingJob's name (a DNS
// subdomain) may begin with a digit.
TEST(ChildNameTest, NamesAServiceCanCarry) {
  EXPECT_TRUE(IsDns1035Label("a"));
  EXPECT_TRUE(IsDns1035Label("job-1"));
  EXPECT_FALSE(IsDns1035Label("1job"));
  EXPECT_FALSE(IsDns1035Label("0"));
  EXPECT_FALSE(IsDns1035Label(""));
  EXPECT_FALSE(IsDns1035Label("job-"));
  EXPECT_FALSE(IsDns1035Label("Job"));
  EXPECT_FALSE(IsDns1035Label("jo_b"));
  EXPECT_FALSE(IsDns1035Label(std::string(64, 'a')));
  EXPECT_TRUE(IsDns1035Label(std::string(63, 'a')));

  std::string longest_digits(253, '7');  // a legal job name: digits only, 253 characters
  std::string digits_and_dots = "1.2.3";
  std::string longest_label = std::string(63, '9');
  for (const std::string& base : {std::string("1job"), std::string("0"), std::string("42-a"), longest_digits,
                                  digits_and_dots, longest_label, std::string(".a"), std::string("-9")}) {
    for (const std::string& suffix : {std::string("worker"), std::string("worker-4095"), std::string("0"),
                                      std::string("")}) {
      std::string name = ChildName(base, suffix);
      EXPECT_TRUE(IsDns1035Label(name)) << "'" << base << "' + '" << suffix << "' -> " << name;
      EXPECT_LE(name.size(), kMaxLabelLength) << name;
      EXPECT_EQ(name, ChildName(base, suffix)) << "deterministic";
      if (!suffix.empty()) {
        EXPECT_TRUE(name.ends_with("-" + suffix)) << name;
      }
    }
  }
  EXPECT_TRUE(ChildName("1job", "worker").starts_with("x1job-")) << ChildName("1job", "worker");
  // The letter in front does not make "1job" collide with a job named "x1job".
  EXPECT_NE(ChildName("1job", "worker"), ChildName("x1job", "worker"));
  EXPECT_EQ(ChildName("x1job", "worker"), "x1job-worker");
  // Names that were already valid do not change (controllers find their children again).
  EXPECT_EQ(ChildName("train", "worker"), "train-worker");
  EXPECT_EQ(ChildName(std::string(56, 'a'), "worker"), std::string(56, 'a') + "-worker");
  // Every rank of a 253-digit job name stays distinct.
  std::set<std::string> names;
  for (int rank = 0; rank < 4096; ++rank) names.insert(ChildName(longest_digits, "worker-" + std::to_string(rank)));
  EXPECT_EQ(names.size(), 4096u);
}

// client-go's EventAggregator: the 10th distinct message of one object/type/reason
// within 10 minutes (of the previous one) and every similar one after it is combined.
TEST(SimilarEventAggregatorTest, CombinesFromTheTenthDistinctMessageWithinTheInterval) {
  SimilarEventAggregator aggregator({});
  auto t = std::chrono::steady_clock::time_point{} + 1h;
  for (int i = 0; i < 9; ++i) {
    auto result = aggregator.Aggregate("pod/Warning/BackOff", "try " + std::to_string(i), t + i * 1min);
    EXPECT_FALSE(result.combined) << i;
    EXPECT_EQ(result.message, "try " + std::to_string(i));
  }
  // Another reason, type or object is not similar.
  EXPECT_FALSE(aggregator.Aggregate("pod/Warning/Failed", "try 9", t + 9min).combined);
  EXPECT_FALSE(aggregator.Aggregate("other/Warning/BackOff", "try 9", t + 9min).combined);
  auto tenth = aggregator.Aggregate("pod/Warning/BackOff", "try 9", t + 9min);
  EXPECT_TRUE(tenth.combined);
  EXPECT_EQ(tenth.message, "(combined from similar events): try 9");
  auto eleventh = aggregator.Aggregate("pod/Warning/BackOff", "try 10", t + 10min);
  EXPECT_TRUE(eleventh.combined);
  EXPECT_EQ(eleventh.message, "(combined from similar events): try 10");
  // A gap longer than 10 minutes starts afresh.
  auto later = aggregator.Aggregate("pod/Warning/BackOff", "try 11", t + 21min);
  EXPECT_FALSE(later.combined);
  EXPECT_EQ(later.message, "try 11");
}

TEST(SimilarEventAggregatorTest, RepeatsOfOneMessageAreNotSimilarEvents) {
  SimilarEventAggregator aggregator({.max_events = 3, .max_interval = 1s});
  auto t = std::chrono::steady_clock::time_point{} + 1h;
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(aggregator.Aggregate("k", "same", t + i * 100ms).combined);
  EXPECT_FALSE(aggregator.Aggregate("k", "second", t + 2s).combined);
  EXPECT_TRUE(aggregator.Aggregate("k", "third", t + 2s).combined) << "three distinct messages";
  // Spread more than max_interval apart, distinct messages never combine.
  SimilarEventAggregator slow({.max_events = 3, .max_interval = 1s});
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(slow.Aggregate("k", std::to_string(i), t + i * 2s).combined);
}

TEST(ConditionsTest, TransitionTimeMovesOnlyWhenTheStatusChanges) {
  Conditions conditions;
  const Condition starting{.type = "Ready", .status = ConditionStatus::kFalse, .reason = "Starting", .message = "0/4"};
  EXPECT_TRUE(conditions.Set(starting, 1, "2026-01-01T00:00:00Z"));
  EXPECT_FALSE(conditions.Set(starting, 1, "2026-01-01T00:00:05Z")) << "nothing changed";
  Condition progressing = starting;
  progressing.message = "2/4";
  EXPECT_TRUE(conditions.Set(progressing, 2, "2026-01-01T00:00:10Z"));
  EXPECT_EQ(conditions.Find("Ready")->last_transition_time, "2026-01-01T00:00:00Z") << "same status: time kept";
  EXPECT_EQ(conditions.Find("Ready")->observed_generation, 2);
  Condition ready{.type = "Ready", .status = ConditionStatus::kTrue, .reason = "AllRunning", .message = "4/4"};
  EXPECT_TRUE(conditions.Set(ready, 2, "2026-01-01T00:00:20Z"));
  EXPECT_EQ(conditions.Find("Ready")->last_transition_time, "2026-01-01T00:00:20Z");
  EXPECT_TRUE(conditions.IsTrue("Ready"));
  EXPECT_FALSE(conditions.IsFalse("Ready"));

  // Through JSON and back.
  Object object = {{"metadata", {{"generation", 3}}}, {"status", {{"conditions", conditions.ToJson()}}}};
  StatusOr<Conditions> parsed = Conditions::Of(object);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->Find("Ready")->reason, "AllRunning");
  EXPECT_EQ(parsed->Find("Ready")->last_transition_time, "2026-01-01T00:00:20Z");
  StatusOr<bool> changed = SetCondition(object, ready);
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(*changed) << "observedGeneration moved to 3";
  EXPECT_EQ(object["status"]["conditions"][0]["observedGeneration"], 3);
  EXPECT_EQ(object["status"]["conditions"][0]["lastTransitionTime"], "2026-01-01T00:00:20Z");
  EXPECT_EQ(FindCondition(object, "Ready")->status, ConditionStatus::kTrue);
}

TEST(ConditionsTest, MalformedConditionsNameTheField) {
  struct Case {
    const char* json;
    const char* error;
  };
  const Case cases[] = {
      {R"({"conditions": {}})", "status.conditions: must be a list"},
      {R"({"conditions": [1]})", "status.conditions[0]: must be an object"},
      {R"({"conditions": [{"status": "True"}]})", "status.conditions[0].type: is required"},
      {R"({"conditions": [{"type": "Ready", "status": "yes"}]})", "status.conditions[0].status: must be True, False or Unknown"},
      {R"({"conditions": [{"type": "Ready", "status": "True", "reason": 5}]})", "status.conditions[0].reason: must be a string"},
      {R"({"conditions": [{"type": "A", "status": "True"}, {"type": "A", "status": "True"}]})", "status.conditions[1].type: 'A' appears twice"},
      {R"({"conditions": [{"type": "A", "status": "True", "observedGeneration": "1"}]})", "observedGeneration: must be an integer"},
  };
  for (const Case& test : cases) {
    Object object = {{"status", Object::parse(test.json)}};
    StatusOr<Conditions> parsed = Conditions::Of(object);
    ASSERT_FALSE(parsed.ok()) << test.json;
    EXPECT_NE(parsed.status().message().find(test.error), std::string::npos) << parsed.status().message();
    Object unchanged = object;
    EXPECT_FALSE(SetCondition(object, {.type = "Ready", .status = ConditionStatus::kTrue}).ok());
    EXPECT_EQ(object, unchanged) << "a failed SetCondition loses nothing";
  }
}

TEST(MergePatchTest, HoldsOnlyTheDifference) {
  Object original = Object::parse(R"({"metadata": {"name": "a", "labels": {"keep": "1", "drop": "2", "change": "3"}},
                                       "spec": {"list": [1, 2], "same": true}})");
  Object modified = Object::parse(R"({"metadata": {"name": "a", "labels": {"keep": "1", "change": "4", "add": "5"}},
                                       "spec": {"list": [1, 2, 3], "same": true}})");
  Object patch = CreateMergePatch(original, modified);
  EXPECT_EQ(patch, Object::parse(R"({"metadata": {"labels": {"drop": null, "change": "4", "add": "5"}},
                                     "spec": {"list": [1, 2, 3]}})"));
  EXPECT_EQ(CreateMergePatch(original, original), Object::object());
}

TEST(OwnerReferenceTest, OwnersWithoutKindOrUidAreRefused) {
  Object owner = {{"apiVersion", "mlscale.io/v1alpha1"},
                  {"kind", "TrainingJob"},
                  {"metadata", {{"name", "job"}, {"namespace", "ns"}, {"uid", "u-1"}}}};
  Object child = {{"metadata", {{"name", "job-worker-0"}, {"namespace", "ns"}}}};
  ASSERT_TRUE(SetOwnerReference(child, owner).ok());
  EXPECT_TRUE(IsControlledBy(child, owner));
  EXPECT_EQ(child["metadata"]["ownerReferences"][0]["kind"], "TrainingJob");

  // An item of a list as the API server sends it: no apiVersion/kind.
  for (const char* field : {"apiVersion", "kind"}) {
    Object bare = owner;
    bare.erase(field);
    Object orphan = {{"metadata", {{"name", "c"}, {"namespace", "ns"}}}};
    Status status = SetOwnerReference(orphan, bare);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << field;
    EXPECT_NE(status.message().find(field), std::string::npos) << status.message();
    EXPECT_FALSE(orphan["metadata"].contains("ownerReferences"));
  }
  Object no_uid = owner;
  no_uid["metadata"].erase("uid");
  EXPECT_FALSE(SetOwnerReference(child, no_uid).ok());
  Object elsewhere = {{"metadata", {{"name", "c"}, {"namespace", "other"}}}};
  EXPECT_FALSE(SetOwnerReference(elsewhere, owner).ok()) << "cross-namespace owners do not exist";
}

TEST(ExpectationsTest, PendingUntilTheWatchDeliversThemAndExpireAfterTheTtl) {
  Expectations expectations(200ms);
  EXPECT_TRUE(expectations.Satisfied("ns/job"));
  expectations.ExpectCreations("ns/job", {"ns/job-worker-0", "ns/job-worker-1"});
  expectations.ExpectDeletions("ns/job", {"ns/job-worker-9"});
  EXPECT_FALSE(expectations.Satisfied("ns/job"));
  EXPECT_EQ(expectations.Pending("ns/job"), 3u);

  // Through the informer handler, keyed by the controlling owner.
  EventHandler observe = ObserveChildren(expectations, "mlscale.io", "TrainingJob");
  auto child = [](const std::string& name, const std::string& kind) {
    return std::make_shared<const Object>(Object{
        {"metadata",
         {{"name", name},
          {"namespace", "ns"},
          {"ownerReferences", {{{"apiVersion", "mlscale.io/v1alpha1"}, {"kind", kind}, {"name", "job"}, {"controller", true}}}}}}});
  };
  observe.on_add(child("job-worker-0", "TrainingJob"));
  observe.on_add(child("job-worker-0", "TrainingJob"));  // a relist repeats it: harmless
  observe.on_add(child("job-worker-1", "Deployment"));   // another owner kind: not ours
  EXPECT_EQ(expectations.Pending("ns/job"), 2u);
  observe.on_add(child("job-worker-1", "TrainingJob"));
  observe.on_delete(child("job-worker-9", "TrainingJob"), false);
  EXPECT_TRUE(expectations.Satisfied("ns/job"));

  // A lost event does not wedge the owner: the record expires.
  expectations.ExpectCreations("ns/job", {"ns/job-worker-2"});
  EXPECT_FALSE(expectations.Satisfied("ns/job"));
  std::this_thread::sleep_for(250ms);
  EXPECT_TRUE(expectations.Satisfied("ns/job"));
  expectations.ExpectCreations("ns/other", {"ns/x"});
  expectations.Forget("ns/other");
  EXPECT_TRUE(expectations.Satisfied("ns/other"));
}

TEST(PredicatesTest, GenerationAndStatusOnlyChanges) {
  Object old_object = Object::parse(R"({"metadata": {"name": "j", "generation": 1, "resourceVersion": "5",
                                         "labels": {"a": "1"}}, "spec": {"x": 1}, "status": {"phase": "Running"}})");
  Object status_write = old_object;
  status_write["status"]["phase"] = "Succeeded";
  status_write["metadata"]["resourceVersion"] = "6";
  status_write["metadata"]["managedFields"] = Object::array({{{"manager", "us"}}});
  EXPECT_FALSE(GenerationChanged(old_object, status_write));
  EXPECT_FALSE(ChangedBeyondStatus(old_object, status_write)) << "our own status write";
  Object relabelled = old_object;
  relabelled["metadata"]["labels"]["a"] = "2";
  EXPECT_FALSE(GenerationChanged(old_object, relabelled));
  EXPECT_TRUE(ChangedBeyondStatus(old_object, relabelled));
  Object spec_change = old_object;
  spec_change["metadata"]["generation"] = 2;
  EXPECT_TRUE(GenerationChanged(old_object, spec_change));
  Object deleting = old_object;
  deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  EXPECT_TRUE(GenerationChanged(old_object, deleting));

  WorkQueue queue;
  EventHandler handler = WithPredicate(EnqueueObject(queue), GenerationChanged);
  auto as_ptr = [](const Object& object) { return std::make_shared<const Object>(object); };
  handler.on_update(as_ptr(old_object), as_ptr(status_write));
  EXPECT_EQ(queue.Len(), 0u) << "a status-only update is filtered";
  handler.on_update(as_ptr(old_object), as_ptr(spec_change));
  EXPECT_EQ(queue.Len(), 1u);
  handler.on_resync(as_ptr(old_object));  // resyncs pass (same key: still one)
  EXPECT_EQ(queue.Len(), 1u);
  handler.on_delete(as_ptr(old_object), true);
  EXPECT_EQ(queue.Len(), 1u);
}

TEST(EnqueueTest, ChildrenMapToTheirControllingOwner) {
  WorkQueue queue;
  EventHandler handler = EnqueueControllerOwner(queue, "mlscale.io", "HyperparameterSweep");
  Object trial = {{"metadata",
                   {{"name", "sweep-trial-1"},
                    {"namespace", "ns"},
                    {"ownerReferences",
                     {{{"apiVersion", "mlscale.io/v1alpha1"}, {"kind", "HyperparameterSweep"}, {"name", "sweep"}, {"controller", true}},
                      {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"name", "cm"}}}}}}};
  EXPECT_EQ(ControllerOwnerKey(trial, "mlscale.io", "HyperparameterSweep"), "ns/sweep");
  EXPECT_EQ(ControllerOwnerKey(trial, "mlscale.io", "TrainingJob"), std::nullopt);
  EXPECT_EQ(ControllerOwnerKey(trial, "", "ConfigMap"), std::nullopt) << "not the controller";
  handler.on_delete(std::make_shared<const Object>(trial), false);
  std::optional<std::string> key = queue.Get();
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(*key, "ns/sweep");
  queue.Done(*key);

  EventHandler mapped = EnqueueMapped(queue, [](const Object& object) {
    return std::vector<std::string>{MakeKey(NamespaceOf(object), "by-label")};
  });
  mapped.on_add(std::make_shared<const Object>(trial));
  key = queue.Get();
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(*key, "ns/by-label");
  queue.Done(*key);
}

}  // namespace
}  // namespace mlscale::kube
