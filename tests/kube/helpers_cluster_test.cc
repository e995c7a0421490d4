// The controller helpers against the real API server: status writes that return the
// conflict, CreateOrPatch, finalizer patches, server-side apply with field managers,
// the cache reader and expectations fed by a real watch, managedFields not cached.
#include <gtest/gtest.h>

#include <mutex>
#include <set>

#include "kube_test_support.h"
#include "mlscale/kube/errors.h"
#include "mlscale/kube/expectations.h"
#include "mlscale/kube/informer.h"
#include "mlscale/kube/objects.h"
#include "mlscale/kube/patch.h"
#include "mlscale/kube/reader.h"

namespace mlscale::kube {
namespace {

using namespace std::chrono_literals;
using testing::AdminClient;
using testing::ConfigMap;
using mlscale::testing::WaitFor;
using testing::ScopedNamespace;

const Resource kConfigMaps = resources::ConfigMaps();

Object Widget(const std::string& ns, const std::string& name) {
  return {{"apiVersion", "kubetest.mlscale.io/v1"},
          {"kind", "Widget"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec", {{"replicas", 1}}}};
}

// A handler added after the informer delivered its first list but before it reports
// synced must still get every cached object once (the replay decides under the delivery
// lock from "the list was delivered", not from the synced flag, which is set later). The
// window is a few instructions wide in production; the watcher's test-only seam
// (after_list_delivered_for_testing, the fault injector here: nothing else can stop a
// thread between two statements) holds the informer in it, so the race is deterministic.
TEST(HelpersClusterTest, AHandlerAddedBetweenListAndSyncGetsTheReplay) {
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  ScopedNamespace ns(*client, "replay");
  for (const char* name : {"a", "b", "c"}) ASSERT_TRUE(client->Create(kConfigMaps, ns.name(), ConfigMap(ns.name(), name)).ok());

  std::mutex mutex;
  std::multiset<std::string> early, late;  // names added, per handler
  SharedInformer* informer = nullptr;
  bool added_in_window = false;
  InformerOptions options;
  options.watch.after_list_delivered_for_testing = [&] {
    if (added_in_window) return;  // the first list only
    added_in_window = true;
    EXPECT_FALSE(informer->HasSynced()) << "the seam must run before the informer reports synced";
    informer->AddHandler({.on_add = [&](const ObjectPtr& object) {
      std::lock_guard lock(mutex);
      late.insert(NameOf(*object));
    }});
  };
  SharedInformer configmaps(*client, kConfigMaps, ns.name(), options);
  informer = &configmaps;
  configmaps.AddHandler({.on_add = [&](const ObjectPtr& object) {
    std::lock_guard lock(mutex);
    early.insert(NameOf(*object));
  }});
  configmaps.Start();
  ASSERT_TRUE(configmaps.WaitForSync(30s));
  ASSERT_TRUE(added_in_window);
  ASSERT_TRUE(client->Create(kConfigMaps, ns.name(), ConfigMap(ns.name(), "d")).ok());
  const std::multiset<std::string> all = {"a", "b", "c", "d"};
  EXPECT_TRUE(WaitFor([&] {
    std::lock_guard lock(mutex);
    return late.count("d") == 1 && early.count("d") == 1;
  }, 10s));
  std::lock_guard lock(mutex);
  // kube-root-ca.crt is created in every namespace by the controller manager (when it
  // runs); only our own objects are compared.
  late.erase("kube-root-ca.crt");
  early.erase("kube-root-ca.crt");
  EXPECT_EQ(early, all);
  EXPECT_EQ(late, all) << "the late handler missed the replay (or saw an object twice)";
}

TEST(HelpersClusterTest, UpdateStatusReturnsTheConflictInsteadOfOverwriting) {
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  StatusOr<Resource> widgets = testing::EnsureWidgetResource(*client);
  ASSERT_TRUE(widgets.ok()) << widgets.status().ToString();
  ScopedNamespace ns(*client, "status");
  StatusOr<Object> read = client->Create(*widgets, ns.name(), Widget(ns.name(), "w"));
  ASSERT_TRUE(read.ok()) << read.status().ToString();

  // Meanwhile the user changes the spec (generation 2) and another writer sets a status.
  ASSERT_TRUE(client->Patch(*widgets, ns.name(), "w", PatchType::kMerge, {{"spec", {{"replicas", 5}}}}).ok());
  ASSERT_TRUE(client->Patch(*widgets, ns.name(), "w", PatchType::kMerge, {{"status", {{"replicas", 5}}}},
                            {.subresource = "status"}).ok());

  // A status computed from the stale read (generation 1, one replica) must not land.
  Object stale = *read;
  stale["status"] = {{"replicas", 1}};
  StatusOr<Object> written = UpdateStatus(*client, *widgets, stale);
  ASSERT_FALSE(written.ok());
  EXPECT_TRUE(IsConflict(written.status())) << written.status().ToString();
  StatusOr<Object> fresh = client->Get(*widgets, ns.name(), "w");
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ((*fresh)["status"]["replicas"], 5) << "the newer status was overwritten";
  EXPECT_FALSE((*fresh)["status"].contains("observedGeneration")) << "a stale generation was stamped as observed";

  // Recomputed from the fresh object, it is written with the fresh generation.
  Object recomputed = *fresh;
  recomputed["status"]["replicas"] = 5;
  ASSERT_TRUE(SetCondition(recomputed, {.type = "Ready", .status = ConditionStatus::kTrue, .reason = "Scaled"}).ok());
  written = UpdateStatus(*client, *widgets, recomputed);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ((*written)["status"]["observedGeneration"], 2);
  EXPECT_EQ(FindCondition(*written, "Ready")->status, ConditionStatus::kTrue);
}

TEST(HelpersClusterTest, CreateOrPatchSendsOnlyTheDifferenceAndNothingWhenUnchanged) {
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  ScopedNamespace ns(*client, "createorpatch");
  auto mutate = [](const std::string& value) {
    return [value](Object& object) -> Status {
      object["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "mlscale";
      object["data"]["config"] = value;
      return Status::Ok();
    };
  };
  Object desired = {{"metadata", {{"name", "cfg"}, {"namespace", ns.name()}}}};
  StatusOr<CreateOrPatchResult> first = CreateOrPatch(*client, kConfigMaps, desired, mutate("a"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->operation, OperationResult::kCreated);

  // A user adds a label and a key of their own; our patch must keep them.
  ASSERT_TRUE(client->Patch(kConfigMaps, ns.name(), "cfg", PatchType::kMerge,
                            {{"metadata", {{"labels", {{"team", "ml"}}}}}, {"data", {{"theirs", "1"}}}}).ok());
  StatusOr<CreateOrPatchResult> second = CreateOrPatch(*client, kConfigMaps, desired, mutate("b"));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->operation, OperationResult::kPatched);
  EXPECT_EQ(second->object["data"]["config"], "b");
  EXPECT_EQ(second->object["data"]["theirs"], "1");
  EXPECT_EQ(second->object["metadata"]["labels"]["team"], "ml");

  const int64_t before = client->requests_sent();
  StatusOr<CreateOrPatchResult> third = CreateOrPatch(*client, kConfigMaps, desired, mutate("b"));
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->operation, OperationResult::kUnchanged);
  EXPECT_EQ(client->requests_sent() - before, 1) << "only the read: an unchanged object is not written";

  StatusOr<CreateOrPatchResult> renamed = CreateOrPatch(*client, kConfigMaps, desired, [](Object& object) {
    object["metadata"]["name"] = "other";
    return Status::Ok();
  });
  EXPECT_EQ(renamed.status().code(), StatusCode::kInvalidArgument);
}

TEST(HelpersClusterTest, FinalizerPatchesAreLockedToTheVersionRead) {
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  ScopedNamespace ns(*client, "finalizers");
  StatusOr<Object> created = client->Create(kConfigMaps, ns.name(), ConfigMap(ns.name(), "f"));
  ASSERT_TRUE(created.ok());
  StatusOr<Object> added = PatchAddFinalizer(*client, kConfigMaps, *created, "mlscale.io/cleanup");
  ASSERT_TRUE(added.ok()) << added.status().ToString();
  EXPECT_TRUE(HasFinalizer(*added, "mlscale.io/cleanup"));
  const int64_t before = client->requests_sent();
  EXPECT_TRUE(PatchAddFinalizer(*client, kConfigMaps, *added, "mlscale.io/cleanup").ok());
  EXPECT_EQ(client->requests_sent(), before) << "already present: no request";

  // Someone else adds their finalizer; removing ours from the stale copy would drop theirs.
  ASSERT_TRUE(client->Patch(kConfigMaps, ns.name(), "f", PatchType::kJson,
                            Object::parse(R"([{"op": "add", "path": "/metadata/finalizers/-", "value": "example.com/theirs"}])")).ok());
  StatusOr<Object> removed = PatchRemoveFinalizer(*client, kConfigMaps, *added, "mlscale.io/cleanup");
  ASSERT_FALSE(removed.ok());
  EXPECT_TRUE(IsConflict(removed.status())) << removed.status().ToString();
  StatusOr<Object> fresh = client->Get(kConfigMaps, ns.name(), "f");
  ASSERT_TRUE(fresh.ok());
  removed = PatchRemoveFinalizer(*client, kConfigMaps, *fresh, "mlscale.io/cleanup");
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_FALSE(HasFinalizer(*removed, "mlscale.io/cleanup"));
  EXPECT_TRUE(HasFinalizer(*removed, "example.com/theirs"));
  ASSERT_TRUE(PatchRemoveFinalizer(*client, kConfigMaps, *removed, "example.com/theirs").ok());
}

TEST(HelpersClusterTest, ServerSideApplyOwnsFieldsPerManager) {
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  ScopedNamespace ns(*client, "apply");
  Object ours = {{"apiVersion", "v1"},
                 {"kind", "ConfigMap"},
                 {"metadata", {{"name", "applied"}, {"namespace", ns.name()}}},
                 {"data", {{"shared", "ours"}, {"mine", "1"}}}};
  StatusOr<Object> applied = Apply(*client, kConfigMaps, ours, {.field_manager = "mlscale-operator"});
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  Object theirs = ours;
  theirs["data"] = {{"shared", "theirs"}};
  StatusOr<Object> conflicting = Apply(*client, kConfigMaps, theirs, {.field_manager = "someone-else"});
  ASSERT_FALSE(conflicting.ok());
  EXPECT_TRUE(IsConflict(conflicting.status())) << conflicting.status().ToString();
  StatusOr<Object> forced = Apply(*client, kConfigMaps, theirs, {.field_manager = "someone-else", .force = true});
  ASSERT_TRUE(forced.ok()) << forced.status().ToString();
  EXPECT_EQ((*forced)["data"]["shared"], "theirs");
  EXPECT_EQ((*forced)["data"]["mine"], "1") << "fields of the other manager stay";
  Object no_kind = ours;
  no_kind.erase("kind");
  EXPECT_EQ(Apply(*client, kConfigMaps, no_kind, {.field_manager = "m"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Apply(*client, kConfigMaps, ours, {}).status().code(), StatusCode::kInvalidArgument);
}

TEST(HelpersClusterTest, TheCacheReaderAndExpectationsFollowTheWatch) {
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  ScopedNamespace ns(*client, "reader");
  StatusOr<Object> owner = client->Create(kConfigMaps, ns.name(), ConfigMap(ns.name(), "owner"));
  ASSERT_TRUE(owner.ok());
  SharedInformer informer(*client, kConfigMaps, ns.name(), {});
  Expectations expectations;
  informer.AddHandler(ObserveChildren(expectations, "", "ConfigMap"));
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(30s));
  const std::string owner_key = KeyOf(*owner);

  std::vector<std::string> names = {"child-0", "child-1", "child-2"};
  std::vector<std::string> keys;
  for (const std::string& name : names) keys.push_back(MakeKey(ns.name(), name));
  expectations.ExpectCreations(owner_key, keys);
  for (size_t i = 0; i < names.size(); ++i) {
    Object child = ConfigMap(ns.name(), names[i]);
    child["metadata"]["labels"] = {{"role", i == 0 ? "launcher" : "worker"}};
    ASSERT_TRUE(SetOwnerReference(child, *owner).ok());
    ASSERT_TRUE(client->Create(kConfigMaps, ns.name(), child).ok());
  }
  ASSERT_TRUE(WaitFor([&] { return expectations.Satisfied(owner_key); }, 10s))
      << expectations.Pending(owner_key) << " creations never observed";

  // Once satisfied, the cache has every child: the reader agrees with a live list.
  CacheReader reader(informer.cache());
  CacheQuery workers{.namespace_name = ns.name(), .owner_uid = UidOf(*owner), .controlled_only = true,
                     .selector = *LabelSelector::Parse("role in (worker)")};
  std::vector<ObjectPtr> cached = reader.List(workers);
  StatusOr<ObjectList> live = client->List(kConfigMaps, ns.name(), {.label_selector = workers.selector.ToString()});
  ASSERT_TRUE(live.ok());
  ASSERT_EQ(cached.size(), 2u);
  ASSERT_EQ(live->items.size(), 2u);
  for (size_t i = 0; i < cached.size(); ++i) EXPECT_EQ(NameOf(*cached[i]), NameOf(live->items[i]));
  // managedFields are not cached (the server sends them).
  EXPECT_TRUE(live->items[0]["metadata"].contains("managedFields"));
  EXPECT_FALSE((*cached[0])["metadata"].contains("managedFields"));

  expectations.ExpectDeletions(owner_key, {keys[1]});
  ASSERT_TRUE(client->Delete(kConfigMaps, ns.name(), names[1]).ok());
  ASSERT_TRUE(WaitFor([&] { return expectations.Satisfied(owner_key); }, 10s));
  EXPECT_EQ(reader.List(workers).size(), 1u);
}

// A delete handler gets the final state the watch delivered, not what was cached: the
// DELETED event's object carries the deletion's resourceVersion, newer than the cached one.
TEST(HelpersClusterTest, DeleteHandlersGetTheFinalState) {
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  ScopedNamespace ns(*client, "final");
  SharedInformer informer(*client, kConfigMaps, ns.name(), {});
  std::mutex mutex;
  std::vector<std::pair<Object, bool>> deleted;
  informer.AddHandler({.on_delete = [&](const ObjectPtr& object, bool unknown) {
    std::lock_guard lock(mutex);
    deleted.emplace_back(*object, unknown);
  }});
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(30s));
  ASSERT_TRUE(client->Create(kConfigMaps, ns.name(), ConfigMap(ns.name(), "going")).ok());
  const std::string key = MakeKey(ns.name(), "going");
  ASSERT_TRUE(WaitFor([&] { return informer.cache().Get(key) != nullptr; }, 10s));
  const std::string cached_version = ResourceVersionOf(*informer.cache().Get(key));
  ASSERT_TRUE(client->Delete(kConfigMaps, ns.name(), "going").ok());
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard lock(mutex);
    return !deleted.empty();
  }, 10s));
  std::lock_guard lock(mutex);
  EXPECT_EQ(NameOf(deleted[0].first), "going");
  EXPECT_GT(std::stoll(ResourceVersionOf(deleted[0].first)), std::stoll(cached_version))
      << "the cached state was delivered instead of the final one";
  EXPECT_FALSE(deleted[0].second) << "the watch delivered the final state";
  EXPECT_EQ(informer.cache().Get(key), nullptr);
}

}  // namespace
}  // namespace mlscale::kube
