// mlscale-launch: see mlscale/launcher/launch.h.
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "mlscale/launcher/launch.h"

extern char** environ;

int main(int argc, char** argv) {
  std::vector<std::string> arguments(argv + 1, argv + argc);
  std::map<std::string, std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string text(*entry);
    auto equals = text.find('=');
    if (equals != std::string::npos) environment[text.substr(0, equals)] = text.substr(equals + 1);
  }
  auto options = mlscale::launcher::ParseLaunchOptions(arguments, environment);
  if (!options.ok()) {
    std::fprintf(stderr, "mlscale-launch: %s\n\n%s", options.status().message().c_str(),
                 mlscale::launcher::LaunchUsage().c_str());
    return 1;
  }
  if (options->help) {
    std::fputs(mlscale::launcher::LaunchUsage().c_str(), stdout);
    return 0;
  }
  return mlscale::launcher::RunLauncher(*options);
}
