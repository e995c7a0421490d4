// scale_ceiling: the bare-client ceiling of tests/bench/scale. Creates, for `--jobs` TrainingJobs
// named <prefix>-<i> made from the template in --job-file, the objects mlscale-operator would
// create for them (bench::BareJobObjects: token Secret, headless Service, one pod per rank, by
// the controller's own builders), with one client limited to --kube-api-qps/--kube-api-burst
// (the same flags and meaning as mlscale-operator's) and --workers threads sharing it (as the
// operator's concurrent reconciles do). Prints one JSON line: {"requests":N,"errors":N,
// "seconds":S,"firstError":"..."}. Exit 0 even with errors (the harness reports them); 2 on bad
// flags or input.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "bare_client.h"
#include "mlscale/kube/client.h"
#include "mlscale/kube/config.h"

namespace {

namespace po = boost::program_options;
using json = nlohmann::json;

struct Flags {
  std::string kubeconfig, job_file, namespace_name, prefix = "job";
  int jobs = 0, workers = 4, burst = 100;
  double qps = 50;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "scale_ceiling: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  po::options_description options("scale_ceiling: create what mlscale-operator creates for N jobs, as a bare client");
  options.add_options()("help", "this help")
      ("kubeconfig", po::value(&flags.kubeconfig)->required(), "kubeconfig file")
      ("job-file", po::value(&flags.job_file)->required(), "a TrainingJob (JSON) whose spec every job gets")
      ("namespace", po::value(&flags.namespace_name)->required(), "namespace to create the objects in")
      ("prefix", po::value(&flags.prefix)->default_value("job"), "jobs are named <prefix>-<index>")
      ("jobs", po::value(&flags.jobs)->required(), "number of jobs")
      ("workers", po::value(&flags.workers)->default_value(4), "threads creating objects (share one client)")
      ("kube-api-qps", po::value(&flags.qps)->default_value(50), "client-side limit of API requests per second")
      ("kube-api-burst", po::value(&flags.burst)->default_value(100), "burst above --kube-api-qps");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, options), vm);
    if (vm.count("help")) {
      std::cout << options << "\n";
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    return Fail(std::string(e.what()) + "\n(see --help)");
  }
  if (flags.jobs < 1) return Fail("--jobs: must be >= 1");
  if (flags.workers < 1 || flags.workers > 256) return Fail("--workers: must be in [1, 256]");
  if (flags.qps <= 0) return Fail("--kube-api-qps: must be > 0");
  if (flags.burst < 1) return Fail("--kube-api-burst: must be >= 1");

  std::ifstream in(flags.job_file);
  if (!in) return Fail("--job-file: cannot read " + flags.job_file);
  json job_template = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!job_template.is_object() || !job_template.contains("spec")) {
    return Fail("--job-file: " + flags.job_file + " is not a TrainingJob object with a spec");
  }
  mlscale::StatusOr<mlscale::kube::ClientConfig> config = mlscale::kube::LoadKubeconfig(flags.kubeconfig);
  if (!config.ok()) return Fail("--kubeconfig: " + config.status().ToString());
  config->qps = flags.qps;
  config->burst = flags.burst;
  config->user_agent = "mlscale-scale-ceiling";
  mlscale::StatusOr<std::unique_ptr<mlscale::kube::Client>> client = mlscale::kube::Client::Create(*config);
  if (!client.ok()) return Fail("client: " + client.status().ToString());

  std::atomic<int> next{0}, requests{0}, errors{0};
  std::mutex first_error_mutex;
  std::string first_error;
  auto note_error = [&](const std::string& what) {
    ++errors;
    std::lock_guard lock(first_error_mutex);
    if (first_error.empty()) first_error = what;
  };
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < flags.workers; ++t) {
    threads.emplace_back([&] {
      for (int i = next++; i < flags.jobs; i = next++) {
        json job = job_template;
        job["metadata"] = {{"name", flags.prefix + "-" + std::to_string(i)}, {"namespace", flags.namespace_name}};
        mlscale::StatusOr<std::vector<json>> objects = mlscale::bench::BareJobObjects(job);
        if (!objects.ok()) {
          note_error(objects.status().ToString());
          continue;
        }
        for (const json& object : *objects) {
          ++requests;
          if (mlscale::Status created = mlscale::bench::CreateBareObject(**client, flags.namespace_name, object);
              !created.ok()) {
            note_error(created.ToString());
          }
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << json{{"requests", requests.load()}, {"errors", errors.load()}, {"seconds", seconds},
                    {"firstError", first_error}}.dump()
            << std::endl;
  return 0;
}
