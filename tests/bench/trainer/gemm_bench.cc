// The dense products of one training step of mlscale-train's MLPs, Eigen beside oneDNN's
// dnnl_sgemm, at the trainer's shapes: for every layer the forward product W x, and the two
// backward ones, dW = delta a^T and (except the first layer) W^T delta. Column-major as in
// worker/src/cpu_backend.cc. "1 thread" is one product on the whole batch; "2 threads" is
// what the trainer does with two threads: each thread multiplies its half of the batch,
// single-threaded, at the same time (a step's time is the slower thread's). Each figure is
// the best of --rounds alternating rounds. Also checks that dnnl_sgemm gives the same bits
// for the same shape when the operands sit at other addresses (the trainer's buffers move).
//
//   build/tests/bench/trainer/gemm_bench [--rounds 3] [--min-seconds 0.05]
#include <Eigen/Dense>
#include <dnnl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "dense_products.h"

namespace {

using Clock = std::chrono::steady_clock;
using Matrix = Eigen::MatrixXf;
using Map = Eigen::Map<Matrix>;
using ConstMap = Eigen::Map<const Matrix>;

struct Model {
  const char* name;
  std::vector<int64_t> widths;  // inputs, hidden..., classes
};

enum class Product { kForward, kWeightGradient, kInputGradient };
const char* ProductName(Product p) {
  return p == Product::kForward ? "W x" : p == Product::kWeightGradient ? "delta a^T" : "W^T delta";
}

// Operands of one product of a layer `out` x `in` on `batch` columns, filled with noise.
struct Operands {
  std::vector<float> weight, input, delta, output;
  Operands(int64_t out, int64_t in, int64_t batch, size_t shift) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1, 1);
    auto fill = [&](std::vector<float>& v, int64_t n) {
      v.resize(size_t(n) + shift);
      for (float& x : v) x = u(rng);
    };
    fill(weight, out * in);
    fill(input, in * batch);
    fill(delta, out * batch);
    output.assign(size_t(std::max(out, in) * std::max(in, batch)) + shift, 0.0f);
  }
};

void DnnlColumnMajor(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                     int64_t ldb, float* c, int64_t ldc) {
  const mlscale::Status status = mlscale::worker::MultiplyColumnMajor(ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", status.ToString().c_str());
    std::exit(1);
  }
}

// One product of the layer on `batch` columns starting at `shift` floats into each buffer.
void Multiply(bool dnnl, Product p, int64_t out, int64_t in, int64_t batch, Operands& o, size_t shift) {
  const float* w = o.weight.data() + shift;
  const float* x = o.input.data() + shift;
  const float* d = o.delta.data() + shift;
  float* c = o.output.data() + shift;
  switch (p) {
    case Product::kForward:  // out x batch = (out x in)(in x batch)
      if (dnnl) return DnnlColumnMajor(false, false, out, batch, in, w, out, x, in, c, out);
      Map(c, out, batch).noalias() = ConstMap(w, out, in) * ConstMap(x, in, batch);
      return;
    case Product::kWeightGradient:  // out x in = (out x batch)(in x batch)^T
      if (dnnl) return DnnlColumnMajor(false, true, out, in, batch, d, out, x, in, c, out);
      Map(c, out, in).noalias() = ConstMap(d, out, batch) * ConstMap(x, in, batch).transpose();
      return;
    case Product::kInputGradient:  // in x batch = (out x in)^T (out x batch)
      if (dnnl) return DnnlColumnMajor(true, false, in, batch, out, w, out, d, out, c, in);
      Map(c, in, batch).noalias() = ConstMap(w, out, in).transpose() * ConstMap(d, out, batch);
      return;
  }
}

double SecondsPerCall(const std::function<void()>& call, double min_seconds) {
  call();  // warm-up (and oneDNN's kernel generation)
  int64_t calls = 0;
  const auto start = Clock::now();
  double elapsed = 0;
  do {
    call();
    ++calls;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < min_seconds);
  return elapsed / double(calls);
}

// Seconds per product with `threads` threads, each on batch / threads columns of its own
// operands; the time is until both are done.
double Time(bool dnnl, Product p, int64_t out, int64_t in, int64_t batch, int threads, double min_seconds) {
  const int64_t part = batch / threads;
  std::vector<Operands> operands;
  for (int t = 0; t < threads; ++t) operands.emplace_back(out, in, part, 0);
  if (threads == 1) return SecondsPerCall([&] { Multiply(dnnl, p, out, in, part, operands[0], 0); }, min_seconds);
  // Both threads run the same number of calls; the wall time of the pair is the figure.
  const int64_t calls =
      std::max<int64_t>(4, int64_t(min_seconds / SecondsPerCall([&] { Multiply(dnnl, p, out, in, part, operands[0], 0); },
                                                                 min_seconds / 4)));
  auto work = [&](int t) {
    mlscale::worker::UseOneThreadForProducts();
    for (int64_t i = 0; i < calls; ++i) Multiply(dnnl, p, out, in, part, operands[size_t(t)], 0);
  };
  const auto start = Clock::now();
  std::vector<std::thread> team;
  for (int t = 1; t < threads; ++t) team.emplace_back(work, t);
  work(0);
  for (auto& thread : team) thread.join();
  return std::chrono::duration<double>(Clock::now() - start).count() / double(calls);
}

// dnnl_sgemm on operands at two different addresses (shifted by 1..15 floats) gives the same bits.
bool SameBitsAtOtherAddresses(Product p, int64_t out, int64_t in, int64_t batch) {
  Operands a(out, in, batch, 0);
  const int64_t rows = p == Product::kInputGradient ? in : out;
  const int64_t cols = p == Product::kWeightGradient ? in : batch;
  Multiply(true, p, out, in, batch, a, 0);
  std::vector<float> first(a.output.begin(), a.output.begin() + rows * cols);
  for (size_t shift = 1; shift < 16; ++shift) {
    Operands b(out, in, batch, shift);  // same values (same seed), shifted
    std::copy(a.weight.begin(), a.weight.begin() + out * in, b.weight.begin() + int64_t(shift));
    std::copy(a.input.begin(), a.input.begin() + in * batch, b.input.begin() + int64_t(shift));
    std::copy(a.delta.begin(), a.delta.begin() + out * batch, b.delta.begin() + int64_t(shift));
    Multiply(true, p, out, in, batch, b, shift);
    if (std::memcmp(first.data(), b.output.data() + shift, first.size() * sizeof(float)) != 0) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 3;
  double min_seconds = 0.05;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--rounds") {
      rounds = std::max(1, std::atoi(argv[i + 1]));
    } else if (flag == "--min-seconds") {
      min_seconds = std::atof(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: gemm_bench [--rounds N] [--min-seconds S]\n");
      return 2;
    }
  }
  Eigen::setNbThreads(1);
  mlscale::worker::UseOneThreadForProducts();
  const dnnl_version_t* version = dnnl_version();
  std::printf("# Eigen %d.%d.%d (SIMD: %s) vs oneDNN %d.%d.%d dnnl_sgemm (ISA chosen at run time); best of %d rounds\n",
              EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION, Eigen::SimdInstructionSetsInUse(),
              version->major, version->minor, version->patch, rounds);
  const std::vector<Model> models = {{"digits", {64, 128, 64, 10}},
                                     {"synthetic", {256, 512, 256, 10}},
                                     {"wide", {784, 1024, 1024, 10}}};
  const Product products[] = {Product::kForward, Product::kWeightGradient, Product::kInputGradient};
  bool deterministic = true;
  std::printf("| model | batch | threads | layer (out x in) | product | Eigen GFLOP/s | oneDNN GFLOP/s | oneDNN/Eigen |\n");
  std::printf("|---|---:|---:|---|---|---:|---:|---:|\n");
  std::vector<std::string> summary;
  for (const Model& model : models) {
    for (int64_t batch : {64, 256}) {
      for (int threads : {1, 2}) {
        double eigen_step = 0, dnnl_step = 0, flops_step = 0;
        for (size_t l = 0; l + 1 < model.widths.size(); ++l) {
          const int64_t in = model.widths[l], out = model.widths[l + 1];
          for (Product p : products) {
            if (p == Product::kInputGradient && l == 0) continue;  // the trainer needs no input gradient
            double best_eigen = 1e30, best_dnnl = 1e30;
            for (int r = 0; r < rounds; ++r) {
              best_eigen = std::min(best_eigen, Time(false, p, out, in, batch, threads, min_seconds));
              best_dnnl = std::min(best_dnnl, Time(true, p, out, in, batch, threads, min_seconds));
            }
            if (threads == 1 && !SameBitsAtOtherAddresses(p, out, in, batch)) {
              deterministic = false;
              std::printf("# NOT the same bits at other addresses: %s %lldx%lld %s batch %lld\n", model.name,
                          static_cast<long long>(out), static_cast<long long>(in), ProductName(p),
                          static_cast<long long>(batch));
            }
            const double flops = 2.0 * double(out) * double(in) * double(batch);
            eigen_step += best_eigen;
            dnnl_step += best_dnnl;
            flops_step += flops;
            std::printf("| %s | %lld | %d | %lld x %lld | %s | %.1f | %.1f | %.2f |\n", model.name,
                        static_cast<long long>(batch), threads, static_cast<long long>(out),
                        static_cast<long long>(in), ProductName(p), flops / best_eigen * 1e-9,
                        flops / best_dnnl * 1e-9, best_eigen / best_dnnl);
          }
        }
        char line[256];
        std::snprintf(line, sizeof(line), "| %s | %lld | %d | %.1f | %.1f | %.1f | %.1f | %.2f |", model.name,
                      static_cast<long long>(batch), threads, eigen_step * 1e6, dnnl_step * 1e6,
                      flops_step / eigen_step * 1e-9, flops_step / dnnl_step * 1e-9, eigen_step / dnnl_step);
        summary.emplace_back(line);
        std::fflush(stdout);
      }
    }
  }
  std::printf("\nAll products of one step (sum of the best times):\n\n");
  std::printf("| model | batch | threads | Eigen us | oneDNN us | Eigen GFLOP/s | oneDNN GFLOP/s | oneDNN/Eigen |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const std::string& line : summary) std::printf("%s\n", line.c_str());
  std::printf("\noneDNN results at other operand addresses: %s\n", deterministic ? "same bits" : "DIFFER");
  return deterministic ? 0 : 1;
}
