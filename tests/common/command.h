// Running a program from a test and capturing what it prints.
#pragma once

#include <string>
#include <vector>

namespace mlscale::testing {

struct CommandResult {
  int exit_code = -1;   // the program's exit code; 128+N when killed by signal N
  std::string output;   // stdout and stderr, interleaved
};

// Runs argv[0] (looked up in PATH) with the arguments, feeding `stdin_text` to its
// standard input, and waits for it. Never throws; a program that cannot be started
// gives exit code 127.
CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& stdin_text = "");

}  // namespace mlscale::testing
