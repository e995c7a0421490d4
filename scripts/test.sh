#!/usr/bin/env bash
# One command for all the tests: installs what is missing, builds, brings up a real
# Kubernetes control plane for the integration tests and runs every test.
#
#   scripts/test.sh              everything (ctest labels unit, integration, e2e)
#   scripts/test.sh -L unit      any further arguments go to ctest (here: unit tests only)
#   scripts/test.sh --ci         what CI runs: warnings are errors, the GPU backend is
#                                compiled from NVIDIA's wheels, and the unit tests run
#                                once more under ASan+UBSan; the small scale benchmark
#                                (tests/bench/scale/run.sh --ci) runs after the tests
set -euo pipefail
cd "$(dirname "$0")/.."
ci=0
if [ "${1:-}" = "--ci" ]; then ci=1; shift; fi
jobs=$(nproc)
# Let ccache reuse objects across clones in other folders (CI builds a fresh clone each time).
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1

phase_start=0
phase() { phase_start=$(date +%s); echo "==> $*"; }
phase_done() { echo "==> done in $(( $(date +%s) - phase_start )) s"; }

phase "dependencies"
if [ "$ci" = 1 ]; then scripts/deps.sh --gpu-toolchain; else scripts/deps.sh; fi
phase_done

phase "PyTorch for the user-image tests (a venv outside the tree, installed once per machine)"
tests/launcher/setup-torch-venv.sh >/dev/null
phase_done

phase "control-plane binaries and helm (built once per machine; the first build takes a while)"
python3 tests/cluster/testcluster.py binaries --extra kwok helm
phase_done

phase "build"
cmake -S . -B build -G Ninja -DMLSCALE_WERROR=$([ "$ci" = 1 ] && echo ON || echo OFF) \
  $([ "$ci" = 1 ] && echo -DMLSCALE_GPU=ON) >build-configure.log || { cat build-configure.log; exit 1; }
grep 'mlscale:' build-configure.log || true
cmake --build build -j "$jobs"
phase_done

phase "tests"
ctest --test-dir build --output-on-failure --no-tests=error -j "$jobs" "$@"
phase_done

if [ "$ci" = 1 ]; then
  phase "scale benchmark, small (100 TrainingJobs x 4 on kwok nodes: prints its figures, asserts correctness)"
  tests/bench/scale/run.sh --ci
  phase_done
fi

if [ "$ci" = 1 ]; then
  phase "unit tests under ASan+UBSan"
  cmake -S . -B build-asan -G Ninja -DMLSCALE_WERROR=ON -DMLSCALE_GPU=OFF \
    -DMLSCALE_BUILD_BENCHMARKS=OFF -DCMAKE_BUILD_TYPE=Debug \
    "-DMLSCALE_SANITIZE=address;undefined" >build-asan-configure.log || { cat build-asan-configure.log; exit 1; }
  cmake --build build-asan -j "$jobs" --target mlscale_unit_tests
  ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure --no-tests=error -j "$jobs" -L unit
  phase_done
fi
