# mlscale_add_test(<name> SOURCES <files...> [LIBRARIES <targets...>]
#                  LABEL unit|integration|e2e [CLUSTER] [SERIAL] [TIMEOUT <seconds>]
#                  [RESOURCE_LOCK <name>])
# Builds one GoogleTest binary and registers each of its tests with ctest under the
# label. CLUSTER makes the tests require the shared control-plane fixture (started once
# per ctest run by tests/cluster/testcluster.py) and tells them where it is through
# MLSCALE_TEST_CLUSTER_DIR; tests/common/cluster_environment.h reads it. SERIAL runs each
# of its tests alone (ctest RUN_SERIAL), for tests that change something cluster-wide.
# RESOURCE_LOCK keeps its tests from running beside any other test holding the same lock
# (ctest RESOURCE_LOCK), for tests that share one cluster-scoped object.
set(MLSCALE_TEST_CLUSTER_DIR ${CMAKE_BINARY_DIR}/testcluster)

function(mlscale_add_test name)
  cmake_parse_arguments(T "CLUSTER;SERIAL" "LABEL;TIMEOUT;RESOURCE_LOCK" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT T_LABEL MATCHES "^(unit|integration|e2e)$")
    message(FATAL_ERROR "mlscale_add_test(${name}): LABEL must be unit, integration or e2e")
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${name} ${T_SOURCES})
  # `cmake --build B --target mlscale_unit_tests`: the unit tests and what they run, nothing
  # else (CI's sanitizer build runs only them).
  if(T_LABEL STREQUAL "unit")
    if(NOT TARGET mlscale_unit_tests)
      add_custom_target(mlscale_unit_tests)
    endif()
    add_dependencies(mlscale_unit_tests ${name})
  endif()
  target_link_libraries(${name} PRIVATE ${T_LIBRARIES} mlscale::build_flags
                        GTest::gtest GTest::gmock GTest::gtest_main)
  set(properties LABELS ${T_LABEL} TIMEOUT ${T_TIMEOUT})
  if(T_CLUSTER)
    target_link_libraries(${name} PRIVATE mlscale_test_common)
    list(APPEND properties FIXTURES_REQUIRED cluster
         ENVIRONMENT "MLSCALE_TEST_CLUSTER_DIR=${MLSCALE_TEST_CLUSTER_DIR}")
  endif()
  if(T_SERIAL)
    list(APPEND properties RUN_SERIAL TRUE)
  endif()
  if(T_RESOURCE_LOCK)
    list(APPEND properties RESOURCE_LOCK ${T_RESOURCE_LOCK})
  endif()
  # Listing a binary's tests loads its shared libraries (cuBLAS and NCCL in the GPU build,
  # hundreds of MiB): on a loaded machine with a cold page cache that took over the default 5 s.
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST TEST_PREFIX "${name}."
                       DISCOVERY_TIMEOUT 120 PROPERTIES ${properties})
endfunction()
include(GoogleTest)

# Adds every direct subfolder of the current source folder that has a CMakeLists.txt.
function(mlscale_add_subdirectories)
  file(GLOB children LIST_DIRECTORIES true ${CMAKE_CURRENT_SOURCE_DIR}/*)
  foreach(dir IN LISTS children)
    if(IS_DIRECTORY ${dir} AND EXISTS ${dir}/CMakeLists.txt)
      add_subdirectory(${dir})
    endif()
  endforeach()
endfunction()
