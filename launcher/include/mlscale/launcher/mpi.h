// MPI mode, as Kubeflow's MPI Operator does it: one launcher runs mpirun over a
// hostfile of worker hostnames (the workers run sshd with a per-job key). The launcher
// first waits until every worker accepts connections, so mpirun does not fail on a
// worker whose pod is still starting.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mlscale/common/status.h"
#include "mlscale/launcher/socket.h"

namespace mlscale::launcher {

struct MpiHost {
  std::string name;
  std::int64_t slots = 1;
};

// Parses an Open MPI hostfile: "name [slots=N] [max_slots=M]" per line, '#' comments.
StatusOr<std::vector<MpiHost>> ParseHostfile(std::string_view text);

// True for the names mpirun starts processes on without ssh (localhost, 127.0.0.1, ::1).
bool IsLocalHost(std::string_view name);

// Waits until every non-local host accepts a TCP connection on `port`, retrying until
// `deadline`; the error names the hosts that never did.
Status WaitForHosts(const std::vector<MpiHost>& hosts, std::uint16_t port, Clock::time_point deadline);

struct MpirunOptions {
  std::string mpirun = "mpirun";
  std::string hostfile;
  std::int64_t processes = 0;  // 0: the sum of the hostfile's slots
  bool as_root = false;        // adds --allow-run-as-root
  // Variables mpirun exports to every rank (-x NAME), e.g. MLSCALE_RUN_ID.
  std::vector<std::string> exported_variables;
  std::vector<std::string> command;
};
// The mpirun command line: --hostfile, -np, --bind-to none (ranks share cores with
// their threads), --oversubscribe when more processes than slots are asked for.
std::vector<std::string> MpirunCommand(const MpirunOptions& options, const std::vector<MpiHost>& hosts);

}  // namespace mlscale::launcher
