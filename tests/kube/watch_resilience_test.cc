// A watch and an informer keep the true state across an API server restart and a
// forced 410 Gone (etcd compacted while the API server is down). These tests run a
// control plane of their own, since they restart its components.
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <set>

#include "kube_test_support.h"
#include "mlscale/kube/informer.h"

namespace mlscale::kube {
namespace {

using namespace std::chrono_literals;
using testing::ConfigMap;
using mlscale::testing::WaitFor;

const Resource kConfigMaps = resources::ConfigMaps();

// key -> data.key of every ConfigMap of ours (kube-root-ca.crt is left out).
using State = std::map<std::string, std::string>;

State StateOf(const std::vector<ObjectPtr>& objects) {
  State state;
  for (const ObjectPtr& object : objects) {
    if (NameOf(*object) == "kube-root-ca.crt") continue;
    state[KeyOf(*object)] = (*object)["data"].value("key", "");
  }
  return state;
}

State Fresh(Client& client, const std::string& ns) {
  StatusOr<ObjectList> list = client.ListAll(kConfigMaps, ns);
  EXPECT_TRUE(list.ok()) << list.status().ToString();
  std::vector<ObjectPtr> objects;
  if (list.ok()) {
    for (Object& item : list->items) objects.push_back(std::make_shared<const Object>(std::move(item)));
  }
  return StateOf(objects);
}

// What the event handlers were told, replayed into a map: it must end equal to the cache.
class HandlerView {
 public:
  EventHandler Handler() {
    return {[this](const ObjectPtr& o) { Put(o); }, [this](const ObjectPtr&, const ObjectPtr& o) { Put(o); },
            [this](const ObjectPtr& o, bool) {
              std::lock_guard lock(mutex_);
              state_.erase(KeyOf(*o));
            }};
  }
  State Get() {
    std::lock_guard lock(mutex_);
    return state_;
  }

 private:
  void Put(const ObjectPtr& object) {
    if (NameOf(*object) == "kube-root-ca.crt") return;
    std::lock_guard lock(mutex_);
    state_[KeyOf(*object)] = (*object)["data"].value("key", "");
  }
  std::mutex mutex_;
  State state_;
};

TEST(WatchResilienceTest, InformerSurvivesApiserverRestartAndForced410) {
  StatusOr<std::unique_ptr<testing::OwnCluster>> cluster = testing::OwnCluster::Up();
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  auto client = testing::AdminClient(1000, 1000, (*cluster)->kubeconfig());
  ASSERT_NE(client, nullptr);
  testing::ScopedNamespace ns(*client, "resilience");
  for (const char* name : {"a", "b", "c"}) ASSERT_TRUE(client->Create(kConfigMaps, ns.name(), ConfigMap(ns.name(), name, "1")).ok());

  InformerOptions options;
  options.watch.max_backoff = 1000ms;  // keeps the test short; the logic is the same
  SharedInformer informer(*client, kConfigMaps, ns.name(), options);
  HandlerView view;
  informer.AddHandler(view.Handler());
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(30s));
  ASSERT_TRUE(WaitFor([&] { return StateOf(informer.cache().List()) == Fresh(*client, ns.name()); }, 10s));

  // 1. The API server restarts; changes made right after must all arrive.
  ASSERT_TRUE((*cluster)->Control("restart", "kube-apiserver").ok());
  ASSERT_TRUE(client->Patch(kConfigMaps, ns.name(), "a", PatchType::kMerge, {{"data", {{"key", "2"}}}}).ok());
  ASSERT_TRUE(client->Delete(kConfigMaps, ns.name(), "b").ok());
  ASSERT_TRUE(client->Create(kConfigMaps, ns.name(), ConfigMap(ns.name(), "d", "1")).ok());
  const State after_restart = {{ns.name() + "/a", "2"}, {ns.name() + "/c", "1"}, {ns.name() + "/d", "1"}};
  ASSERT_EQ(Fresh(*client, ns.name()), after_restart);
  EXPECT_TRUE(WaitFor([&] { return StateOf(informer.cache().List()) == after_restart; }, 60s))
      << "the informer missed changes made after the restart";
  EXPECT_TRUE(WaitFor([&] { return view.Get() == after_restart; }, 5s));
  int64_t restarts_before = informer.watcher().Restarts();
  EXPECT_GE(restarts_before, 1);

  // 2. Forced 410: advance etcd past the watcher's version, stop the API server (so the
  // watcher cannot follow), compact etcd at the head, start it again. The watcher's
  // version is now compacted away: it must list again and hand over the full state.
  testing::ScopedNamespace elsewhere(*client, "resilience-other");
  ASSERT_TRUE(client->Create(kConfigMaps, elsewhere.name(), ConfigMap(elsewhere.name(), "x")).ok());
  ASSERT_TRUE((*cluster)->Control("stop", "kube-apiserver").ok());
  ASSERT_TRUE((*cluster)->Compact().ok());
  ASSERT_TRUE((*cluster)->Control("start", "kube-apiserver").ok());
  ASSERT_TRUE(client->Patch(kConfigMaps, ns.name(), "c", PatchType::kMerge, {{"data", {{"key", "3"}}}}).ok());
  ASSERT_TRUE(client->Delete(kConfigMaps, ns.name(), "d").ok());
  ASSERT_TRUE(client->Create(kConfigMaps, ns.name(), ConfigMap(ns.name(), "e", "1")).ok());
  const State after_compaction = {{ns.name() + "/a", "2"}, {ns.name() + "/c", "3"}, {ns.name() + "/e", "1"}};
  ASSERT_EQ(Fresh(*client, ns.name()), after_compaction);
  EXPECT_TRUE(WaitFor([&] { return StateOf(informer.cache().List()) == after_compaction; }, 60s))
      << "the informer missed changes around the compaction";
  EXPECT_TRUE(WaitFor([&] { return view.Get() == after_compaction; }, 5s))
      << "handlers were not told of every change (a relist must report deletions)";
  EXPECT_GE(informer.watcher().Relists(), 1) << "the watcher never saw 410 Gone";
  EXPECT_GT(informer.watcher().Restarts(), restarts_before);
  // The cache equals a fresh list, object for object, including resourceVersions.
  StatusOr<ObjectList> fresh = client->ListAll(kConfigMaps, ns.name());
  ASSERT_TRUE(fresh.ok());
  for (const Object& item : fresh->items) {
    ObjectPtr cached = informer.cache().Get(KeyOf(item));
    ASSERT_NE(cached, nullptr) << KeyOf(item);
    EXPECT_EQ(ResourceVersionOf(*cached), ResourceVersionOf(item)) << KeyOf(item);
  }
  EXPECT_EQ(informer.cache().Size(), fresh->items.size());
  informer.Stop();
}

}  // namespace
}  // namespace mlscale::kube
