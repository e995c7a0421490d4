#include "dense_products.h"

#include <dnnl.h>
#include <omp.h>

#include <string>

namespace mlscale::worker {

Status MultiplyColumnMajor(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, const float* a,
                           int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc) {
  // dnnl_sgemm is row-major, and a column-major matrix is its row-major transpose:
  // C^T (n x m) = op(B)^T op(A)^T.
  const dnnl_status_t status =
      dnnl_sgemm(transpose_b ? 'T' : 'N', transpose_a ? 'T' : 'N', n, m, k, 1.0f, b, ldb, a, lda, 0.0f, c, ldc);
  if (status == dnnl_success) return Status::Ok();
  return Internal("oneDNN dnnl_sgemm of " + std::to_string(m) + " x " + std::to_string(k) + " by " +
                  std::to_string(k) + " x " + std::to_string(n) + " failed with status " +
                  std::to_string(int(status)) + (status == dnnl_out_of_memory ? " (out of memory)" : ""));
}

void UseOneThreadForProducts() { omp_set_num_threads(1); }

}  // namespace mlscale::worker
