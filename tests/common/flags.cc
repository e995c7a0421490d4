#include "flags.h"

#include <filesystem>
#include <iostream>

namespace mlscale::testing {

namespace po = boost::program_options;

std::optional<int> ParseFlags(int argc, char** argv, po::options_description& flags, po::variables_map& values) {
  flags.add_options()("help,h", "print this help and exit");
  try {
    po::store(po::parse_command_line(argc, argv, flags), values);
    if (values.count("help")) {
      std::cout << flags;
      return 0;
    }
    po::notify(values);
  } catch (const po::error& error) {
    const std::string program = argc > 0 ? std::filesystem::path(argv[0]).filename().string() : "program";
    std::cerr << program << ": " << error.what() << "\n" << flags;
    return 2;
  }
  return std::nullopt;
}

}  // namespace mlscale::testing
