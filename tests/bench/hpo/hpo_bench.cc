// Benchmark driver for the hpo library (tests/bench/hpo/run.sh runs it beside Optuna).
//
//   hpo_bench regret <function> <sampler> <seed> <trials> <batch>
//       prints one JSON line: {"function", "sampler", "seed", "batch", "best": [best value
//       after each trial], "seconds", "cpu_seconds"}; sampler is random | tpe | gp; batch > 1 asks for
//       that many suggestions at a time (all pending) before completing them.
//   hpo_bench latency <trials> <repeats>
//       prints {"trials", "ms": [...], "cpu_ms": [...]}: the wall and CPU time of one GP
//       suggestion with <trials> completed random trials of the 6-D Hartmann function.
// The test functions are defined identically in optuna_bench.py.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <numbers>
#include <string>

#include <nlohmann/json.hpp>

#include "mlscale/hpo/sampler.h"

namespace {

using mlscale::hpo::Assignment;
using mlscale::hpo::Parameter;
using mlscale::hpo::ParameterType;
using mlscale::hpo::SearchSpace;

struct TestFunction {
  SearchSpace space;
  std::function<double(const Assignment&)> evaluate;
  double minimum;
};

Parameter Float(std::string name, double low, double high, bool log_scale = false) {
  Parameter p;
  p.name = std::move(name);
  p.low = low;
  p.high = high;
  p.log_scale = log_scale;
  return p;
}

double X(const Assignment& a, const std::string& name) { return std::get<double>(a.at(name)); }

double Branin(double x1, double x2) {
  const double pi = std::numbers::pi;
  double b = 5.1 / (4 * pi * pi), c = 5 / pi, t = 1 / (8 * pi);
  return std::pow(x2 - b * x1 * x1 + c * x1 - 6, 2) + 10 * (1 - t) * std::cos(x1) + 10;
}

SearchSpace Box(int dims, double low, double high) {
  SearchSpace space;
  for (int i = 0; i < dims; ++i) space.parameters.push_back(Float("x" + std::to_string(i), low, high));
  return space;
}

std::vector<double> Vector(const Assignment& a, int dims) {
  std::vector<double> x;
  for (int i = 0; i < dims; ++i) x.push_back(X(a, "x" + std::to_string(i)));
  return x;
}

TestFunction Make(const std::string& name) {
  if (name == "branin") {
    SearchSpace space{{Float("x0", -5, 10), Float("x1", 0, 15)}};
    return {space, [](const Assignment& a) { return Branin(X(a, "x0"), X(a, "x1")); }, 0.397887357729738};
  }
  if (name == "hartmann6") {
    return {Box(6, 0, 1),
            [](const Assignment& a) {
              static const double alpha[4] = {1.0, 1.2, 3.0, 3.2};
              static const double A[4][6] = {{10, 3, 17, 3.5, 1.7, 8}, {0.05, 10, 17, 0.1, 8, 14},
                                             {3, 3.5, 1.7, 10, 17, 8}, {17, 8, 0.05, 10, 0.1, 14}};
              static const double P[4][6] = {{1312, 1696, 5569, 124, 8283, 5886}, {2329, 4135, 8307, 3736, 1004, 9991},
                                             {2348, 1451, 3522, 2883, 3047, 6650}, {4047, 8828, 8732, 5743, 1091, 381}};
              std::vector<double> x = Vector(a, 6);
              double sum = 0;
              for (int i = 0; i < 4; ++i) {
                double inner = 0;
                for (int j = 0; j < 6; ++j) inner += A[i][j] * std::pow(x[j] - P[i][j] * 1e-4, 2);
                sum += alpha[i] * std::exp(-inner);
              }
              return -sum;
            },
            -3.32236801141551};
  }
  for (int dims : {2, 6}) {
    if (name == "rosenbrock" + std::to_string(dims)) {
      return {Box(dims, -2.048, 2.048),
              [dims](const Assignment& a) {
                std::vector<double> x = Vector(a, dims);
                double sum = 0;
                for (int i = 0; i + 1 < dims; ++i) sum += 100 * std::pow(x[i + 1] - x[i] * x[i], 2) + std::pow(1 - x[i], 2);
                return sum;
              },
              0.0};
    }
    if (name == "ackley" + std::to_string(dims)) {
      return {Box(dims, -32.768, 32.768),
              [dims](const Assignment& a) {
                std::vector<double> x = Vector(a, dims);
                double squares = 0, cosines = 0;
                for (double v : x) {
                  squares += v * v;
                  cosines += std::cos(2 * std::numbers::pi * v);
                }
                return -20 * std::exp(-0.2 * std::sqrt(squares / dims)) - std::exp(cosines / dims) + 20 + std::numbers::e;
              },
              0.0};
    }
  }
  if (name == "mixed") {
    // Branin in (x0, x1) plus a log-scale float, an int and a categorical dimension.
    Parameter layers;
    layers.name = "layers";
    layers.type = ParameterType::kInt;
    layers.low = 1;
    layers.high = 10;
    Parameter optimizer;
    optimizer.name = "optimizer";
    optimizer.type = ParameterType::kCategorical;
    optimizer.choices = {"sgd", "adam", "rmsprop", "lamb"};
    SearchSpace space{{Float("x0", -5, 10), Float("x1", 0, 15), Float("lr", 1e-5, 1, true), layers, optimizer}};
    return {space,
            [](const Assignment& a) {
              static const std::map<std::string, double> offset = {{"sgd", 2}, {"adam", 0}, {"rmsprop", 1}, {"lamb", 3}};
              double lr = std::log10(X(a, "lr")) + 2.5;
              double depth = static_cast<double>(std::get<std::int64_t>(a.at("layers"))) - 7;
              return Branin(X(a, "x0"), X(a, "x1")) + lr * lr + 0.5 * depth * depth +
                     offset.at(std::get<std::string>(a.at("optimizer")));
            },
            0.397887357729738};
  }
  std::cerr << "unknown function " << name << "\n";
  std::exit(2);
}

mlscale::hpo::SamplerConfig Config(const std::string& sampler, std::uint64_t seed) {
  mlscale::hpo::SamplerConfig config;
  config.seed = seed;
  if (sampler == "random") {
    config.algorithm = mlscale::hpo::Algorithm::kRandom;
  } else if (sampler == "tpe") {
    config.algorithm = mlscale::hpo::Algorithm::kTpe;
  } else if (sampler == "gp") {
    config.algorithm = mlscale::hpo::Algorithm::kBayesian;
  } else {
    std::cerr << "unknown sampler " << sampler << "\n";
    std::exit(2);
  }
  return config;
}

double Seconds(std::chrono::steady_clock::duration d) { return std::chrono::duration<double>(d).count(); }

// CPU time of this process: on a shared, busy machine it shows the work done, where the
// wall time also shows how long the process waited for a core.
double CpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

int Regret(const std::string& function_name, const std::string& sampler, std::uint64_t seed, int trials, int batch) {
  TestFunction function = Make(function_name);
  mlscale::hpo::SamplerConfig config = Config(sampler, seed);
  std::vector<mlscale::hpo::Trial> history;
  std::vector<double> best;
  auto start = std::chrono::steady_clock::now();
  double cpu_start = CpuSeconds();
  while (static_cast<int>(history.size()) < trials) {
    int count = std::min(batch, trials - static_cast<int>(history.size()));
    auto suggestions = mlscale::hpo::Suggest(config, function.space, history, count);
    if (!suggestions.ok() || suggestions->empty()) {
      std::cerr << "suggest failed: " << suggestions.status().ToString() << "\n";
      return 1;
    }
    std::size_t first = history.size();
    for (Assignment& a : *suggestions) {  // all pending until the whole batch is evaluated
      mlscale::hpo::Trial trial;
      trial.id = std::to_string(history.size());
      trial.assignment = std::move(a);
      history.push_back(std::move(trial));
    }
    for (std::size_t i = first; i < history.size(); ++i) {
      history[i].state = mlscale::hpo::TrialState::kCompleted;
      history[i].value = function.evaluate(history[i].assignment);
      best.push_back(std::min(best.empty() ? std::numeric_limits<double>::infinity() : best.back(), *history[i].value));
    }
  }
  for (double& b : best) b -= function.minimum;
  nlohmann::json line = {{"function", function_name}, {"sampler", sampler}, {"seed", seed}, {"batch", batch},
                         {"regret", best}, {"seconds", Seconds(std::chrono::steady_clock::now() - start)},
                         {"cpu_seconds", CpuSeconds() - cpu_start}};
  std::cout << line.dump() << std::endl;
  return 0;
}

int Latency(int trials, int repeats) {
  TestFunction function = Make("hartmann6");
  mlscale::hpo::SamplerConfig random = Config("random", 1);
  auto points = mlscale::hpo::Suggest(random, function.space, {}, trials);
  if (!points.ok()) return 1;
  std::vector<mlscale::hpo::Trial> history;
  for (Assignment& a : *points) {
    mlscale::hpo::Trial trial;
    trial.id = std::to_string(history.size());
    trial.state = mlscale::hpo::TrialState::kCompleted;
    trial.value = function.evaluate(a);
    trial.assignment = std::move(a);
    history.push_back(std::move(trial));
  }
  std::vector<double> ms, cpu_ms;
  for (int r = 0; r < repeats; ++r) {
    auto start = std::chrono::steady_clock::now();
    double cpu_start = CpuSeconds();
    auto suggestion = mlscale::hpo::Suggest(Config("gp", static_cast<std::uint64_t>(r)), function.space, history, 1);
    cpu_ms.push_back(1e3 * (CpuSeconds() - cpu_start));
    ms.push_back(1e3 * Seconds(std::chrono::steady_clock::now() - start));
    if (!suggestion.ok()) {
      std::cerr << suggestion.status().ToString() << "\n";
      return 1;
    }
  }
  std::cout << nlohmann::json({{"trials", trials}, {"ms", ms}, {"cpu_ms", cpu_ms}}).dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 6 && args[0] == "regret") {
    return Regret(args[1], args[2], std::stoull(args[3]), std::stoi(args[4]), std::stoi(args[5]));
  }
  if (args.size() == 3 && args[0] == "latency") return Latency(std::stoi(args[1]), std::stoi(args[2]));
  std::cerr << "usage: hpo_bench regret <function> <random|tpe|gp> <seed> <trials> <batch>\n"
               "       hpo_bench latency <trials> <repeats>\n";
  return 2;
}
