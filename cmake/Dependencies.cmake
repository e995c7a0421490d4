# Third-party libraries, all from Debian's packages (scripts/deps.sh installs them).
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(spdlog REQUIRED)
find_package(Eigen3 3.4 REQUIRED NO_MODULE)
find_package(OpenSSL REQUIRED)
find_package(Boost 1.74 REQUIRED COMPONENTS system program_options)
find_package(MPI REQUIRED COMPONENTS CXX)
find_package(cpprestsdk REQUIRED)
find_package(NLopt REQUIRED)
find_package(simdjson REQUIRED)  # mlscale-serve's request parser
if(MLSCALE_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

# yaml-cpp 0.7 on Debian exports the target without a namespace.
if(TARGET yaml-cpp AND NOT TARGET yaml-cpp::yaml-cpp)
  add_library(yaml-cpp::yaml-cpp ALIAS yaml-cpp)
endif()
