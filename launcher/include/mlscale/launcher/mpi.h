// MPI mode, as Kubeflow's MPI Operator does it: one launcher runs mpirun over a
// hostfile of worker hostnames (the workers run sshd with a per-job key). The launcher
// first waits until every worker accepts connections, so mpirun does not fail on a
// worker whose pod is still starting.
//
// The key: the job's SSH Secret, mounted at a folder (--ssh-dir), holds `ssh-privatekey`,
// a private key OpenSSH reads (PEM ECDSA P-256, PKCS#8 or SEC1; RSA; or OpenSSH's own
// format). One key is both the launcher's identity and every worker's host key, so the
// launcher verifies each worker (StrictHostKeyChecking) without per-pod keys.
#pragma once

#include <chrono>
#include <filesystem>
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

// The ssh files of one process, written under `<state dir>/ssh` (mode 0700, files 0600,
// owned by this user, as ssh and sshd require of keys a Secret mount does not give).
struct SshFiles {
  std::filesystem::path directory;
  std::filesystem::path private_key;      // copy of <ssh dir>/ssh-privatekey
  std::filesystem::path authorized_keys;  // its public key
  std::filesystem::path known_hosts;      // "* <public key>": any host presenting the job's key
  std::filesystem::path client_config;    // for ssh -F (mpirun's rsh agent)
  std::filesystem::path sshd_config;      // for sshd -f (mpi-worker)
};

// Reads the Secret's key from `ssh_dir`, derives its public key with `ssh_keygen -y`, and
// writes the files above, the configs for `port`. The sshd config listens on
// `listen_address` (numeric; 0.0.0.0 for all), admits only this user and only this key,
// and turns off passwords and forwarding. Errors name the file that is missing or bad.
StatusOr<SshFiles> PrepareSsh(const std::filesystem::path& ssh_dir, const std::filesystem::path& state_dir,
                              const std::string& listen_address, std::uint16_t port,
                              const std::string& ssh_keygen = "ssh-keygen");

// The value of OMPI_MCA_plm_rsh_agent that makes mpirun's ssh use `files`.
std::string RshAgent(const SshFiles& files);

}  // namespace mlscale::launcher
