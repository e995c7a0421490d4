// The GPU backend: cuBLAS for the matrix products, the per-element kernels of
// kernel_math.h, NCCL for the gradient AllReduce on a second stream so it overlaps the
// backward pass, one GPU per rank (LOCAL_RANK). With precision bfloat16 the products run
// on bf16 tensor cores (CUBLAS_COMPUTE_32F_FAST_16BF); weights, activations and the
// AllReduce stay float32. The NCCL unique id goes from rank 0 to the others over the
// job's communicator (the TCP peer table, or MPI). C++17: compiled by nvcc.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>
#include <string>
#include <vector>

#include "bucket_plan.h"
#include "compute_backend.h"
#include "kernel_math.h"
#include "mlscale/worker/trainer.h"

namespace mlscale::worker {
namespace {

Status CudaStatus(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return Status::Ok();
  return Internal(std::string(what) + ": " + cudaGetErrorString(error));
}
Status CublasStatus(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return Status::Ok();
  return Internal(std::string(what) + ": cuBLAS error " + std::to_string(int(status)));
}
Status NcclStatus(ncclResult_t result, const char* what) {
  if (result == ncclSuccess) return Status::Ok();
  return Status(StatusCode::kAborted, std::string(what) + ": " + ncclGetErrorString(result));
}

// Device memory of `count` elements of T.
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  Status Allocate(size_t count) {
    void* p = nullptr;
    MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaMalloc(&p, std::max<size_t>(1, count) * sizeof(T)), "cudaMalloc"));
    memory_.reset(static_cast<T*>(p));
    count_ = count;
    return Status::Ok();
  }
  // Grows to at least `count` elements (contents are not kept).
  Status Reserve(size_t count) { return count <= count_ ? Status::Ok() : Allocate(count); }
  T* get() const { return memory_.get(); }
  size_t size() const { return count_; }

 private:
  struct Free {
    void operator()(T* p) const { cudaFree(p); }
  };
  std::unique_ptr<T, Free> memory_;
  size_t count_ = 0;
};

constexpr int kThreads = 256;
unsigned Blocks(int64_t n) { return unsigned((n + kThreads - 1) / kThreads); }

// z += bias; for hidden layers a = activation(z) * dropout.
__global__ void BiasActivate(float* z, float* a, const float* bias, int64_t rows, int64_t cols, int activation,
                             bool hidden, uint64_t seed, int64_t step, int layer, const int64_t* positions, float p) {
  const int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= rows * cols) return;
  const int64_t i = k % rows, j = k / rows;
  const float value = z[k] + bias[i];
  z[k] = value;
  if (!hidden) return;
  float out = kernels::Activate(activation, value);
  if (positions != nullptr && p > 0.0f) out *= kernels::DropoutScale(seed, step, layer, positions[j], i, p);
  a[k] = out;
}

// delta *= activation'(z) * dropout (the same mask as forward, recomputed from its hash).
__global__ void ActivationBackward(float* delta, const float* z, int64_t rows, int64_t cols, int activation,
                                   uint64_t seed, int64_t step, int layer, const int64_t* positions, float p) {
  const int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= rows * cols) return;
  const int64_t i = k % rows, j = k / rows;
  float slope = kernels::ActivationSlope(activation, z[k]);
  if (p > 0.0f) slope *= kernels::DropoutScale(seed, step, layer, positions[j], i, p);
  delta[k] *= slope;
}

// Per sample: softmax cross-entropy; logits become the loss gradient times `scale`, the
// scaled loss is added to *loss.
__global__ void SoftmaxCrossEntropy(float* logits, const int32_t* labels, int64_t classes, int64_t n, float scale,
                                    float* loss) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= n) return;
  float* column = logits + j * classes;
  float max = column[0];
  for (int64_t c = 1; c < classes; ++c) max = fmaxf(max, column[c]);
  float sum = 0.0f;
  for (int64_t c = 0; c < classes; ++c) sum += expf(column[c] - max);
  const int32_t label = labels[j];
  atomicAdd(loss, (logf(sum) + max - column[label]) * scale);
  for (int64_t c = 0; c < classes; ++c) {
    const float probability = expf(column[c] - max) / sum;
    column[c] = (probability - (c == label ? 1.0f : 0.0f)) * scale;
  }
}

__global__ void Update(kernels::UpdateParameters u, float* parameters, const float* gradients, float* state) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < u.parameters) kernels::UpdateParameter(u, parameters[i], gradients[i], state, i);
}

__global__ void Fill(float* data, int64_t n, float value) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) data[i] = value;
}

class GpuBackend final : public ComputeBackend {
 public:
  explicit GpuBackend(const BackendOptions& options)
      : options_(options), layout_(options.layout),
        plan_(size_t(std::max<int64_t>(1, options.config.bucket_bytes / 4))) {}

  ~GpuBackend() override {
    if (nccl_ != nullptr) ncclCommDestroy(nccl_);
    if (cublas_ != nullptr) cublasDestroy(cublas_);
    for (cudaEvent_t e : layer_done_) cudaEventDestroy(e);
    if (reduced_ != nullptr) cudaEventDestroy(reduced_);
    if (compute_ != nullptr) cudaStreamDestroy(compute_);
    if (communicate_ != nullptr) cudaStreamDestroy(communicate_);
  }

  Status Initialize() {
    int devices = 0;
    const cudaError_t found = cudaGetDeviceCount(&devices);
    if (found != cudaSuccess || devices == 0) {
      return FailedPrecondition(std::string("--backend gpu: no GPU is visible (cudaGetDeviceCount: ") +
                                (found != cudaSuccess ? cudaGetErrorString(found) : "0 devices") + ")");
    }
    device_ = options_.local_rank % devices;
    MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(device_), "cudaSetDevice"));
    cudaDeviceProp properties{};
    MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaGetDeviceProperties(&properties, device_), "cudaGetDeviceProperties"));
    device_name_ = properties.name;
    MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaStreamCreateWithFlags(&compute_, cudaStreamNonBlocking), "stream"));
    MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaStreamCreateWithFlags(&communicate_, cudaStreamNonBlocking), "stream"));
    layer_done_.resize(layout_.layers.size());
    for (cudaEvent_t& e : layer_done_) {
      MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "event"));
    }
    MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaEventCreateWithFlags(&reduced_, cudaEventDisableTiming), "event"));
    MLSCALE_RETURN_IF_ERROR(CublasStatus(cublasCreate(&cublas_), "cublasCreate"));
    MLSCALE_RETURN_IF_ERROR(CublasStatus(cublasSetStream(cublas_, compute_), "cublasSetStream"));
    const int64_t p = layout_.parameter_count;
    MLSCALE_RETURN_IF_ERROR(parameters_.Allocate(size_t(p)));
    MLSCALE_RETURN_IF_ERROR(gradients_.Allocate(size_t(p + kExtraSlots)));
    MLSCALE_RETURN_IF_ERROR(state_.Allocate(size_t(p * OptimizerStateSlots(options_.config.optimizer.name))));
    pre_activations_.resize(layout_.layers.size());
    activations_.resize(layout_.layers.size());
    Communicator& comm = *options_.communicator;
    if (comm.size() > 1) {
      ncclUniqueId id{};
      if (comm.rank() == 0) MLSCALE_RETURN_IF_ERROR(NcclStatus(ncclGetUniqueId(&id), "ncclGetUniqueId"));
      MLSCALE_RETURN_IF_ERROR(comm.Broadcast(&id, sizeof(id), 0));
      MLSCALE_RETURN_IF_ERROR(NcclStatus(ncclCommInitRank(&nccl_, comm.size(), id, comm.rank()), "ncclCommInitRank"));
    }
    return Status::Ok();
  }

  std::string Describe() const override {
    return "gpu (" + device_name_ + ", device " + std::to_string(device_) +
           (options_.config.precision == Precision::kBFloat16 ? ", bf16 matrix products)" : ", float32)");
  }

  Status LoadState(const TrainingState& state) override {
    step_ = state.step;
    MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaMemcpy(parameters_.get(), state.parameters.data(),
                                                  state.parameters.size() * sizeof(float), cudaMemcpyHostToDevice),
                                       "copying parameters"));
    return CudaStatus(cudaMemcpy(state_.get(), state.optimizer_state.data(),
                                 state.optimizer_state.size() * sizeof(float), cudaMemcpyHostToDevice),
                      "copying optimizer state");
  }

  Status StoreState(TrainingState& state) override {
    state.step = step_;
    state.parameters.resize(parameters_.size());
    state.optimizer_state.resize(state_.size());
    MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(compute_), "synchronize"));
    MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaMemcpy(state.parameters.data(), parameters_.get(),
                                                  parameters_.size() * sizeof(float), cudaMemcpyDeviceToHost),
                                       "copying parameters"));
    return CudaStatus(cudaMemcpy(state.optimizer_state.data(), state_.get(), state_.size() * sizeof(float),
                                 cudaMemcpyDeviceToHost),
                      "copying optimizer state");
  }

  StatusOr<StepResult> TrainStep(const Batch& batch, double learning_rate, bool stop_requested) override {
    const int64_t p = layout_.parameter_count, n = batch.size();
    MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaMemsetAsync(gradients_.get(), 0, gradients_.size() * sizeof(float), compute_),
                                       "memset"));
    Fill<<<1, 1, 0, compute_>>>(gradients_.get() + p + kStopSlot, 1, stop_requested ? 1.0f : 0.0f);
    plan_.Reset(size_t(p + kExtraSlots));
    if (n > 0) {
      MLSCALE_RETURN_IF_ERROR(Upload(batch.x.data(), batch.y.data(), batch.positions.data(), n));
      MLSCALE_RETURN_IF_ERROR(Forward(n, &batch));
      SoftmaxCrossEntropy<<<Blocks(n), kThreads, 0, compute_>>>(pre_activations_.back().get(), labels_.get(),
                                                                 options_.spec.classes, n,
                                                                 1.0f / float(batch.global_size),
                                                                 gradients_.get() + p + kLossSlot);
      MLSCALE_RETURN_IF_ERROR(Backward(n, batch.step));
    }
    MLSCALE_RETURN_IF_ERROR(ReduceReady(0, int(layout_.layers.size()) - 1));
    // The optimizer waits for the last bucket.
    MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaEventRecord(reduced_, communicate_), "event"));
    MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaStreamWaitEvent(compute_, reduced_, 0), "wait"));
    ++step_;
    const kernels::UpdateParameters u = MakeUpdateParameters(options_.config.optimizer, learning_rate, step_, p);
    Update<<<Blocks(p), kThreads, 0, compute_>>>(u, parameters_.get(), gradients_.get(), state_.get());
    float extra[kExtraSlots];
    MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(extra, gradients_.get() + p, sizeof(extra),
                                                       cudaMemcpyDeviceToHost, compute_), "copying the loss"));
    MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(compute_), "training step"));
    return StepResult{extra[kLossSlot], extra[kStopSlot] > 0.5f, {}};
  }

  StatusOr<EvaluationTotals> Evaluate(const float* x, const int32_t* y, int64_t count) override {
    EvaluationTotals totals;
    const int64_t chunk = 4096, classes = options_.spec.classes;
    std::vector<float> logits;
    for (int64_t first = 0; first < count; first += chunk) {
      const int64_t n = std::min(chunk, count - first);
      MLSCALE_RETURN_IF_ERROR(Upload(x + first * layout_.layers[0].in, nullptr, nullptr, n));
      MLSCALE_RETURN_IF_ERROR(Forward(n, nullptr));
      logits.resize(size_t(classes * n));
      MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(logits.data(), pre_activations_.back().get(),
                                                         logits.size() * sizeof(float), cudaMemcpyDeviceToHost,
                                                         compute_), "copying logits"));
      MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaStreamSynchronize(compute_), "evaluation"));
      for (int64_t j = 0; j < n; ++j) {
        const float* column = logits.data() + j * classes;
        int64_t best = 0;
        for (int64_t c = 1; c < classes; ++c) best = column[c] > column[best] ? c : best;
        double sum = 0;
        for (int64_t c = 0; c < classes; ++c) sum += std::exp(double(column[c] - column[best]));
        const int32_t label = y[first + j];
        totals.loss_sum += std::log(sum) + double(column[best] - column[label]);
        totals.correct += best == label ? 1 : 0;
      }
    }
    return totals;
  }

 private:
  Status Upload(const float* x, const int32_t* y, const int64_t* positions, int64_t n) {
    const int64_t in = layout_.layers[0].in;
    MLSCALE_RETURN_IF_ERROR(input_.Reserve(size_t(in * n)));
    MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(input_.get(), x, size_t(in * n) * sizeof(float),
                                                       cudaMemcpyHostToDevice, compute_), "copying the batch"));
    if (y != nullptr) {
      MLSCALE_RETURN_IF_ERROR(labels_.Reserve(size_t(n)));
      MLSCALE_RETURN_IF_ERROR(positions_.Reserve(size_t(n)));
      MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(labels_.get(), y, size_t(n) * sizeof(int32_t),
                                                         cudaMemcpyHostToDevice, compute_), "copying labels"));
      MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaMemcpyAsync(positions_.get(), positions, size_t(n) * sizeof(int64_t),
                                                         cudaMemcpyHostToDevice, compute_), "copying positions"));
    }
    return Status::Ok();
  }

  // C (m x n) = op(A) * op(B) (+ beta C), column-major, on the compute stream.
  Status Gemm(cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n, int64_t k, const float* a,
              int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc) {
    const float one = 1.0f, zero = 0.0f;
    const cublasComputeType_t compute =
        options_.config.precision == Precision::kBFloat16 ? CUBLAS_COMPUTE_32F_FAST_16BF : CUBLAS_COMPUTE_32F;
    return CublasStatus(cublasGemmEx(cublas_, ta, tb, int(m), int(n), int(k), &one, a, CUDA_R_32F, int(lda), b,
                                     CUDA_R_32F, int(ldb), &zero, c, CUDA_R_32F, int(ldc), compute,
                                     CUBLAS_GEMM_DEFAULT),
                        "cublasGemmEx");
  }

  Status Forward(int64_t n, const Batch* batch) {
    const int layers = int(layout_.layers.size());
    const float p = batch != nullptr ? float(options_.spec.dropout) : 0.0f;
    const float* input = input_.get();
    for (int l = 0; l < layers; ++l) {
      const LayerLayout& layer = layout_.layers[size_t(l)];
      MLSCALE_RETURN_IF_ERROR(pre_activations_[size_t(l)].Reserve(size_t(layer.out * n)));
      MLSCALE_RETURN_IF_ERROR(activations_[size_t(l)].Reserve(size_t(layer.out * n)));
      float* z = pre_activations_[size_t(l)].get();
      MLSCALE_RETURN_IF_ERROR(Gemm(CUBLAS_OP_N, CUBLAS_OP_N, layer.out, n, layer.in,
                                   parameters_.get() + layer.weight_offset, layer.out, input, layer.in, z, layer.out));
      BiasActivate<<<Blocks(layer.out * n), kThreads, 0, compute_>>>(
          z, activations_[size_t(l)].get(), parameters_.get() + layer.bias_offset, layer.out, n,
          int(options_.spec.activation), l + 1 < layers, options_.config.seed, batch != nullptr ? batch->step : 0, l,
          batch != nullptr ? positions_.get() : nullptr, p);
      input = activations_[size_t(l)].get();
    }
    return CudaStatus(cudaGetLastError(), "forward kernels");
  }

  // Back-propagates the logits' gradient; after each layer its gradients are handed to
  // NCCL on the communication stream while the earlier layers compute.
  Status Backward(int64_t n, int64_t step) {
    MLSCALE_RETURN_IF_ERROR(ones_.Reserve(size_t(n)));
    Fill<<<Blocks(n), kThreads, 0, compute_>>>(ones_.get(), n, 1.0f);
    for (int l = int(layout_.layers.size()) - 1; l >= 0; --l) {
      const LayerLayout& layer = layout_.layers[size_t(l)];
      float* delta = pre_activations_[size_t(l)].get();
      const float* input = l == 0 ? input_.get() : activations_[size_t(l - 1)].get();
      MLSCALE_RETURN_IF_ERROR(Gemm(CUBLAS_OP_N, CUBLAS_OP_T, layer.out, layer.in, n, delta, layer.out, input, layer.in,
                                   gradients_.get() + layer.weight_offset, layer.out));
      const float one = 1.0f, zero = 0.0f;
      MLSCALE_RETURN_IF_ERROR(CublasStatus(cublasSgemv(cublas_, CUBLAS_OP_N, int(layer.out), int(n), &one, delta,
                                                       int(layer.out), ones_.get(), 1, &zero,
                                                       gradients_.get() + layer.bias_offset, 1), "cublasSgemv"));
      if (l > 0) {
        // delta of layer l-1 = (W^T delta) * activation'(z) * dropout, computed in scratch_,
        // which then takes the place of the layer's pre-activations (no longer needed).
        MLSCALE_RETURN_IF_ERROR(scratch_.Reserve(size_t(layer.in * n)));
        MLSCALE_RETURN_IF_ERROR(Gemm(CUBLAS_OP_T, CUBLAS_OP_N, layer.in, n, layer.out,
                                     parameters_.get() + layer.weight_offset, layer.out, delta, layer.out,
                                     scratch_.get(), layer.in));
        float* z = pre_activations_[size_t(l - 1)].get();
        ActivationBackward<<<Blocks(layer.in * n), kThreads, 0, compute_>>>(
            scratch_.get(), z, layer.in, n, int(options_.spec.activation), options_.config.seed, step, l - 1,
            positions_.get(), float(options_.spec.dropout));
        std::swap(pre_activations_[size_t(l - 1)], scratch_);
      }
      MLSCALE_RETURN_IF_ERROR(ReduceReady(size_t(layer.weight_offset), l));
    }
    return CudaStatus(cudaGetLastError(), "backward kernels");
  }

  // Starts the AllReduce of every bucket now complete from `offset` on, after layer
  // `layer`'s kernels.
  Status ReduceReady(size_t offset, int layer) {
    if (nccl_ == nullptr) return Status::Ok();
    MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaEventRecord(layer_done_[size_t(layer)], compute_), "event"));
    MLSCALE_RETURN_IF_ERROR(CudaStatus(cudaStreamWaitEvent(communicate_, layer_done_[size_t(layer)], 0), "wait"));
    ncclResult_t result = ncclSuccess;
    plan_.ReadyFrom(offset, [&](size_t begin, size_t end) {
      if (result == ncclSuccess) {
        result = ncclAllReduce(gradients_.get() + begin, gradients_.get() + begin, end - begin, ncclFloat, ncclSum,
                               nccl_, communicate_);
      }
    });
    return NcclStatus(result, "ncclAllReduce");
  }

  BackendOptions options_;
  ParameterLayout layout_;
  BucketPlan plan_;
  int device_ = 0;
  std::string device_name_;
  int64_t step_ = 0;
  cudaStream_t compute_ = nullptr, communicate_ = nullptr;
  std::vector<cudaEvent_t> layer_done_;
  cudaEvent_t reduced_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  ncclComm_t nccl_ = nullptr;
  DeviceArray<float> parameters_, gradients_, state_, input_, ones_, scratch_;
  DeviceArray<int32_t> labels_;
  DeviceArray<int64_t> positions_;
  std::vector<DeviceArray<float>> pre_activations_, activations_;
};

}  // namespace

bool GpuBackendCompiled() { return true; }

int VisibleGpuCount() {
  int devices = 0;
  return cudaGetDeviceCount(&devices) == cudaSuccess ? devices : 0;
}

StatusOr<std::unique_ptr<ComputeBackend>> CreateGpuBackend(const BackendOptions& options) {
  auto backend = std::make_unique<GpuBackend>(options);
  MLSCALE_RETURN_IF_ERROR(backend->Initialize());
  return std::unique_ptr<ComputeBackend>(std::move(backend));
}

}  // namespace mlscale::worker
