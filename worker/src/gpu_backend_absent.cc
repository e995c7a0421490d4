// Built when CUDA, cuBLAS or NCCL were not found: there is no GPU backend in this binary.
#include "compute_backend.h"
#include "mlscale/worker/trainer.h"

namespace mlscale::worker {

bool GpuBackendCompiled() { return false; }
int VisibleGpuCount() { return 0; }

StatusOr<std::unique_ptr<ComputeBackend>> CreateGpuBackend(const BackendOptions&) {
  return InvalidArgument("--backend gpu: this mlscale-train was built without the GPU backend "
                         "(CUDA, cuBLAS and NCCL were not found at build time)");
}

}  // namespace mlscale::worker
