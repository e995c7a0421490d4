// The model repository: layout, newest version unless pinned, refused artifacts that leave
// the rest serving, reload of a new version, vanished models.
#include "mlscale/serve/model_repository.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>

#include "artifacts.h"

namespace mlscale::serve {
namespace {

namespace fs = std::filesystem;

class ModelRepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::temp_directory_path() / ("mlscale-repo-" + std::to_string(::getpid()))).string();
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  void Write(const std::string& relative, int64_t inputs, uint64_t seed = 1) {
    testing::WriteArtifact(root_ + "/" + relative, testing::MakeArtifact(inputs, {6}, 3, seed));
  }
  std::unique_ptr<ModelRepository> Open(RepositoryOptions options = {}) {
    if (options.repository.empty() && options.models.empty()) options.repository = root_;
    return std::make_unique<ModelRepository>(options, metrics_, [this](const std::string& line) { log_ += line + "\n"; });
  }
  int64_t Serving(const ModelRepository& repository, const std::string& name) {
    auto found = repository.Find(name, -1);
    return found.ok() ? (*found)->version : -1;
  }

  std::string root_;
  std::string log_;
  ServeMetrics metrics_;
};

TEST_F(ModelRepositoryTest, ServesTheNewestVersionOfEachModel) {
  Write("digits/1", 4);
  Write("digits/3", 5);
  Write("digits/20", 6);
  Write("other/7", 4);
  fs::create_directories(root_ + "/digits/not-a-version");
  fs::create_directories(root_ + "/.hidden/1");
  auto repository = Open();
  ASSERT_TRUE(repository->CheckOptions().ok());
  repository->Refresh();
  EXPECT_EQ(Serving(*repository, "digits"), 20);  // numerically newest, not "3" > "20"
  EXPECT_EQ((*repository->Find("digits", -1))->model->inputs(), 6);
  EXPECT_EQ(Serving(*repository, "other"), 7);
  EXPECT_TRUE(repository->AllReady());
  EXPECT_EQ(repository->Statuses().size(), 2u);
  auto old_version = repository->Find("digits", 3);
  ASSERT_FALSE(old_version.ok());
  EXPECT_EQ(old_version.status().code(), StatusCode::kNotFound);
  EXPECT_NE(old_version.status().message().find("serving version 20"), std::string::npos);
  auto unknown = repository->Find("nope", -1);
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
}

TEST_F(ModelRepositoryTest, PinnedVersionIsServedInsteadOfTheNewest) {
  Write("digits/1", 4);
  Write("digits/2", 5);
  RepositoryOptions options;
  options.repository = root_;
  options.pinned_versions["digits"] = 1;
  auto repository = Open(options);
  repository->Refresh();
  EXPECT_EQ(Serving(*repository, "digits"), 1);
  RepositoryOptions missing = options;
  missing.pinned_versions["digits"] = 9;
  auto pinned_missing = Open(missing);
  pinned_missing->Refresh();
  auto found = pinned_missing->Find("digits", -1);
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(found.status().message().find("pinned version 9 not found"), std::string::npos);
}

TEST_F(ModelRepositoryTest, CorruptModelIsNotReadyWhileOthersServe) {
  Write("good/1", 4);
  Write("bad/1", 4);
  fs::resize_file(root_ + "/bad/1/weights.bin", 10);
  auto repository = Open();
  repository->Refresh();
  EXPECT_EQ(Serving(*repository, "good"), 1);
  auto bad = repository->Find("bad", -1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(bad.status().message().find("version 1 refused"), std::string::npos) << bad.status().message();
  EXPECT_NE(bad.status().message().find("SHA-256"), std::string::npos);
  EXPECT_FALSE(repository->AllReady());
  EXPECT_NE(log_.find("model bad: version 1 refused"), std::string::npos) << log_;
  EXPECT_EQ(metrics_.ForModel("bad").load_failures.load(), 1u);
  // Unchanged files are not read again on the next refresh; fixed files are.
  repository->Refresh();
  EXPECT_EQ(metrics_.ForModel("bad").load_failures.load(), 1u);
  Write("bad/1", 4, 2);
  repository->Refresh();
  EXPECT_EQ(Serving(*repository, "bad"), 1);
  EXPECT_TRUE(repository->AllReady());
}

TEST_F(ModelRepositoryTest, NewVersionIsSwappedInAndARefusedOneKeepsTheOld) {
  Write("digits/1", 4);
  auto repository = Open();
  repository->Refresh();
  auto held = repository->Find("digits", -1);  // a request in flight on version 1
  ASSERT_TRUE(held.ok());

  Write("digits/2", 5);
  repository->Refresh();
  EXPECT_EQ(Serving(*repository, "digits"), 2);
  EXPECT_EQ((*held)->version, 1);  // the old version stays usable by whoever holds it
  std::vector<float> probabilities;
  std::vector<int64_t> predicted;
  const float row[4] = {1, 2, 3, 4};
  (*held)->model->Predict(row, 1, probabilities, predicted);
  EXPECT_EQ(probabilities.size(), 3u);

  // A corrupt version 3 is refused; version 2 goes on serving and the error is reported.
  fs::create_directories(root_ + "/digits/3");
  std::ofstream(root_ + "/digits/3/model.json") << "{\"format\": \"mlscale-mlp\", \"formatVersion\": 1}";
  repository->Refresh();
  EXPECT_EQ(Serving(*repository, "digits"), 2);
  auto statuses = repository->Statuses();
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_EQ(statuses[0].serving_version, 2);
  EXPECT_NE(statuses[0].error.find("version 3 refused"), std::string::npos) << statuses[0].error;
  EXPECT_EQ(statuses[0].versions_found, (std::vector<int64_t>{1, 2, 3}));
}

TEST_F(ModelRepositoryTest, ModelsByPathAndVanishedModels) {
  Write("single", 4);  // an artifact folder itself: version 1
  Write("repo/m/5", 4);
  RepositoryOptions options;
  options.repository = root_ + "/repo";
  options.models = {{"direct", root_ + "/single"}};
  auto repository = Open(options);
  repository->Refresh();
  EXPECT_EQ(Serving(*repository, "direct"), 1);
  EXPECT_EQ(Serving(*repository, "m"), 5);
  fs::remove_all(root_ + "/repo/m");
  repository->Refresh();
  EXPECT_EQ(repository->Find("m", -1).status().code(), StatusCode::kNotFound);
  EXPECT_NE(log_.find("model m: its folder is gone"), std::string::npos) << log_;
}

TEST_F(ModelRepositoryTest, OptionsNamingNothingOrUnknownModelsAreRefused) {
  ServeMetrics metrics;
  ModelRepository none(RepositoryOptions{}, metrics, [](const std::string&) {});
  EXPECT_EQ(none.CheckOptions().code(), StatusCode::kInvalidArgument);
  RepositoryOptions missing;
  missing.repository = root_ + "/absent";
  EXPECT_NE(Open(missing)->CheckOptions().message().find("is not a folder"), std::string::npos);
  Write("digits/1", 4);
  RepositoryOptions pin;
  pin.repository = root_;
  pin.pinned_versions["typo"] = 1;
  auto repository = Open(pin);
  repository->Refresh();
  EXPECT_NE(repository->CheckOptions().message().find("--pin typo=1: no such model"), std::string::npos);
}

TEST_F(ModelRepositoryTest, BatchedModelsAnswerThroughTheirBatcher) {
  Write("digits/1", 4);
  RepositoryOptions options;
  options.repository = root_;
  options.batching.max_batch_size = 8;
  options.batching.max_queue_delay = std::chrono::microseconds(50'000);  // wide: the machine may be busy
  options.batching.threads = 2;
  auto repository = Open(options);
  repository->Refresh();
  auto served = repository->Find("digits", -1);
  ASSERT_TRUE(served.ok());
  ASSERT_NE((*served)->batcher, nullptr);
  std::mutex mutex;
  std::condition_variable done;
  int answered = 0;
  std::vector<int64_t> classes(6, -1);
  // Six requests arriving together (announced before any is submitted, as the service
  // announces each before parsing it).
  std::vector<Batcher::Arrival> arrivals;
  for (int i = 0; i < 6; ++i) arrivals.push_back((*served)->batcher->Announce());
  for (int i = 0; i < 6; ++i) {
    std::vector<float> row = {float(i), 1, 2, 3};
    ASSERT_TRUE((*served)->batcher->Submit(
        row, 1,
        [&, i](const float*, const int64_t* predicted, std::chrono::nanoseconds) {
          std::lock_guard lock(mutex);
          classes[size_t(i)] = predicted[0];
          ++answered;
          done.notify_all();
        },
        arrivals[size_t(i)]));
  }
  std::unique_lock lock(mutex);
  ASSERT_TRUE(done.wait_for(lock, std::chrono::seconds(5), [&] { return answered == 6; }));
  // Each row got its own answer: the same as predicting it alone.
  for (int i = 0; i < 6; ++i) {
    std::vector<float> probabilities;
    std::vector<int64_t> predicted;
    const float row[4] = {float(i), 1, 2, 3};
    (*served)->model->Predict(row, 1, probabilities, predicted);
    EXPECT_EQ(classes[size_t(i)], predicted[0]) << i;
  }
  lock.unlock();
  // Rows were batched: fewer forward passes than requests.
  const std::string metrics = metrics_.Render();
  const std::string count_line = "mlscale_serve_batch_size_count{model=\"digits\"} ";
  auto at = metrics.find(count_line);
  ASSERT_NE(at, std::string::npos) << metrics;
  EXPECT_LT(std::stoi(metrics.substr(at + count_line.size())), 6) << metrics;
}

TEST_F(ModelRepositoryTest, ALoneRequestDoesNotWaitForTheQueueDelay) {
  Write("digits/1", 4);
  RepositoryOptions options;
  options.repository = root_;
  options.batching.max_batch_size = 8;
  options.batching.max_queue_delay = std::chrono::seconds(30);  // a wait would be unmistakable
  auto repository = Open(options);
  repository->Refresh();
  auto served = repository->Find("digits", -1);
  ASSERT_TRUE(served.ok());
  std::promise<void> answered;
  auto arrival = (*served)->batcher->Announce();
  ASSERT_TRUE((*served)->batcher->Submit({1, 2, 3, 4}, 1,
                                         [&](const float*, const int64_t*, std::chrono::nanoseconds) { answered.set_value(); },
                                         arrival));
  EXPECT_EQ(answered.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
}

}  // namespace
}  // namespace mlscale::serve
