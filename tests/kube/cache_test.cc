#include "mlscale/kube/cache.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "mlscale/kube/informer.h"

namespace mlscale::kube {
namespace {

ObjectPtr Make(const std::string& ns, const std::string& name, const std::string& owner_uid = "",
               const std::string& app = "") {
  Object object = {{"metadata", {{"namespace", ns}, {"name", name}, {"resourceVersion", "1"}}}};
  if (!owner_uid.empty()) object["metadata"]["ownerReferences"] = {{{"uid", owner_uid}, {"controller", true}}};
  if (!app.empty()) object["metadata"]["labels"] = {{"app", app}};
  return std::make_shared<const Object>(std::move(object));
}

std::vector<std::string> Names(const std::vector<ObjectPtr>& objects) {
  std::vector<std::string> names;
  for (const ObjectPtr& object : objects) names.push_back(NameOf(*object));
  std::sort(names.begin(), names.end());
  return names;
}

// Every behaviour holds for both storages.
class ObjectCacheTest : public ::testing::TestWithParam<ObjectCache::Storage> {};
INSTANTIATE_TEST_SUITE_P(Storages, ObjectCacheTest,
                         ::testing::Values(ObjectCache::Storage::kObjects, ObjectCache::Storage::kPacked));

TEST_P(ObjectCacheTest, IndexesByNamespaceOwnerAndLabel) {
  ObjectCache cache(GetParam());
  cache.Upsert(Make("a", "p1", "owner-1", "web"));
  cache.Upsert(Make("a", "p2", "owner-1", "db"));
  cache.Upsert(Make("b", "p3", "owner-2", "web"));
  EXPECT_EQ(cache.Size(), 3u);
  EXPECT_EQ(Names(cache.ByNamespace("a")), (std::vector<std::string>{"p1", "p2"}));
  EXPECT_EQ(Names(cache.ByOwner("owner-1")), (std::vector<std::string>{"p1", "p2"}));
  EXPECT_EQ(Names(cache.ByLabel("app", "web")), (std::vector<std::string>{"p1", "p3"}));
  EXPECT_EQ(NameOf(*cache.Get("b/p3")), "p3");
  EXPECT_EQ(cache.Get("b/missing"), nullptr);
}

TEST_P(ObjectCacheTest, UpdatesMoveObjectsBetweenIndexEntries) {
  ObjectCache cache(GetParam());
  cache.Upsert(Make("a", "p1", "owner-1", "web"));
  ObjectPtr old = cache.Upsert(Make("a", "p1", "owner-2", "db"));
  ASSERT_NE(old, nullptr);
  EXPECT_TRUE(cache.ByOwner("owner-1").empty());
  EXPECT_TRUE(cache.ByLabel("app", "web").empty());
  EXPECT_EQ(Names(cache.ByOwner("owner-2")), (std::vector<std::string>{"p1"}));
  EXPECT_NE(cache.Remove("a/p1"), nullptr);
  EXPECT_TRUE(cache.ByNamespace("a").empty());
  EXPECT_EQ(cache.Remove("a/p1"), nullptr);
}

TEST_P(ObjectCacheTest, ReplaceReturnsWhatDisappeared) {
  ObjectCache cache(GetParam());
  cache.Upsert(Make("a", "keep"));
  cache.Upsert(Make("a", "drop"));
  std::vector<ObjectPtr> removed = cache.Replace({Make("a", "keep"), Make("a", "new", "o")});
  EXPECT_EQ(Names(removed), (std::vector<std::string>{"drop"}));
  EXPECT_EQ(Names(cache.List()), (std::vector<std::string>{"keep", "new"}));
  EXPECT_EQ(Names(cache.ByOwner("o")), (std::vector<std::string>{"new"}));
}

TEST_P(ObjectCacheTest, ReadsReturnWhatWasStoredExactly) {
  ObjectCache cache(GetParam());
  Object object = Object::parse(R"({"metadata": {"namespace": "a", "name": "p", "uid": "u", "labels": {"x": "y"}},
    "status": {"phase": "Running", "n": -3, "big": 18446744073709551615, "ratio": 0.125, "ok": true, "none": null,
               "list": [1, "two", {"three": [3.5]}], "text": "ünïcode \u0000 and a longer string than fifteen"}})");
  cache.Upsert(std::make_shared<const Object>(object));
  ASSERT_NE(cache.Get("a/p"), nullptr);
  EXPECT_EQ(*cache.Get("a/p"), object);
  EXPECT_EQ(object.dump(), cache.Get("a/p")->dump()) << "the same types (unsigned stays unsigned)";
  ObjectPtr old = cache.Upsert(Make("a", "p"));
  ASSERT_NE(old, nullptr);
  EXPECT_EQ(*old, object);
  EXPECT_EQ(*cache.Remove("a/p"), *Make("a", "p"));
}

TEST(TrimPodTest, KeepsWhatControllersReadAndDropsTheRest) {
  Object pod = Object::parse(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "p", "namespace": "n", "uid": "u", "resourceVersion": "7", "labels": {"a": "b"},
      "annotations": {"mlscale.io/rank": "0", "kubectl.kubernetes.io/last-applied-configuration": "{...}"},
      "ownerReferences": [{"uid": "o", "controller": true}],
      "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]},
    "spec": {"nodeName": "n1", "restartPolicy": "Never", "volumes": [{"name": "v"}],
      "containers": [{"name": "c", "image": "i", "env": [{"name": "X", "value": "Y"}], "command": ["x"]}]},
    "status": {"phase": "Running", "podIP": "10.0.0.1", "qosClass": "BestEffort",
      "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": "t"}],
      "containerStatuses": [{"name": "c", "ready": true, "restartCount": 2, "image": "i", "imageID": "x",
                             "state": {"running": {"startedAt": "t"}}}]}})");
  TrimPod(pod);
  EXPECT_EQ(pod["metadata"]["uid"], "u");
  EXPECT_EQ(pod["metadata"]["labels"]["a"], "b");
  EXPECT_EQ(pod["metadata"]["annotations"].size(), 1u);
  EXPECT_FALSE(pod["metadata"].contains("managedFields"));
  EXPECT_EQ(pod["metadata"]["ownerReferences"][0]["uid"], "o");
  EXPECT_EQ(pod["spec"]["nodeName"], "n1");
  EXPECT_FALSE(pod["spec"].contains("volumes"));
  EXPECT_EQ(pod["spec"]["containers"][0], Object({{"name", "c"}}));
  EXPECT_EQ(pod["status"]["phase"], "Running");
  EXPECT_FALSE(pod["status"].contains("qosClass"));
  EXPECT_EQ(pod["status"]["conditions"][0], Object({{"type", "Ready"}, {"status", "True"}}));
  EXPECT_EQ(pod["status"]["containerStatuses"][0]["restartCount"], 2);
  EXPECT_FALSE(pod["status"]["containerStatuses"][0].contains("imageID"));
}

TEST(TrimPodTest, OddShapesDoNotThrow) {
  for (const char* text : {R"({"metadata": "x", "spec": {"containers": [1, "a"]}, "status": {"conditions": [null]}})",
                           R"({"spec": [], "status": {"containerStatuses": [[]]}})", R"([1, 2])", R"("pod")"}) {
    Object pod = Object::parse(text);
    EXPECT_NO_THROW(TrimPod(pod)) << text;
  }
}

TEST(KeepMetadataOnlyTest, KeepsIdentityAndOwnersOnly) {
  Object service = Object::parse(R"({"apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "s", "namespace": "a", "uid": "u", "resourceVersion": "3", "labels": {"x": "y"},
                 "annotations": {"big": "..."}, "ownerReferences": [{"uid": "o", "controller": true}],
                 "managedFields": [{}]},
    "spec": {"clusterIP": "None", "ports": [{"port": 80}]}, "status": {}})");
  KeepMetadataOnly(service);
  EXPECT_EQ(service, Object::parse(R"({"apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "s", "namespace": "a", "uid": "u", "resourceVersion": "3", "labels": {"x": "y"},
                 "ownerReferences": [{"uid": "o", "controller": true}]}})"));
  for (const char* text : {R"({"metadata": "x"})", R"([1])", R"("s")", R"({})"}) {
    Object odd = Object::parse(text);
    EXPECT_NO_THROW(KeepMetadataOnly(odd)) << text;
  }
}

}  // namespace
}  // namespace mlscale::kube
