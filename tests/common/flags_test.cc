// ParseFlags (flags.h): what a test or benchmark program does with --help, a bad flag and
// good ones.
#include "flags.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mlscale::testing {
namespace {

namespace po = boost::program_options;

struct Parsed {
  std::optional<int> exit_code;
  int rounds = 1;
  std::string out, err;
};

Parsed Parse(std::vector<std::string> args) {
  Parsed parsed;
  po::options_description flags("probe [options]");
  flags.add_options()("rounds", po::value(&parsed.rounds)->default_value(1), "rounds to make");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  po::variables_map values;
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  parsed.exit_code = ParseFlags(static_cast<int>(argv.size()), argv.data(), flags, values);
  parsed.out = ::testing::internal::GetCapturedStdout();
  parsed.err = ::testing::internal::GetCapturedStderr();
  return parsed;
}

TEST(ParseFlags, GoodFlagsGoOnWithTheVariablesSet) {
  Parsed parsed = Parse({"/some/dir/probe", "--rounds", "3"});
  EXPECT_FALSE(parsed.exit_code.has_value());
  EXPECT_EQ(parsed.rounds, 3);
  EXPECT_EQ(parsed.out + parsed.err, "");
}

TEST(ParseFlags, HelpPrintsTheFlagsAndExitsZero) {
  for (const char* help : {"--help", "-h"}) {
    Parsed parsed = Parse({"probe", help});
    EXPECT_EQ(parsed.exit_code, 0) << help;
    EXPECT_NE(parsed.out.find("--rounds"), std::string::npos) << parsed.out;
    EXPECT_EQ(parsed.err, "");
  }
}

TEST(ParseFlags, ABadFlagNamesTheProgramAndExitsTwo) {
  for (std::vector<std::string> args : {std::vector<std::string>{"/bin/probe", "--rows", "3"},
                                        std::vector<std::string>{"/bin/probe", "--rounds", "three"}}) {
    Parsed parsed = Parse(args);
    EXPECT_EQ(parsed.exit_code, 2) << args[1];
    EXPECT_TRUE(parsed.err.starts_with("probe: ")) << parsed.err;
    EXPECT_NE(parsed.err.find("--rounds"), std::string::npos) << "the help follows: " << parsed.err;
    EXPECT_EQ(parsed.out, "");
  }
}

}  // namespace
}  // namespace mlscale::testing
