// The runtime against the real API server: informer handlers and indexes, owner
// mapping driving a controller, events de-duplicated, finalizers and conditions
// with observedGeneration, metrics; TLS verification and token rotation of the client.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <set>
#include <thread>

#include "kube_test_support.h"
#include "mlscale/kube/controller.h"
#include "mlscale/kube/errors.h"
#include "mlscale/kube/events.h"
#include "mlscale/kube/informer.h"
#include "mlscale/kube/metrics.h"
#include "mlscale/kube/objects.h"

namespace mlscale::kube {
namespace {

using namespace std::chrono_literals;
using testing::AdminClient;
using testing::ConfigMap;
using mlscale::testing::WaitFor;
using testing::ScopedNamespace;

const Resource kConfigMaps = resources::ConfigMaps();

TEST(RuntimeTest, InformerIndexesAndOwnerMappingDriveAController) {
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  ScopedNamespace ns(*client, "runtime");
  Metrics metrics;
  // Owners are ConfigMaps labelled role=owner; children carry a controller reference.
  StatusOr<Object> owner = client->Create(kConfigMaps, ns.name(), ConfigMap(ns.name(), "owner"));
  ASSERT_TRUE(owner.ok());

  std::mutex mutex;
  std::multiset<std::string> reconciled;
  Controller controller({"widgets", 2, {}}, [&](const std::string& key, std::stop_token) -> StatusOr<ReconcileResult> {
    std::lock_guard lock(mutex);
    reconciled.insert(key);
    return ReconcileResult{};
  }, &metrics);
  InformerFactory informers(*client, &metrics);
  SharedInformer& configmaps = informers.Informer(kConfigMaps, ns.name());
  EXPECT_EQ(&configmaps, &informers.Informer(kConfigMaps, ns.name())) << "informers are shared";
  configmaps.AddHandler(EnqueueControllerOwner(controller.queue(), "", "ConfigMap"));
  informers.StartAll();
  ASSERT_TRUE(informers.WaitForSync(30s));
  controller.Start();

  Object child = ConfigMap(ns.name(), "child", "1");
  child["metadata"]["labels"] = {{"tier", "worker"}};
  ASSERT_TRUE(SetOwnerReference(child, *owner).ok());
  ASSERT_TRUE(client->Create(kConfigMaps, ns.name(), child).ok());
  ASSERT_TRUE(client->Create(kConfigMaps, ns.name(), ConfigMap(ns.name(), "unowned")).ok());
  const std::string owner_key = ns.name() + "/owner";
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard lock(mutex);
    return reconciled.count(owner_key) >= 1;
  }, 10s)) << "a child's event did not reach its owner's key";

  ASSERT_TRUE(WaitFor([&] { return configmaps.cache().ByOwner(UidOf(*owner)).size() == 1; }, 10s));
  EXPECT_EQ(NameOf(*configmaps.cache().ByOwner(UidOf(*owner))[0]), "child");
  EXPECT_EQ(configmaps.cache().ByLabel("tier", "worker").size(), 1u);
  EXPECT_GE(configmaps.cache().ByNamespace(ns.name()).size(), 3u);
  {
    std::lock_guard lock(mutex);
    for (const std::string& key : reconciled) EXPECT_EQ(key, owner_key) << "only owners are reconciled";
  }

  // A late handler first sees everything already cached.
  std::atomic<int> replayed{0};
  configmaps.AddHandler({.on_add = [&](const ObjectPtr&) { ++replayed; }});
  EXPECT_GE(replayed.load(), 3);

  controller.Stop();
  informers.StopAll();
  std::string text = metrics.Render();
  EXPECT_NE(text.find("mlscale_kube_reconcile_total{controller=\"widgets\",result=\"success\"}"), std::string::npos) << text;
  EXPECT_NE(text.find("mlscale_kube_reconcile_duration_seconds_bucket{controller=\"widgets\",le=\"0.001\"}"), std::string::npos);
}

// The server ends each watch after timeoutSeconds; the watcher resumes from the last
// version without a relist and without losing events written across the reconnects.
TEST(RuntimeTest, WatcherResumesAfterServerSideTimeouts) {
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  ScopedNamespace ns(*client, "timeouts");
  std::mutex mutex;
  std::set<std::string> seen;
  int lists = 0;
  WatcherOptions options;
  options.timeout_seconds = 1;
  Watcher watcher(*client, kConfigMaps, ns.name(), options,
                  {[&](std::vector<Object>&&, const std::string&) {
                     std::lock_guard lock(mutex);
                     ++lists;
                   },
                   [&](WatchEvent&& event) {
                     std::lock_guard lock(mutex);
                     seen.insert(NameOf(event.object));
                   }});
  watcher.Start();
  ASSERT_TRUE(WaitFor([&] { return watcher.HasSynced(); }, 10s));
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(client->Create(kConfigMaps, ns.name(), ConfigMap(ns.name(), "t" + std::to_string(i))).ok());
    std::this_thread::sleep_for(400ms);
  }
  EXPECT_TRUE(WaitFor([&] {
    std::lock_guard lock(mutex);
    return std::count_if(seen.begin(), seen.end(), [](const std::string& n) { return n[0] == 't'; }) == 8;
  }, 10s));
  EXPECT_GE(watcher.Restarts(), 2) << "the server should have ended several 1 s watches";
  EXPECT_EQ(watcher.Relists(), 0);
  std::lock_guard lock(mutex);
  EXPECT_EQ(lists, 1) << "a timeout resumes; it must not relist";
}

TEST(RuntimeTest, FinalizersConditionsAndStatusWithObservedGeneration) {
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  // A custom resource with a status subresource and a generation, and no controller.
  StatusOr<Resource> widgets = testing::EnsureWidgetResource(*client);
  ASSERT_TRUE(widgets.ok()) << widgets.status().ToString();
  ScopedNamespace ns(*client, "objects");
  Object widget = {{"apiVersion", "kubetest.mlscale.io/v1"},
                   {"kind", "Widget"},
                   {"metadata", {{"name", "w"}, {"namespace", ns.name()}}},
                   {"spec", {{"replicas", 1}}}};
  StatusOr<Object> created = client->Create(*widgets, ns.name(), widget);
  ASSERT_TRUE(created.ok()) << created.status().ToString();

  StatusOr<Object> updated = client->UpdateWithRetry(*widgets, ns.name(), "w", [](Object& object) {
    EXPECT_TRUE(AddFinalizer(object, "mlscale.io/cleanup"));
    EXPECT_FALSE(AddFinalizer(object, "mlscale.io/cleanup"));
    object["spec"]["replicas"] = 2;  // a spec change: generation 2
    return true;
  });
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_TRUE(HasFinalizer(*updated, "mlscale.io/cleanup"));
  EXPECT_EQ(GenerationOf(*updated), 2);

  const Condition starting{.type = "Ready", .status = ConditionStatus::kFalse, .reason = "Starting", .message = "waiting"};
  Object with_condition = *updated;
  EXPECT_TRUE(*SetCondition(with_condition, starting));
  EXPECT_FALSE(*SetCondition(with_condition, starting));
  StatusOr<Object> status_written = UpdateStatus(*client, *widgets, with_condition);
  ASSERT_TRUE(status_written.ok()) << status_written.status().ToString();
  StatusOr<Object> read = client->Get(*widgets, ns.name(), "w");
  ASSERT_TRUE(read.ok());
  std::optional<Condition> ready = FindCondition(*read, "Ready");
  ASSERT_TRUE(ready.has_value()) << (*read)["status"].dump();
  EXPECT_EQ(ready->reason, "Starting");
  EXPECT_EQ((*read)["status"]["observedGeneration"], 2);
  EXPECT_EQ((*read)["status"]["conditions"][0]["observedGeneration"], 2);
  EXPECT_FALSE((*read)["status"]["conditions"][0].value("lastTransitionTime", "").empty());

  // Deleting leaves it terminating until the finalizer is removed.
  ASSERT_TRUE(client->Delete(*widgets, ns.name(), "w").ok());
  StatusOr<Object> terminating = client->Get(*widgets, ns.name(), "w");
  ASSERT_TRUE(terminating.ok());
  EXPECT_TRUE(IsBeingDeleted(*terminating));
  StatusOr<Object> released = client->UpdateWithRetry(*widgets, ns.name(), "w", [](Object& object) {
    return RemoveFinalizer(object, "mlscale.io/cleanup");
  });
  EXPECT_TRUE(released.ok() || IsNotFound(released.status())) << released.status().ToString();
  EXPECT_TRUE(WaitFor([&] { return IsNotFound(client->Get(*widgets, ns.name(), "w").status()); }, 10s));
}

TEST(RuntimeTest, EventsAreRecordedOnTheObjectAndDeduplicated) {
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  ScopedNamespace ns(*client, "events");
  StatusOr<Object> involved = client->Create(kConfigMaps, ns.name(), ConfigMap(ns.name(), "subject"));
  ASSERT_TRUE(involved.ok());
  EventRecorder recorder(*client, "mlscale-test");
  recorder.Warning(*involved, "BackOff", "restarting failed worker");
  recorder.Warning(*involved, "BackOff", "restarting failed worker");
  recorder.Warning(*involved, "BackOff", "restarting failed worker");
  recorder.Normal(*involved, "Created", "created worker-0");
  ASSERT_TRUE(recorder.Flush(10s));
  StatusOr<ObjectList> events = client->List(resources::Events(), ns.name());
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->items.size(), 2u);
  for (const Object& event : events->items) {
    EXPECT_EQ(event["involvedObject"]["uid"], UidOf(*involved));
    EXPECT_EQ(event["source"]["component"], "mlscale-test");
    if (event["reason"] == "BackOff") {
      EXPECT_EQ(event["count"], 3);
      EXPECT_EQ(event["type"], "Warning");
    } else {
      EXPECT_EQ(event["count"], 1);
    }
  }
}

// Similar events (one object, type and reason; other messages) are combined from the
// 10th distinct message on, into one Event whose count grows (client-go's EventAggregator).
TEST(RuntimeTest, SimilarEventsAreCombinedIntoOneEvent) {
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  ScopedNamespace ns(*client, "events");
  StatusOr<Object> involved = client->Create(kConfigMaps, ns.name(), ConfigMap(ns.name(), "similar"));
  ASSERT_TRUE(involved.ok());
  {
    EventRecorder recorder(*client, "mlscale-test");
    for (int i = 0; i < 9; ++i) recorder.Warning(*involved, "BackOff", "worker " + std::to_string(i) + " failed");
    ASSERT_TRUE(recorder.Flush(10s));
    for (int i = 9; i < 12; ++i) {
      recorder.Warning(*involved, "BackOff", "worker " + std::to_string(i) + " failed");
      ASSERT_TRUE(recorder.Flush(10s));  // each one written: the combined Event is patched
    }
    recorder.Normal(*involved, "Created", "created worker-0");  // not similar
  }
  StatusOr<ObjectList> events = client->List(resources::Events(), ns.name());
  ASSERT_TRUE(events.ok());
  std::vector<const Object*> combined;
  int single_backoffs = 0, created = 0;
  for (const Object& event : events->items) {
    const std::string message = event.value("message", "");
    if (message.starts_with("(combined from similar events): ")) {
      combined.push_back(&event);
    } else if (event["reason"] == "BackOff") {
      ++single_backoffs;
      EXPECT_EQ(event["count"], 1) << message;
    } else if (event["reason"] == "Created") {
      ++created;
    }
  }
  EXPECT_EQ(single_backoffs, 9);
  EXPECT_EQ(created, 1);
  ASSERT_EQ(combined.size(), 1u) << "one combined Event, not one per message";
  EXPECT_EQ((*combined[0])["count"], 3);
  EXPECT_EQ((*combined[0])["message"], "(combined from similar events): worker 11 failed") << "the latest message";
  EXPECT_EQ((*combined[0])["reason"], "BackOff");
  EXPECT_EQ((*combined[0])["type"], "Warning");
}

// Repeats aggregate into one Event (count, first/last timestamp), each object has a
// burst of events, and recording never waits for the API server: here the recorder's
// client goes through a delaying proxy (the fault injector) that holds every byte 10 s.
TEST(RuntimeTest, EventsAreAsynchronousAggregatedAndRateLimitedPerObject) {
  StatusOr<mlscale::testing::TestCluster> cluster = mlscale::testing::CurrentCluster();
  ASSERT_TRUE(cluster.ok());
  auto client = AdminClient();
  ASSERT_NE(client, nullptr);
  ScopedNamespace ns(*client, "events");
  StatusOr<Object> involved = client->Create(kConfigMaps, ns.name(), ConfigMap(ns.name(), "noisy"));
  ASSERT_TRUE(involved.ok());
  Metrics metrics;
  {
    EventRecorder recorder(*client, "mlscale-test", {.queue_size = 100, .per_object_burst = 3}, &metrics);
    recorder.Warning(*involved, "BackOff", "restarting");
    ASSERT_TRUE(recorder.Flush(10s));
    std::this_thread::sleep_for(1100ms);  // timestamps have seconds
    recorder.Warning(*involved, "BackOff", "restarting");
    for (int i = 0; i < 5; ++i) recorder.Normal(*involved, "Step", "step " + std::to_string(i));
    ASSERT_TRUE(recorder.Flush(10s));
  }
  StatusOr<ObjectList> events = client->List(resources::Events(), ns.name());
  ASSERT_TRUE(events.ok());
  // A burst of 3 per object: BackOff, its repeat (aggregated into the same Event), step 0.
  ASSERT_EQ(events->items.size(), 2u);
  for (const Object& event : events->items) {
    if (event["reason"] != "BackOff") continue;
    EXPECT_EQ(event["count"], 2);
    EXPECT_LT(event["firstTimestamp"].get<std::string>(), event["lastTimestamp"].get<std::string>());
  }
  EXPECT_EQ(metrics.Value("mlscale_kube_events_dropped_total", {{"reason", "rate_limited"}}), 4);

  const std::string server = client->config().server;
  auto proxy = testing::DelayingProxy::Start(std::stoi(server.substr(server.rfind(':') + 1)));
  ASSERT_TRUE(proxy.ok());
  (*proxy)->SetDelay(10s);
  ClientConfig slow_config = client->config();
  slow_config.server = "https://127.0.0.1:" + std::to_string((*proxy)->port());
  StatusOr<std::unique_ptr<Client>> slow = Client::Create(slow_config);
  ASSERT_TRUE(slow.ok());
  Metrics slow_metrics;
  EventRecorder stalled(**slow, "mlscale-test", {.queue_size = 10, .flush_on_destroy = 100ms}, &slow_metrics);
  auto started = std::chrono::steady_clock::now();
  // 25 distinct reasons (distinct messages of one reason would be combined instead).
  for (int i = 0; i < 50; ++i) stalled.Normal(*involved, "Burst" + std::to_string(i % 25), "event");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 500ms) << "Record waited for the API server";
  EXPECT_GE(slow_metrics.Value("mlscale_kube_events_dropped_total", {{"reason", "queue_full"}}) +
                slow_metrics.Value("mlscale_kube_events_dropped_total", {{"reason", "rate_limited"}}),
            20);
}

TEST(RuntimeTest, TlsIsVerifiedUnlessSkippingIsAsked) {
  StatusOr<mlscale::testing::TestCluster> cluster = mlscale::testing::CurrentCluster();
  ASSERT_TRUE(cluster.ok());
  StatusOr<ClientConfig> config = LoadKubeconfig(cluster->admin_kubeconfig);
  ASSERT_TRUE(config.ok());
  config->max_retries = 0;
  // A CA that did not sign the server's certificate (the test's own self-signed one).
  ClientConfig wrong_ca = *config;
  wrong_ca.ca_pem = wrong_ca.client_certificate_pem;  // a valid certificate, but not the CA
  StatusOr<std::unique_ptr<Client>> distrusting = Client::Create(wrong_ca);
  ASSERT_TRUE(distrusting.ok()) << distrusting.status().ToString();
  StatusOr<Object> refused = (*distrusting)->Get(resources::Namespaces(), "", "default");
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable) << refused.status().ToString();
  ClientConfig skipping = wrong_ca;
  skipping.insecure_skip_tls_verify = true;
  StatusOr<std::unique_ptr<Client>> trusting = Client::Create(skipping);
  ASSERT_TRUE(trusting.ok());
  EXPECT_TRUE((*trusting)->Get(resources::Namespaces(), "", "default").ok());
}

// A kubeconfig that names a CA trusts that CA alone. The system's roots are made to
// include the cluster's CA (SSL_CERT_FILE, which OpenSSL's default paths honour), so a
// client that also trusted the system roots would connect with a wrong kubeconfig CA.
TEST(RuntimeTest, TheKubeconfigsCaIsTrustedAloneNotWithTheSystemRoots) {
  StatusOr<mlscale::testing::TestCluster> cluster = mlscale::testing::CurrentCluster();
  ASSERT_TRUE(cluster.ok());
  StatusOr<ClientConfig> config = LoadKubeconfig(cluster->admin_kubeconfig);
  ASSERT_TRUE(config.ok());
  config->max_retries = 0;
  const std::string system_roots = cluster->dir + "/system-roots-" + std::to_string(getpid()) + ".pem";
  std::ofstream(system_roots) << config->ca_pem;
  ASSERT_EQ(setenv("SSL_CERT_FILE", system_roots.c_str(), 1), 0);

  ClientConfig system_trust = *config;
  system_trust.ca_pem.clear();  // no CA given: the system's roots
  StatusOr<std::unique_ptr<Client>> by_system = Client::Create(system_trust);
  ASSERT_TRUE(by_system.ok());
  EXPECT_TRUE((*by_system)->Get(resources::Namespaces(), "", "default").ok()) << "the fixture does not work";

  ClientConfig wrong_ca = *config;
  wrong_ca.ca_pem = wrong_ca.client_certificate_pem;  // a valid certificate, but not the server's CA
  StatusOr<std::unique_ptr<Client>> distrusting = Client::Create(wrong_ca);
  ASSERT_TRUE(distrusting.ok());
  StatusOr<Object> refused = (*distrusting)->Get(resources::Namespaces(), "", "default");
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable)
      << "the system's roots were trusted besides the kubeconfig's CA: " << refused.status().ToString();
  unsetenv("SSL_CERT_FILE");
  std::filesystem::remove(system_roots);
}

TEST(RuntimeTest, TokenFileIsReReadWhenItRotates) {
  StatusOr<mlscale::testing::TestCluster> cluster = mlscale::testing::CurrentCluster();
  ASSERT_TRUE(cluster.ok());
  StatusOr<std::string> kubeconfig = mlscale::testing::KubeconfigForServiceAccount("kube-token-test", "reader");
  ASSERT_TRUE(kubeconfig.ok()) << kubeconfig.status().ToString();
  StatusOr<ClientConfig> service_account = LoadKubeconfig(*kubeconfig);
  ASSERT_TRUE(service_account.ok()) << service_account.status().ToString();
  ASSERT_FALSE(service_account->bearer_token.empty());

  std::string token_path = cluster->dir + "/rotating-token";
  std::ofstream(token_path) << "not-a-valid-token";
  ClientConfig config = *service_account;
  config.bearer_token.clear();
  config.token_file = token_path;
  config.max_retries = 0;
  StatusOr<std::unique_ptr<Client>> client = Client::Create(config);
  ASSERT_TRUE(client.ok());
  // The service account may not read namespaces: authenticated -> 403; bad token -> 401.
  StatusOr<Object> rejected = (*client)->Get(resources::Namespaces(), "", "default");
  EXPECT_EQ(rejected.status().code(), StatusCode::kUnauthenticated) << rejected.status().ToString();
  std::this_thread::sleep_for(10ms);  // a distinct modification time
  std::ofstream(token_path, std::ios::trunc) << service_account->bearer_token << "\n";
  StatusOr<Object> forbidden = (*client)->Get(resources::Namespaces(), "", "default");
  EXPECT_EQ(forbidden.status().code(), StatusCode::kPermissionDenied) << forbidden.status().ToString();
  EXPECT_EQ(ReasonOf(forbidden.status()), "Forbidden");
  std::filesystem::remove(token_path);
}

}  // namespace
}  // namespace mlscale::kube
