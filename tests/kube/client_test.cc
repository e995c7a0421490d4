// The client's verbs against the real API server of the test cluster.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "kube_test_support.h"
#include "mlscale/kube/errors.h"

namespace mlscale::kube {
namespace {

using testing::AdminClient;
using testing::ConfigMap;
using testing::ScopedNamespace;

const Resource kConfigMaps = resources::ConfigMaps();

TEST(ClientTest, CreateGetListUpdateDelete) {
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  ScopedNamespace ns(*client, "kube-verbs");

  StatusOr<Object> created = client->Create(kConfigMaps, ns.name(), ConfigMap(ns.name(), "a", "1"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_FALSE(UidOf(*created).empty());

  StatusOr<Object> again = client->Create(kConfigMaps, ns.name(), ConfigMap(ns.name(), "a", "1"));
  EXPECT_TRUE(IsAlreadyExists(again.status())) << again.status().ToString();
  EXPECT_EQ(ReasonOf(again.status()), "AlreadyExists");

  StatusOr<Object> got = client->Get(kConfigMaps, ns.name(), "a");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ((*got)["data"]["key"], "1");

  // Update with the current version succeeds; with the now stale version it conflicts.
  Object changed = *got;
  changed["data"]["key"] = "2";
  StatusOr<Object> updated = client->Update(kConfigMaps, changed);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_NE(ResourceVersionOf(*updated), ResourceVersionOf(*got));
  changed["data"]["key"] = "3";
  StatusOr<Object> stale = client->Update(kConfigMaps, changed);
  EXPECT_TRUE(IsConflict(stale.status())) << stale.status().ToString();
  EXPECT_EQ(ReasonOf(stale.status()), "Conflict");
  EXPECT_NE(stale.status().message().find("the object has been modified"), std::string::npos)
      << stale.status().message();

  ASSERT_TRUE(client->Delete(kConfigMaps, ns.name(), "a").ok());
  StatusOr<Object> gone = client->Get(kConfigMaps, ns.name(), "a");
  EXPECT_TRUE(IsNotFound(gone.status())) << gone.status().ToString();
  EXPECT_NE(gone.status().message().find("\"a\" not found"), std::string::npos) << gone.status().message();
  EXPECT_TRUE(IsNotFound(client->Delete(kConfigMaps, ns.name(), "a")));
}

TEST(ClientTest, ListPagesWithLimitAndContinue) {
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  ScopedNamespace ns(*client, "kube-pages");
  for (int i = 0; i < 7; ++i) {
    Object cm = ConfigMap(ns.name(), "cm-" + std::to_string(i));
    cm["metadata"]["labels"] = {{"parity", i % 2 == 0 ? "even" : "odd"}};
    ASSERT_TRUE(client->Create(kConfigMaps, ns.name(), cm).ok());
  }
  ListOptions options;
  options.limit = 3;
  StatusOr<ObjectList> first = client->List(kConfigMaps, ns.name(), options);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->items.size(), 3u);
  EXPECT_FALSE(first->continue_token.empty());

  StatusOr<ObjectList> all = client->ListAll(kConfigMaps, ns.name(), options);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  // 7 of ours plus the namespace's kube-root-ca.crt when the controller-manager runs.
  size_t ours = 0;
  for (const Object& item : all->items) ours += NameOf(item).rfind("cm-", 0) == 0;
  EXPECT_EQ(ours, 7u);
  EXPECT_FALSE(all->resource_version.empty());

  ListOptions selected;
  selected.label_selector = "parity=even";
  StatusOr<ObjectList> even = client->List(kConfigMaps, ns.name(), selected);
  ASSERT_TRUE(even.ok());
  EXPECT_EQ(even->items.size(), 4u);
}

TEST(ClientTest, MergeJsonAndServerSidePatches) {
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  ScopedNamespace ns(*client, "kube-patch");
  ASSERT_TRUE(client->Create(kConfigMaps, ns.name(), ConfigMap(ns.name(), "p")).ok());

  StatusOr<Object> merged = client->Patch(kConfigMaps, ns.name(), "p", PatchType::kMerge,
                                          {{"data", {{"merged", "yes"}}}});
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_EQ((*merged)["data"]["merged"], "yes");
  EXPECT_EQ((*merged)["data"]["key"], "v");

  Object operations = Object::array({{{"op", "replace"}, {"path", "/data/key"}, {"value", "json"}}});
  StatusOr<Object> json_patched = client->Patch(kConfigMaps, ns.name(), "p", PatchType::kJson, operations);
  ASSERT_TRUE(json_patched.ok()) << json_patched.status().ToString();
  EXPECT_EQ((*json_patched)["data"]["key"], "json");

  Object bad_test = Object::array({{{"op", "test"}, {"path", "/data/key"}, {"value", "other"}}});
  StatusOr<Object> failed = client->Patch(kConfigMaps, ns.name(), "p", PatchType::kJson, bad_test);
  EXPECT_FALSE(failed.ok());

  PatchOptions apply;
  apply.field_manager = "mlscale-test";
  Object applied_config = ConfigMap(ns.name(), "applied", "from-apply");
  StatusOr<Object> applied =
      client->Patch(kConfigMaps, ns.name(), "applied", PatchType::kApply, applied_config, apply);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ((*applied)["data"]["key"], "from-apply");
  bool managed = false;
  for (const Object& entry : (*applied)["metadata"]["managedFields"]) {
    managed |= entry.value("manager", "") == "mlscale-test" && entry.value("operation", "") == "Apply";
  }
  EXPECT_TRUE(managed) << (*applied)["metadata"].dump();

  // Another manager applying the same field conflicts unless it forces.
  PatchOptions other;
  other.field_manager = "someone-else";
  StatusOr<Object> contested = client->Patch(kConfigMaps, ns.name(), "applied", PatchType::kApply,
                                             ConfigMap(ns.name(), "applied", "theirs"), other);
  EXPECT_TRUE(IsConflict(contested.status())) << contested.status().ToString();
  other.force = true;
  StatusOr<Object> forced = client->Patch(kConfigMaps, ns.name(), "applied", PatchType::kApply,
                                          ConfigMap(ns.name(), "applied", "theirs"), other);
  ASSERT_TRUE(forced.ok()) << forced.status().ToString();
  EXPECT_EQ((*forced)["data"]["key"], "theirs");

  PatchOptions no_manager;
  EXPECT_EQ(client->Patch(kConfigMaps, ns.name(), "p", PatchType::kApply, {}, no_manager).status().code(),
            StatusCode::kInvalidArgument);
}

// Many writers increment one counter through read-modify-write: every increment must
// land exactly once although most first attempts conflict.
TEST(ClientTest, ConflictingUpdatesAreRetried) {
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  ScopedNamespace ns(*client, "kube-conflict");
  ASSERT_TRUE(client->Create(kConfigMaps, ns.name(), ConfigMap(ns.name(), "counter", "0")).ok());
  constexpr int kWriters = 6;
  constexpr int kIncrements = 8;
  std::atomic<int> conflicts_seen{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&] {
      for (int i = 0; i < kIncrements; ++i) {
        int attempts = 0;
        StatusOr<Object> written = client->UpdateWithRetry(kConfigMaps, ns.name(), "counter", [&](Object& cm) {
          ++attempts;
          int value = std::stoi(cm["data"]["key"].get<std::string>());
          cm["data"]["key"] = std::to_string(value + 1);
          return true;
        }, "", 100);
        EXPECT_TRUE(written.ok()) << written.status().ToString();
        conflicts_seen += attempts - 1;
      }
    });
  }
  for (auto& writer : writers) writer.join();
  StatusOr<Object> final_state = client->Get(kConfigMaps, ns.name(), "counter");
  ASSERT_TRUE(final_state.ok());
  EXPECT_EQ((*final_state)["data"]["key"], std::to_string(kWriters * kIncrements));
  EXPECT_GT(conflicts_seen.load(), 0) << "the writers never raced; the test proves nothing";
}

// A custom resource with status and scale subresources: status is written only through
// /status, replicas through /scale.
TEST(ClientTest, CustomResourceStatusAndScaleSubresources) {
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  StatusOr<Resource> widgets_or = testing::EnsureWidgetResource(*client);
  ASSERT_TRUE(widgets_or.ok()) << widgets_or.status().ToString();
  const Resource widgets = *widgets_or;
  ScopedNamespace ns(*client, "kube-crd");
  Object widget = {{"apiVersion", "kubetest.mlscale.io/v1"},
                   {"kind", "Widget"},
                   {"metadata", {{"name", "w"}, {"namespace", ns.name()}}},
                   {"spec", {{"replicas", 1}}}};
  StatusOr<Object> created = client->Create(widgets, ns.name(), widget);
  ASSERT_TRUE(created.ok()) << created.status().ToString();

  Object with_status = *created;
  with_status["status"] = {{"phase", "Running"}, {"replicas", 1}};
  StatusOr<Object> status_written = client->UpdateStatus(widgets, with_status);
  ASSERT_TRUE(status_written.ok()) << status_written.status().ToString();
  EXPECT_EQ((*status_written)["status"]["phase"], "Running");

  // A plain update does not touch status.
  Object plain = *status_written;
  plain["status"]["phase"] = "Ignored";
  StatusOr<Object> plain_written = client->Update(widgets, plain);
  ASSERT_TRUE(plain_written.ok()) << plain_written.status().ToString();
  EXPECT_EQ((*plain_written)["status"]["phase"], "Running");

  StatusOr<Object> scale = client->Get(widgets, ns.name(), "w", "scale");
  ASSERT_TRUE(scale.ok()) << scale.status().ToString();
  EXPECT_EQ((*scale)["kind"], "Scale");
  EXPECT_EQ((*scale)["spec"]["replicas"], 1);
  PatchOptions to_scale;
  to_scale.subresource = "scale";
  StatusOr<Object> scaled =
      client->Patch(widgets, ns.name(), "w", PatchType::kMerge, {{"spec", {{"replicas", 4}}}}, to_scale);
  ASSERT_TRUE(scaled.ok()) << scaled.status().ToString();
  StatusOr<Object> after = client->Get(widgets, ns.name(), "w");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)["spec"]["replicas"], 4);
}

TEST(ClientTest, DeleteWithPreconditionAndPropagation) {
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  ScopedNamespace ns(*client, "kube-delete");
  StatusOr<Object> created = client->Create(kConfigMaps, ns.name(), ConfigMap(ns.name(), "d"));
  ASSERT_TRUE(created.ok());
  DeleteOptions wrong_uid;
  wrong_uid.precondition_uid = "00000000-0000-0000-0000-000000000000";
  Status refused = client->Delete(kConfigMaps, ns.name(), "d", wrong_uid);
  EXPECT_TRUE(IsConflict(refused)) << refused.ToString();

  DeleteOptions foreground;
  foreground.precondition_uid = UidOf(*created);
  foreground.propagation = PropagationPolicy::kForeground;
  foreground.grace_period_seconds = 0;
  Status deleted = client->Delete(kConfigMaps, ns.name(), "d", foreground);
  EXPECT_TRUE(deleted.ok()) << deleted.ToString();
}

TEST(ClientTest, WatchStreamDeliversEventsInOrder) {
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  ScopedNamespace ns(*client, "kube-watch");
  StatusOr<ObjectList> start = client->List(kConfigMaps, ns.name());
  ASSERT_TRUE(start.ok());
  std::vector<std::string> seen;
  std::stop_source stop;
  std::thread watcher([&] {
    WatchOptions options;
    options.resource_version = start->resource_version;
    options.timeout_seconds = 30;
    Status ended = client->WatchStream(kConfigMaps, ns.name(), options, [&](WatchEvent&& event) {
      if (event.type == WatchEvent::Type::kBookmark || NameOf(event.object) != "w") return true;
      seen.push_back(std::string(WatchEventTypeName(event.type)) + ":" +
                     event.object["data"].value("key", ""));
      return event.type != WatchEvent::Type::kDeleted;
    }, stop.get_token());
    EXPECT_TRUE(ended.ok()) << ended.ToString();
  });
  ASSERT_TRUE(client->Create(kConfigMaps, ns.name(), ConfigMap(ns.name(), "w", "1")).ok());
  ASSERT_TRUE(client->Patch(kConfigMaps, ns.name(), "w", PatchType::kMerge, {{"data", {{"key", "2"}}}}).ok());
  ASSERT_TRUE(client->Delete(kConfigMaps, ns.name(), "w").ok());
  watcher.join();
  EXPECT_EQ(seen, (std::vector<std::string>{"ADDED:1", "MODIFIED:2", "DELETED:2"}));
}

TEST(ClientTest, StoppingAWatchReturnsPromptly) {
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  std::stop_source stop;
  auto started = std::chrono::steady_clock::now();
  std::thread watcher([&] {
    WatchOptions options;
    options.timeout_seconds = 120;
    Status ended = client->WatchStream(kConfigMaps, "kube-system", options, [](WatchEvent&&) { return true; },
                                       stop.get_token());
    EXPECT_TRUE(ended.ok()) << ended.ToString();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop.request_stop();
  watcher.join();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

TEST(ClientTest, RateLimiterHoldsConfiguredQps) {
  constexpr double kQps = 10;
  auto client = AdminClient(kQps, 1);
  ASSERT_NE(client, nullptr);
  constexpr int kRequests = 31;
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < kRequests; ++i) ASSERT_TRUE(client->Get(resources::Namespaces(), "", "default").ok());
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  double achieved = (kRequests - 1) / seconds;  // the first request is free (burst 1)
  EXPECT_LE(achieved, kQps * 1.05) << seconds << " s";
  EXPECT_GE(achieved, kQps * 0.7) << "the limiter is far stricter than configured: " << seconds << " s";
}

}  // namespace
}  // namespace mlscale::kube
