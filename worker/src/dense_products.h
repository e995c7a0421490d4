// The CPU backend's matrix products (internal): single-precision, column-major, through
// oneDNN's dnnl_sgemm (the GEMM PyTorch's CPU path uses; it picks AVX2 or AVX-512 kernels
// at run time). Why oneDNN and not Eigen's products: tests/bench/results/trainer.md.
#pragma once

#include <cstdint>

#include "mlscale/common/status.h"

namespace mlscale::worker {

// C (m x n) = op(A) op(B), where op(A) is m x k and op(B) k x n; each matrix is column-major
// with its leading dimension (lda >= rows of A as stored, ...); C is overwritten. Runs on the
// calling thread only (UseOneThreadForProducts). Given the same shapes and values, the
// result has the same bits wherever the matrices sit in memory (gemm_bench checks this).
// Fails only for arguments oneDNN rejects or when it cannot allocate its packing buffers.
Status MultiplyColumnMajor(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, const float* a,
                           int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc);

// Makes the calling thread's products single-threaded (oneDNN's OpenMP runtime would
// otherwise start OMP_NUM_THREADS threads per product). The backend's threads each take a
// slice of the batch instead, so every thread calls this once.
void UseOneThreadForProducts();

}  // namespace mlscale::worker
