#include "mlscale/worker/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "batch_loader.h"
#include "compute_backend.h"
#include "mlscale/worker/checkpoint.h"
#include "mlscale/worker/dataset.h"
#include "mlscale/worker/model_artifact.h"

namespace mlscale::worker {

StatusOr<BackendChoice> ParseBackendChoice(std::string_view text) {
  if (text == "auto") return BackendChoice::kAuto;
  if (text == "cpu") return BackendChoice::kCpu;
  if (text == "gpu") return BackendChoice::kGpu;
  return InvalidArgument("--backend must be auto, cpu or gpu, not '" + std::string(text) + "'");
}

nlohmann::json TrainResult::ToJson() const {
  return {{"metrics", {{"testAccuracy", accuracy}, {"testLoss", test_loss}, {"loss", loss}}},
          {"loss", loss},
          {"testLoss", test_loss},
          {"accuracy", accuracy},
          {"steps", steps},
          {"totalSteps", total_steps},
          {"resumedFromStep", resumed_from_step},
          {"samplesPerSecond", samples_per_second},
          {"wallSeconds", wall_seconds},
          {"stopped", stopped},
          {"backend", backend},
          {"communicator", communicator},
          {"transport", transport},
          {"worldSize", world_size},
          {"dataset", dataset},
          {"phaseSeconds", phase_seconds.ToJson()}};
}

nlohmann::json StepPhaseSeconds::ToJson() const {
  return {{"data", data}, {"forward", forward}, {"backward", backward}, {"allReduceWait", all_reduce_wait},
          {"optimizer", optimizer}};
}

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// What a checkpoint must agree on with the running job to be resumed.
nlohmann::json CheckpointIdentity(const ModelSpec& spec, const TrainerConfig& config) {
  return {{"inputs", spec.inputs},
          {"hiddenLayers", spec.hidden},
          {"classes", spec.classes},
          {"optimizer", TrainerConfigToJson(config)["optimizer"]["name"]}};
}

class Trainer {
 public:
  Trainer(const TrainerConfig& config, Communicator& communicator, const TrainOptions& options)
      : config_(config), comm_(communicator), options_(options), started_(Clock::now()) {}

  StatusOr<TrainResult> Run() {
    WriteProgress("loading", 0, true);
    MLSCALE_RETURN_IF_ERROR(LoadData());
    MLSCALE_RETURN_IF_ERROR(CreateBackend());
    MLSCALE_RETURN_IF_ERROR(RestoreState());
    MLSCALE_RETURN_IF_ERROR(TrainSteps());
    if (!result_.stopped) MLSCALE_RETURN_IF_ERROR(Finish());
    result_.wall_seconds = Seconds(Clock::now() - started_);
    WriteProgress("done", result_.steps, true);
    return result_;
  }

 private:
  void Log(const std::string& line) {
    if (comm_.rank() != 0) return;
    if (options_.log) {
      options_.log(line);
    } else {
      std::fprintf(stderr, "mlscale-train: %s\n", line.c_str());
    }
  }

  // Every rank loads only its shard of the data (DataShard); the class count and the
  // standardization statistics are combined over the ranks.
  Status LoadData() {
    if (config_.batch_size < comm_.size()) {
      return InvalidArgument("trainer.batchSize: " + std::to_string(config_.batch_size) +
                             " is smaller than the number of ranks (" + std::to_string(comm_.size()) + ")");
    }
    const std::string data_dir = options_.data_dir.empty() ? BundledDataDir() : options_.data_dir;
    const DataShard shard{comm_.rank(), comm_.size(), config_.batch_size};
    auto data = LoadTrainTestData(config_.dataset, config_.test_fraction, config_.seed, data_dir, shard);
    if (!data.ok()) return data.status();
    data_ = std::move(*data);
    if (comm_.size() > 1) {
      int64_t classes = data_.train.classes;
      for (int root = 0; root < comm_.size(); ++root) {  // the largest over ranks
        int64_t theirs = data_.train.classes;
        MLSCALE_RETURN_IF_ERROR(comm_.Broadcast(&theirs, sizeof(theirs), root));
        classes = std::max(classes, theirs);
      }
      data_.train.classes = data_.test.classes = classes;
      MLSCALE_RETURN_IF_ERROR(CheckClassCount(data_));
    }
    std::vector<double> moments = FeatureMoments(data_.train);
    MLSCALE_RETURN_IF_ERROR(comm_.AllReduceSum(moments.data(), moments.size(), DataType::kFloat64));
    standardization_ = StandardizationFromMoments(moments, data_.train_samples);
    Standardize(standardization_, data_.train);
    Standardize(standardization_, data_.test);
    spec_ = ModelSpec::FromConfig(config_.model, data_.train.features, data_.train.classes);
    layout_ = ParameterLayout::For(spec_);
    steps_per_epoch_ = (data_.train_samples + config_.batch_size - 1) / config_.batch_size;
    result_.total_steps = steps_per_epoch_ * config_.epochs;
    result_.dataset = data_.name;
    result_.world_size = comm_.size();
    result_.communicator = std::string(comm_.name());
    result_.transport = std::string(comm_.transport());
    Log("data: " + data_.name + ": " + std::to_string(data_.train_samples) + " training and " +
        std::to_string(data_.test_samples) + " test samples (" + std::to_string(data_.train.samples) +
        " and " + std::to_string(data_.test.samples) + " on this rank), " + std::to_string(data_.train.features) +
        " features, " + std::to_string(data_.train.classes) + " classes; model " + std::to_string(layout_.parameter_count) +
        " parameters; " + std::to_string(result_.total_steps) + " steps of global batch " +
        std::to_string(config_.batch_size) + " on " + std::to_string(comm_.size()) + " rank(s)");
    return Status::Ok();
  }

  // The CPU threads of this rank; the default when TrainOptions::threads is 0 (trainer.h).
  int ChooseThreads() const {
    int threads = options_.threads;
    const char* omp = std::getenv("OMP_NUM_THREADS");
    if (threads == 0 && omp != nullptr && *omp != '\0') threads = std::max(1, std::atoi(omp));
    if (threads == 0) {
      const double flops_per_step = 6.0 * double(layout_.parameter_count) * double(config_.batch_size) / comm_.size();
      const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
      threads = flops_per_step < 5e7 ? 1 : std::max(1, cores / comm_.size());
    }
    return threads;
  }

  Status CreateBackend() {
    BackendOptions backend_options{spec_, layout_, config_, &comm_, options_.local_rank, ChooseThreads(),
                                   options_.shard_optimizer};
    bool gpu = options_.backend == BackendChoice::kGpu;
    std::string why;
    if (options_.backend == BackendChoice::kAuto) {
      gpu = VisibleGpuCount() > 0;
      why = gpu ? " (auto: a GPU is visible)"
                : GpuBackendCompiled() ? " (auto: no GPU visible)" : " (auto: built without the GPU backend)";
    }
    if (config_.precision == Precision::kBFloat16 && !gpu) {
      return InvalidArgument("trainer.precision: bfloat16 needs the GPU backend");
    }
    if (gpu) {
      auto backend = CreateGpuBackend(backend_options);
      if (!backend.ok()) return backend.status();
      backend_ = std::move(*backend);
    } else {
      backend_ = CreateCpuBackend(backend_options);
    }
    result_.backend = backend_->Describe();
    Log("backend: " + result_.backend + why + ", communicator " + std::string(comm_.name()) + " over " +
        std::string(comm_.transport()));
    return Status::Ok();
  }

  // Rank 0 resumes the newest valid checkpoint (or starts fresh) and broadcasts the
  // state, so every rank starts from identical parameters.
  Status RestoreState() {
    TrainingState state = InitialTrainingState(layout_, config_);
    if (comm_.rank() == 0 && !options_.checkpoint_dir.empty()) {
      auto checkpoint = LoadLatestCheckpoint(options_.checkpoint_dir, [&](const std::string& warning) {
        Log("warning: " + warning);
      });
      if (checkpoint.ok()) {
        const nlohmann::json expected = CheckpointIdentity(spec_, config_);
        if (checkpoint->metadata.value("model", nlohmann::json()) != expected ||
            checkpoint->state.parameters.size() != state.parameters.size() ||
            checkpoint->state.optimizer_state.size() != state.optimizer_state.size()) {
          return InvalidArgument("checkpoint '" + checkpoint->path + "' is of another model (" +
                                 checkpoint->metadata.value("model", nlohmann::json()).dump() + ", this job: " +
                                 expected.dump() + "); use another --checkpoint-dir");
        }
        state = std::move(checkpoint->state);
        Log("resuming from " + checkpoint->path + " at step " + std::to_string(state.step));
      }
    }
    int64_t step = state.step;
    MLSCALE_RETURN_IF_ERROR(comm_.Broadcast(&step, sizeof(step), 0));
    state.step = std::min(step, result_.total_steps);
    MLSCALE_RETURN_IF_ERROR(comm_.Broadcast(state.parameters.data(), state.parameters.size() * sizeof(float), 0));
    MLSCALE_RETURN_IF_ERROR(
        comm_.Broadcast(state.optimizer_state.data(), state.optimizer_state.size() * sizeof(float), 0));
    result_.resumed_from_step = state.step;
    result_.steps = state.step;
    return backend_->LoadState(state);
  }

  Status TrainSteps() {
    ShardSampler sampler(data_.train_samples, config_.batch_size, config_.seed, comm_.rank(), comm_.size());
    const int64_t first = result_.steps;
    BatchLoader loader(data_.train, sampler, first, result_.total_steps);
    const auto training_started = Clock::now();
    auto last_log = training_started;
    int64_t samples = 0;
    double epoch_loss = 0;
    int64_t epoch_steps = 0;
    for (int64_t step = first; step < result_.total_steps; ++step) {
      const auto waiting = Clock::now();
      Batch batch = loader.Next();
      result_.phase_seconds.data += Seconds(Clock::now() - waiting);
      const double lr = LearningRateAt(config_.optimizer, config_.schedule, step, result_.total_steps);
      const bool stop = (options_.stop_requested != nullptr && options_.stop_requested->load()) ||
                        (options_.stop_at_step >= 0 && step + 1 >= options_.stop_at_step);
      auto outcome = backend_->TrainStep(batch, lr, stop);
      if (!outcome.ok()) return outcome.status();
      AddPhases(outcome->phases);
      result_.steps = step + 1;
      result_.step_losses.push_back(outcome->loss);
      samples += batch.global_size;
      epoch_loss += outcome->loss;
      ++epoch_steps;
      const double elapsed = Seconds(Clock::now() - training_started);
      result_.samples_per_second = elapsed > 0 ? double(samples) / elapsed : 0;
      last_loss_ = outcome->loss;
      WriteProgress("training", result_.steps, step == first);  // at once, then about once a second
      if (Seconds(Clock::now() - last_log) >= config_.log_every_seconds) {
        last_log = Clock::now();
        char line[256];
        std::snprintf(line, sizeof(line), "step %lld/%lld epoch %lld/%lld loss %.4f lr %.3g %.0f samples/s",
                      static_cast<long long>(result_.steps), static_cast<long long>(result_.total_steps),
                      static_cast<long long>(step / steps_per_epoch_ + 1), static_cast<long long>(config_.epochs),
                      outcome->loss, lr, result_.samples_per_second);
        Log(line);
      }
      const bool epoch_end = result_.steps % steps_per_epoch_ == 0;
      if (epoch_end) {
        result_.loss = epoch_loss / double(epoch_steps);
        epoch_loss = 0;
        epoch_steps = 0;
        MLSCALE_RETURN_IF_ERROR(EvaluateTest());
        char line[256];
        std::snprintf(line, sizeof(line), "epoch %lld/%lld train loss %.4f test loss %.4f test accuracy %.2f %%",
                      static_cast<long long>(result_.steps / steps_per_epoch_), static_cast<long long>(config_.epochs),
                      result_.loss, result_.test_loss, 100 * result_.accuracy);
        Log(line);
      }
      if (outcome->stop_requested) {
        if (epoch_steps > 0) result_.loss = epoch_loss / double(epoch_steps);
        result_.stopped = true;
        Log("stopping at step " + std::to_string(result_.steps) + " as asked");
        return SaveCheckpoint();
      }
      if (config_.checkpoint_every_steps > 0 && result_.steps % config_.checkpoint_every_steps == 0) {
        MLSCALE_RETURN_IF_ERROR(SaveCheckpoint());
      }
    }
    return Status::Ok();
  }

  void AddPhases(const StepPhaseSeconds& step) {
    StepPhaseSeconds& sum = result_.phase_seconds;
    sum.forward += step.forward;
    sum.backward += step.backward;
    sum.all_reduce_wait += step.all_reduce_wait;
    sum.optimizer += step.optimizer;
  }

  // Every rank evaluates its shard of the test set; the totals are summed.
  Status EvaluateTest() {
    const int64_t n = data_.test_samples;
    auto totals = backend_->Evaluate(data_.test.x.data(), data_.test.y.data(), data_.test.samples);
    if (!totals.ok()) return totals.status();
    double sums[2] = {totals->loss_sum, totals->correct};
    MLSCALE_RETURN_IF_ERROR(comm_.AllReduceSum(sums, 2, DataType::kFloat64));
    result_.test_loss = sums[0] / double(n);
    result_.accuracy = sums[1] / double(n);
    evaluated_at_step_ = result_.steps;
    return Status::Ok();
  }

  // Every rank calls it (the backend may gather state kept in shares); rank 0 writes.
  Status SaveCheckpoint() {
    MLSCALE_RETURN_IF_ERROR(backend_->GatherState());
    checkpoint_step_ = result_.steps;  // on every rank, so that all agree whether Finish saves
    if (comm_.rank() != 0 || options_.checkpoint_dir.empty()) return Status::Ok();
    TrainingState state;
    MLSCALE_RETURN_IF_ERROR(backend_->StoreState(state));
    nlohmann::json metadata = {{"model", CheckpointIdentity(spec_, config_)},
                               {"hyperparameters", TrainerConfigToJson(config_)},
                               {"worldSize", comm_.size()}};
    auto path = WriteCheckpoint(options_.checkpoint_dir, state, metadata);
    if (!path.ok()) return path.status().WithContext("writing a checkpoint");
    Log("checkpoint " + *path);
    return Status::Ok();
  }

  Status Finish() {
    if (evaluated_at_step_ != result_.steps) MLSCALE_RETURN_IF_ERROR(EvaluateTest());
    if (checkpoint_step_ != result_.steps) MLSCALE_RETURN_IF_ERROR(SaveCheckpoint());
    if (comm_.rank() != 0) return Status::Ok();
    if (options_.output_dir.empty()) return Status::Ok();
    ModelArtifact artifact;
    artifact.spec = spec_;
    artifact.standardization = standardization_;
    TrainingState state;
    MLSCALE_RETURN_IF_ERROR(backend_->StoreState(state));
    artifact.parameters = std::move(state.parameters);
    nlohmann::json metrics = result_.ToJson();
    metrics["wallSeconds"] = Seconds(Clock::now() - started_);
    artifact.metadata = {{"dataset", data_.name},
                         {"trainSamples", data_.train_samples},
                         {"testSamples", data_.test_samples},
                         {"hyperparameters", TrainerConfigToJson(config_)},
                         {"metrics", metrics},
                         {"trainer", {{"name", "mlscale-train"}, {"version", MLSCALE_VERSION}}}};
    MLSCALE_RETURN_IF_ERROR(WriteModelArtifact(options_.output_dir, artifact));
    Log("model written to " + options_.output_dir);
    return Status::Ok();
  }

  // Rank 0 rewrites the progress file at most about once a second (and at phase changes).
  void WriteProgress(const char* phase, int64_t step, bool force) {
    if (comm_.rank() != 0 || options_.progress_file.empty()) return;
    const auto now = Clock::now();
    if (!force && Seconds(now - last_progress_) < 1.0) return;
    last_progress_ = now;
    const double elapsed = Seconds(now - started_);
    const int64_t remaining = std::max<int64_t>(0, result_.total_steps - step);
    const double steps_per_second =
        result_.samples_per_second > 0 ? result_.samples_per_second / double(config_.batch_size) : 0;
    nlohmann::json progress = {{"step", step},
                               {"totalSteps", result_.total_steps},
                               {"epoch", steps_per_epoch_ > 0 ? std::min(config_.epochs, step / steps_per_epoch_ + 1) : 0},
                               {"epochs", config_.epochs},
                               {"loss", last_loss_},
                               {"samplesPerSecond", result_.samples_per_second},
                               {"etaSeconds", steps_per_second > 0 ? double(remaining) / steps_per_second : 0.0},
                               {"elapsedSeconds", elapsed},
                               {"phase", phase}};
    // The latest test-set evaluation (each epoch's end) with the result's metric names:
    // what a sweep judges a trial by before it ends (its objective at that step).
    if (evaluated_at_step_ > 0) {
      progress["evaluation"] = {{"step", evaluated_at_step_}, {"metrics", result_.ToJson()["metrics"]}};
    }
    // Progress is best effort: a full disk must not stop training.
    (void)WriteFileAtomically(options_.progress_file, progress.dump() + "\n");
  }

  const TrainerConfig& config_;
  Communicator& comm_;
  const TrainOptions& options_;
  const Clock::time_point started_;
  Clock::time_point last_progress_{};
  TrainTestData data_;
  Standardization standardization_;
  ModelSpec spec_;
  ParameterLayout layout_;
  int64_t steps_per_epoch_ = 1;
  std::unique_ptr<ComputeBackend> backend_;
  TrainResult result_;
  double last_loss_ = 0;
  int64_t evaluated_at_step_ = -1;
  int64_t checkpoint_step_ = -1;
};

}  // namespace

StatusOr<TrainResult> Train(const TrainerConfig& config, Communicator& communicator, const TrainOptions& options) {
  return Trainer(config, communicator, options).Run();
}

}  // namespace mlscale::worker
