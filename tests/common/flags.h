// Command-line parsing shared by the test and benchmark programs (the in-cluster probe,
// the benchmarks' servers and drivers): Boost.Program_options with one behaviour for
// --help and for a bad flag.
#pragma once

#include <optional>

#include <boost/program_options.hpp>

namespace mlscale::testing {

// Adds "--help,-h" to `flags`, then parses argv into `values` (notified: bound
// variables are set). Returns nullopt when the program should go on; otherwise the exit
// code it should return: 0 after printing the help on stdout for --help, 2 after
// printing "<program>: <error>" and the help on stderr for a flag it cannot parse.
// <program> is the file name of argv[0].
std::optional<int> ParseFlags(int argc, char** argv, boost::program_options::options_description& flags,
                              boost::program_options::variables_map& values);

}  // namespace mlscale::testing
