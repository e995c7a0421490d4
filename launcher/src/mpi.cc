#include "mlscale/launcher/mpi.h"

#include <algorithm>
#include <charconv>
#include <sstream>
#include <thread>

namespace mlscale::launcher {

StatusOr<std::vector<MpiHost>> ParseHostfile(std::string_view text) {
  std::vector<MpiHost> hosts;
  std::istringstream lines{std::string(text)};
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    if (auto comment = line.find('#'); comment != std::string::npos) line.resize(comment);
    std::istringstream words(line);
    std::string word;
    if (!(words >> word)) continue;
    MpiHost host{word, 1};
    while (words >> word) {
      auto equals = word.find('=');
      std::string key = word.substr(0, equals);
      if (equals == std::string::npos || (key != "slots" && key != "max_slots" && key != "max-slots")) {
        return InvalidArgument("hostfile line " + std::to_string(number) + ": unknown attribute '" + word + "'");
      }
      std::int64_t value = 0;
      const char* begin = word.data() + equals + 1;
      const char* end = word.data() + word.size();
      auto [stop, error] = std::from_chars(begin, end, value);
      if (error != std::errc() || stop != end || value < 1) {
        return InvalidArgument("hostfile line " + std::to_string(number) + ": '" + word + "' needs a positive integer");
      }
      if (key == "slots") host.slots = value;
    }
    hosts.push_back(std::move(host));
  }
  if (hosts.empty()) return InvalidArgument("the hostfile lists no hosts");
  return hosts;
}

bool IsLocalHost(std::string_view name) {
  return name == "localhost" || name == "127.0.0.1" || name == "::1";
}

Status WaitForHosts(const std::vector<MpiHost>& hosts, std::uint16_t port, Clock::time_point deadline) {
  std::vector<std::string> waiting;
  for (const auto& host : hosts) {
    if (!IsLocalHost(host.name)) waiting.push_back(host.name);
  }
  std::string last_error;
  while (!waiting.empty()) {
    std::erase_if(waiting, [&](const std::string& name) {
      auto connection = ConnectTcp(name, port, std::min(deadline, Clock::now() + std::chrono::seconds(2)));
      if (!connection.ok()) last_error = connection.status().message();
      return connection.ok();
    });
    if (waiting.empty()) break;
    if (Clock::now() >= deadline) {
      std::string names;
      for (const auto& name : waiting) names += (names.empty() ? "" : ", ") + name;
      return DeadlineExceeded("MPI workers not reachable on port " + std::to_string(port) + ": " + names +
                              " (last error: " + last_error + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return Status::Ok();
}

std::vector<std::string> MpirunCommand(const MpirunOptions& options, const std::vector<MpiHost>& hosts) {
  std::int64_t slots = 0;
  for (const auto& host : hosts) slots += host.slots;
  std::int64_t processes = options.processes > 0 ? options.processes : slots;
  std::vector<std::string> argv{options.mpirun, "--hostfile", options.hostfile, "-np", std::to_string(processes),
                                "--bind-to", "none"};
  if (processes > slots) argv.emplace_back("--oversubscribe");
  if (options.as_root) argv.emplace_back("--allow-run-as-root");
  for (const auto& name : options.exported_variables) {
    argv.emplace_back("-x");
    argv.push_back(name);
  }
  argv.insert(argv.end(), options.command.begin(), options.command.end());
  return argv;
}

}  // namespace mlscale::launcher
