#!/usr/bin/env bash
# Installs what mlscale needs to build and test, and only what is missing.
# Idempotent: a second run installs nothing. Works as root or through sudo.
#
#   scripts/deps.sh                  Debian/Ubuntu packages for the build and the tests
#   scripts/deps.sh --gpu-toolchain  also nvcc, cuBLAS and NCCL from NVIDIA's PyPI wheels,
#                                    into ~/.cache/mlscale/cuda-<version> (no GPU needed)
#   scripts/deps.sh --check          list what is missing, install nothing
set -euo pipefail

# Debian packages. Library packages first, then tools.
PACKAGES=(
  build-essential cmake ninja-build pkg-config git ccache
  python3 python3-venv openssl libssl-dev
  libcpprest-dev libyaml-cpp-dev nlohmann-json3-dev libspdlog-dev libeigen3-dev
  libboost-system-dev libboost-program-options-dev libboost-dev
  libopenmpi-dev openmpi-bin libnlopt-cxx-dev libsimdjson-dev
  libgtest-dev libgmock-dev
  iproute2 util-linux procps curl ca-certificates
  wrk
)
# Pinned NVIDIA wheels for the GPU backend (CUDA 13). Changing one changes the folder.
CUDA_VERSION=13.5.37
CUDA_WHEELS=(
  "nvidia-cuda-nvcc==${CUDA_VERSION}" "nvidia-cuda-runtime==${CUDA_VERSION}"
  "nvidia-cuda-crt==${CUDA_VERSION}" "nvidia-nvvm==${CUDA_VERSION}"
  "nvidia-cuda-cccl==13.3.5.0.6" "nvidia-cublas==13.10.0.20" "nvidia-nccl-cu13==2.32.3"
)
CUDA_DIR="${MLSCALE_CACHE:-$HOME/.cache/mlscale}/cuda-${CUDA_VERSION}"
GO_MIN=1.21   # older go cannot fetch the newer toolchain the control-plane build asks for

gpu=0 check=0
for arg in "$@"; do
  case "$arg" in
    --gpu-toolchain) gpu=1 ;;
    --check) check=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "deps.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

say() { echo "deps: $*"; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "deps.sh: need root or sudo to run: $*" >&2; exit 1; fi
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v go >/dev/null 2>&1; then missing+=(golang-go); fi

if [ "$check" = 1 ]; then
  [ ${#missing[@]} -eq 0 ] && say "all Debian packages present" || say "missing: ${missing[*]}"
  if [ "$gpu" = 1 ]; then
    if [ -f "$CUDA_DIR/.complete" ]; then say "CUDA wheels present in $CUDA_DIR"; else say "missing: CUDA wheels ($CUDA_DIR)"; fi
  fi
  exit 0
fi

if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "all Debian packages present"
fi

go_version=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
if [ -z "$go_version" ] || [ "$(printf '%s\n%s\n' "$GO_MIN" "$go_version" | sort -V | head -1)" != "$GO_MIN" ]; then
  echo "deps.sh: go ${go_version:-none} is older than ${GO_MIN}; install a newer Go (the control-plane build fetches the exact toolchain it needs)" >&2
  exit 1
fi

if [ "$gpu" = 1 ]; then
  if [ -f "$CUDA_DIR/.complete" ]; then
    say "CUDA wheels present in $CUDA_DIR"
  else
    say "installing CUDA ${CUDA_VERSION} wheels into $CUDA_DIR"
    rm -rf "$CUDA_DIR"
    python3 -m venv "$CUDA_DIR"
    "$CUDA_DIR/bin/pip" install --quiet --disable-pip-version-check --no-deps "${CUDA_WHEELS[@]}"
    touch "$CUDA_DIR/.complete"
  fi
fi
