// kubectl-mlscale: the kubectl plugin for mlscale's resources (kubectl finds an executable
// named kubectl-mlscale on PATH and runs it for `kubectl mlscale ...`). See README.md.
//
//   kubectl mlscale status <trainingjob>        progress, loss, samples/s, ETA, conditions
//   kubectl mlscale trials <sweep>              the sweep's trials, best first
//   kubectl mlscale logs <trainingjob> [--rank N] [-f]
//   kubectl mlscale top                         jobs, sweeps and inference services
//
// Credentials and namespace as kubectl takes them: --kubeconfig (else $KUBECONFIG, else
// in-cluster, else ~/.kube/config), --context, -n/--namespace (else the context's).
#include <chrono>
#include <iostream>
#include <sstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "mlscale/kube/client.h"
#include "mlscale/kube/config.h"
#include "mlscale/kube/errors.h"
#include "render.h"

namespace po = boost::program_options;
using nlohmann::json;

namespace mlscale::plugin {
namespace {

const kube::Resource kTrainingJobs{"mlscale.io", "v1alpha1", "trainingjobs", true, "TrainingJob"};
const kube::Resource kSweeps{"mlscale.io", "v1alpha1", "hyperparametersweeps", true, "HyperparameterSweep"};
const kube::Resource kInferenceServices{"mlscale.io", "v1alpha1", "inferenceservices", true, "InferenceService"};

struct Command {
  const char* summary;
  const char* usage;  // after "kubectl mlscale"
  int positionals;    // how many names it takes
};

const std::map<std::string, Command>& Commands() {
  static const std::map<std::string, Command> commands = {
      {"status", {"a TrainingJob's state, progress bar, loss, samples/s, ETA, restarts and conditions",
                  "status <trainingjob>", 1}},
      {"trials", {"a HyperparameterSweep's trials sorted by objective, best first", "trials <sweep>", 1}},
      {"logs", {"the log of one worker of a TrainingJob (rank 0 unless --rank)", "logs <trainingjob> [--rank N] [-f]", 1}},
      {"top", {"running TrainingJobs, sweeps and InferenceServices at a glance", "top", 0}},
  };
  return commands;
}

po::options_description CommonOptions() {
  po::options_description options("Connection (as kubectl)");
  options.add_options()
      ("help,h", "print this help and exit")
      ("kubeconfig", po::value<std::string>()->value_name("FILE"),
       "kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
      ("context", po::value<std::string>()->value_name("NAME"), "kubeconfig context (default: the current one)")
      ("namespace,n", po::value<std::string>()->value_name("NS"), "namespace (default: the context's)");
  return options;
}

po::options_description CommandOptions(const std::string& name) {
  po::options_description options("Options of " + name);
  if (name == "logs") {
    options.add_options()
        ("rank", po::value<int>()->default_value(0)->value_name("N"), "the worker's rank (label mlscale.io/replica-index)")
        ("follow,f", "stream the log as it grows")
        ("container,c", po::value<std::string>()->value_name("NAME"), "the container (default: the pod's default)")
        ("tail", po::value<int64_t>()->value_name("N"), "only the last N lines");
  }
  return options;
}

std::string Help() {
  std::ostringstream text;
  text << "kubectl mlscale: mlscale's TrainingJobs, HyperparameterSweeps and InferenceServices at a glance.\n\n"
          "Usage: kubectl mlscale <command> [name] [options]\n\nCommands:\n";
  for (const auto& [name, command] : Commands()) text << "  " << command.usage << "\n      " << command.summary << "\n";
  text << "\n" << CommonOptions() << "\nkubectl mlscale <command> --help shows a command's options.\n";
  return text.str();
}

std::string CommandHelp(const std::string& name) {
  const Command& command = Commands().at(name);
  std::ostringstream text;
  text << "kubectl mlscale " << command.usage << "\n  " << command.summary << "\n\n";
  po::options_description own = CommandOptions(name);
  if (!own.options().empty()) text << own << "\n";
  text << CommonOptions();
  return text.str();
}

int Fail(const Status& status) {
  std::cerr << "error: " << status.ToString() << "\n";
  return 1;
}

// The objects' kind says what to call them in errors ("trainingjob digits not found in ml").
Status Explain(const Status& status, const std::string& what, const std::string& name, const std::string& ns) {
  if (kube::IsNotFound(status)) {
    return NotFound(what + " " + name + " not found in namespace " + ns +
                    " (or the " + what + " CRD is not installed)");
  }
  return status;
}

StatusOr<std::vector<json>> ListItems(kube::Client& client, const kube::Resource& resource, const std::string& ns,
                                      const std::string& label_selector = "") {
  kube::ListOptions options;
  options.label_selector = label_selector;
  StatusOr<kube::ObjectList> list = client.ListAll(resource, ns, options);
  if (!list.ok()) return list.status();
  return std::move(list->items);
}

int Status_(kube::Client& client, const std::string& ns, const std::string& name) {
  StatusOr<kube::Object> job = client.Get(kTrainingJobs, ns, name);
  if (!job.ok()) return Fail(Explain(job.status(), "trainingjob", name, ns));
  std::cout << RenderStatus(*job, Clock::now());
  return 0;
}

int Trials(kube::Client& client, const std::string& ns, const std::string& name) {
  StatusOr<kube::Object> sweep = client.Get(kSweeps, ns, name);
  if (!sweep.ok()) return Fail(Explain(sweep.status(), "hyperparametersweep", name, ns));
  StatusOr<std::vector<json>> trials = ListItems(client, kTrainingJobs, ns, "mlscale.io/sweep-name=" + name);
  if (!trials.ok()) return Fail(trials.status());
  std::cout << RenderTrials(*sweep, *trials);
  return 0;
}

int Logs(kube::Client& client, const std::string& ns, const std::string& name, const po::variables_map& options) {
  int rank = options["rank"].as<int>();
  std::string selector = "mlscale.io/job-name=" + name + ",mlscale.io/replica-index=" + std::to_string(rank);
  StatusOr<std::vector<json>> pods = ListItems(client, kube::resources::Pods(), ns, selector);
  if (!pods.ok()) return Fail(pods.status());
  // The newest incarnation of the rank (a restarted group replaces its pods).
  const json* newest = nullptr;
  for (const json& pod : *pods) {
    std::string created = pod["metadata"].value("creationTimestamp", "");
    if (newest == nullptr || created > (*newest)["metadata"].value("creationTimestamp", "")) newest = &pod;
  }
  if (newest == nullptr) {
    return Fail(NotFound("no pod of trainingjob " + name + " rank " + std::to_string(rank) + " in namespace " + ns +
                         " (labels " + selector + "): has the job started?"));
  }
  std::string pod = (*newest)["metadata"].value("name", "");
  std::string container = options.count("container") ? options["container"].as<std::string>() : "";
  // Container names are DNS labels and the rest are numbers: nothing to percent-encode.
  std::string query;
  for (const auto& [key, value] : {std::pair<std::string, std::string>{"follow", options.count("follow") ? "true" : ""},
                                   {"container", container},
                                   {"tailLines", options.count("tail") ? std::to_string(options["tail"].as<int64_t>()) : ""}}) {
    if (!value.empty()) query += (query.empty() ? "?" : "&") + key + "=" + value;
  }
  std::string path = kube::resources::Pods().Path(ns, pod, "log") + query;
  Status streamed = client.StreamLines(path, [](std::string_view line) {
    std::cout << line << '\n' << std::flush;
    return true;
  });
  if (!streamed.ok()) return Fail(streamed.WithContext("logs of pod " + pod));
  return 0;
}

int Top(kube::Client& client, const std::string& ns) {
  StatusOr<std::vector<json>> jobs = ListItems(client, kTrainingJobs, ns);
  if (!jobs.ok()) return Fail(Explain(jobs.status(), "trainingjob", "list", ns));
  StatusOr<std::vector<json>> sweeps = ListItems(client, kSweeps, ns);
  if (!sweeps.ok() && !kube::IsNotFound(sweeps.status())) return Fail(sweeps.status());
  StatusOr<std::vector<json>> services = ListItems(client, kInferenceServices, ns);
  if (!services.ok() && !kube::IsNotFound(services.status())) return Fail(services.status());
  std::optional<std::vector<json>> installed;
  if (services.ok()) installed = std::move(*services);
  std::cout << RenderTop(*jobs, sweeps.ok() ? *sweeps : std::vector<json>{}, installed);
  return 0;
}

int Main(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << Help();
    return args.empty() ? 2 : 0;
  }
  const std::string& name = args[0];
  if (!Commands().count(name)) {
    std::cerr << "error: unknown command '" << name << "'\n\n" << Help();
    return 2;
  }
  po::options_description all = CommonOptions();
  all.add(CommandOptions(name));
  all.add_options()("name", po::value<std::vector<std::string>>(), "");
  po::positional_options_description positional;
  positional.add("name", -1);
  po::variables_map options;
  try {
    po::store(po::command_line_parser(std::vector<std::string>(args.begin() + 1, args.end()))
                  .options(all).positional(positional).run(), options);
    po::notify(options);
  } catch (const po::error& error) {
    std::cerr << "error: " << error.what() << "\n\n" << CommandHelp(name);
    return 2;
  }
  if (options.count("help")) {
    std::cout << CommandHelp(name);
    return 0;
  }
  std::vector<std::string> names =
      options.count("name") ? options["name"].as<std::vector<std::string>>() : std::vector<std::string>{};
  if (static_cast<int>(names.size()) != Commands().at(name).positionals) {
    std::cerr << "error: " << name << " takes " << Commands().at(name).positionals << " name(s)\n\n"
              << CommandHelp(name);
    return 2;
  }
  StatusOr<kube::ClientConfig> config = kube::LoadDefaultConfig(
      options.count("kubeconfig") ? options["kubeconfig"].as<std::string>() : "",
      options.count("context") ? options["context"].as<std::string>() : "");
  if (!config.ok()) return Fail(config.status());
  config->user_agent = "kubectl-mlscale";
  std::string ns = options.count("namespace") ? options["namespace"].as<std::string>() : config->namespace_name;
  StatusOr<std::unique_ptr<kube::Client>> client = kube::Client::Create(*config);
  if (!client.ok()) return Fail(client.status());
  if (name == "status") return Status_(**client, ns, names[0]);
  if (name == "trials") return Trials(**client, ns, names[0]);
  if (name == "logs") return Logs(**client, ns, names[0], options);
  return Top(**client, ns);
}

}  // namespace
}  // namespace mlscale::plugin

int main(int argc, char** argv) { return mlscale::plugin::Main(std::vector<std::string>(argv + 1, argv + argc)); }
