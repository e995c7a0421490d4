#include "mlscale/launcher/mpi.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "mlscale/launcher/process.h"

namespace mlscale::launcher {
namespace {

namespace fs = std::filesystem;

// The largest key file read from the Secret (an RSA-8192 PEM is under 7 KiB).
constexpr std::size_t kMaxKeyBytes = 64 * 1024;

// Writes `contents` to a file only this user can read (0600), replacing it.
Status WritePrivateFile(const fs::path& path, const std::string& contents) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Internal("cannot write " + path.string() + ": " + std::strerror(errno));
  bool ok = ::fchmod(fd, 0600) == 0;
  for (std::size_t done = 0; ok && done < contents.size();) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  ok = ::close(fd) == 0 && ok;
  if (!ok) return Internal("cannot write " + path.string() + ": " + std::strerror(errno));
  return Status::Ok();
}

StatusOr<std::string> ReadSmallFile(const fs::path& path, std::size_t max_bytes) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return NotFound("cannot read " + path.string());
  std::string text(max_bytes + 1, '\0');
  file.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(file.gcount()));
  if (text.size() > max_bytes) return InvalidArgument(path.string() + " is larger than " + std::to_string(max_bytes) + " bytes");
  return text;
}

std::string UserName() {
  passwd* entry = ::getpwuid(::geteuid());
  return entry != nullptr ? entry->pw_name : std::to_string(::geteuid());
}

// "[::1]" for IPv6, the address itself otherwise (sshd_config's ListenAddress syntax).
std::string ListenHost(const std::string& address) {
  return address.find(':') != std::string::npos ? "[" + address + "]" : address;
}

}  // namespace

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

StatusOr<SshFiles> PrepareSsh(const fs::path& ssh_dir, const fs::path& state_dir, const std::string& listen_address,
                              std::uint16_t port, const std::string& ssh_keygen) {
  auto key = ReadSmallFile(ssh_dir / "ssh-privatekey", kMaxKeyBytes);
  if (!key.ok()) return key.status().WithContext("the job's SSH key (--ssh-dir)");
  SshFiles files;
  files.directory = state_dir / "ssh";
  std::error_code error;
  fs::create_directories(files.directory, error);
  if (error) return Internal("cannot create " + files.directory.string() + ": " + error.message());
  if (::chmod(files.directory.c_str(), 0700) != 0) {
    return Internal("cannot restrict " + files.directory.string() + ": " + std::strerror(errno));
  }
  files.private_key = files.directory / "id";
  files.authorized_keys = files.directory / "authorized_keys";
  files.known_hosts = files.directory / "known_hosts";
  files.client_config = files.directory / "ssh_config";
  files.sshd_config = files.directory / "sshd_config";
  MLSCALE_RETURN_IF_ERROR(WritePrivateFile(files.private_key, *key));

  fs::path derived = files.directory / "id.pub";
  fs::remove(derived, error);
  auto keygen = ChildProcess::Start({{ssh_keygen, "-y", "-f", files.private_key.string()}, {}, derived.string(), -1, {}});
  if (!keygen.ok()) return keygen.status().WithContext("deriving the public key");
  int exit_code = keygen->Wait();
  auto public_key = ReadSmallFile(derived, kMaxKeyBytes);
  if (exit_code != 0 || !public_key.ok() ||
      (!public_key->starts_with("ssh-") && !public_key->starts_with("ecdsa-"))) {
    return InvalidArgument((ssh_dir / "ssh-privatekey").string() +
                           " is not a private key OpenSSH can read (use PEM ECDSA P-256, RSA, or OpenSSH format)");
  }
  std::string line = public_key->substr(0, public_key->find('\n'));
  MLSCALE_RETURN_IF_ERROR(WritePrivateFile(files.authorized_keys, line + "\n"));
  MLSCALE_RETURN_IF_ERROR(WritePrivateFile(files.known_hosts, "* " + line + "\n"));

  const std::string user = UserName();
  MLSCALE_RETURN_IF_ERROR(WritePrivateFile(files.client_config,
      "# Written by mlscale-launch: mpirun's ssh to the job's workers.\n"
      "Host *\n"
      "  Port " + std::to_string(port) + "\n"
      "  User " + user + "\n"
      "  IdentityFile " + files.private_key.string() + "\n"
      "  IdentitiesOnly yes\n"
      "  UserKnownHostsFile " + files.known_hosts.string() + "\n"
      "  GlobalKnownHostsFile /dev/null\n"
      "  StrictHostKeyChecking yes\n"
      "  CheckHostIP no\n"
      "  BatchMode yes\n"
      "  PasswordAuthentication no\n"
      "  ConnectTimeout 20\n"
      "  ServerAliveInterval 15\n"
      "  LogLevel ERROR\n"));
  MLSCALE_RETURN_IF_ERROR(WritePrivateFile(files.sshd_config,
      "# Written by mlscale-launch --mode mpi-worker: the job's launcher runs its ranks here.\n"
      "ListenAddress " + ListenHost(listen_address) + ":" + std::to_string(port) + "\n"
      "HostKey " + files.private_key.string() + "\n"
      "AuthorizedKeysFile " + files.authorized_keys.string() + "\n"
      "AllowUsers " + user + "\n"
      "PubkeyAuthentication yes\n"
      "PasswordAuthentication no\n"
      "KbdInteractiveAuthentication no\n"
      "PermitRootLogin prohibit-password\n"
      "UsePAM no\n"
      // The files are ours and 0600, but their folders (under /tmp) are not what
      // StrictModes expects of a home directory.
      "StrictModes no\n"
      "PermitUserEnvironment no\n"
      "AllowTcpForwarding no\n"
      "AllowAgentForwarding no\n"
      "AllowStreamLocalForwarding no\n"
      "X11Forwarding no\n"
      "PermitTunnel no\n"
      "PrintMotd no\n"
      "PidFile none\n"
      "LogLevel INFO\n"));
  return files;
}

std::string RshAgent(const SshFiles& files) { return "ssh -F " + files.client_config.string(); }

}  // namespace mlscale::launcher
