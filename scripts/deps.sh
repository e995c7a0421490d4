#!/usr/bin/env bash
# Installs what mlscale needs to build and test, and only what is missing.
# Idempotent: a second run installs nothing. Works as root or through sudo.
#
#   scripts/deps.sh                  Debian/Ubuntu packages for the build and the tests, and a
#                                    Go new enough for the control-plane build (~/.cache/mlscale/go)
#   scripts/deps.sh --gpu-toolchain  also nvcc, cuBLAS and NCCL from NVIDIA's PyPI wheels,
#                                    into ~/.cache/mlscale/cuda-<version> (no GPU needed)
#   scripts/deps.sh --check          list what is missing, install nothing
set -euo pipefail

# Debian packages. Library packages first, then tools.
PACKAGES=(
  build-essential cmake ninja-build pkg-config git ccache
  python3 python3-venv openssl libssl-dev
  libcpprest-dev libyaml-cpp-dev nlohmann-json3-dev libspdlog-dev libeigen3-dev libdnnl-dev
  libboost-system-dev libboost-program-options-dev libboost-dev
  libopenmpi-dev openmpi-bin libnlopt-cxx-dev libsimdjson-dev zlib1g-dev
  libgtest-dev libgmock-dev
  iproute2 util-linux procps curl ca-certificates
  openssh-server openssh-client
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
# Go for the control-plane binaries (tests/cluster/modules): when the go on PATH is older than
# their go.mod files ask for (Debian bookworm's is 1.19), this toolchain is fetched as the module
# golang.org/toolchain through the Go module proxy (checksum-verified) into ~/.cache/mlscale/go,
# where tests/cluster/testcluster.py looks for it. Debian's go is the downloader.
GO_TOOLCHAIN=1.26.8
GO_DIR="${MLSCALE_CACHE:-$HOME/.cache/mlscale}/go"
MODULES_DIR="$(cd "$(dirname "$0")/.." && pwd)/tests/cluster/modules"

gpu=0 check=0
for arg in "$@"; do
  case "$arg" in
    --gpu-toolchain) gpu=1 ;;
    --check) check=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "deps.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

say() { echo "deps: $*"; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "deps.sh: need root or sudo to run: $*" >&2; exit 1; fi
}

version_at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }
go_version_of() { GOTOOLCHAIN=local "$1" env GOVERSION 2>/dev/null | sed 's/^go//'; }
go_needed=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$MODULES_DIR"/*/go.mod | sort -V | tail -1)
go_path_version=$(command -v go >/dev/null && go_version_of go || true)
go_ok() {  # a go new enough for the modules: on PATH, or the one this script installed
  { [ -n "$go_path_version" ] && version_at_least "$go_path_version" "$go_needed"; } ||
    { [ -x "$GO_DIR/bin/go" ] && version_at_least "$(go_version_of "$GO_DIR/bin/go")" "$go_needed"; }
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ -z "$go_path_version" ] && ! go_ok; then missing+=(golang-go); fi

if [ "$check" = 1 ]; then
  [ ${#missing[@]} -eq 0 ] && say "all Debian packages present" || say "missing: ${missing[*]}"
  if go_ok; then say "go >= $go_needed present"; else say "missing: go >= $go_needed (go $GO_TOOLCHAIN into $GO_DIR)"; fi
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

if go_ok; then
  say "go >= $go_needed present"
else
  say "installing go $GO_TOOLCHAIN into $GO_DIR (go on PATH: ${go_path_version:-none}; the modules need $go_needed)"
  goos=$(go env GOOS) goarch=$(go env GOARCH)
  scratch=$(mktemp -d)
  # A private module cache, writable so it can be removed; the toolchain module is a whole GOROOT.
  toolchain_dir=$(cd "$scratch" && GO111MODULE=on GOFLAGS=-modcacherw GOMODCACHE="$scratch/mod" \
    GOTOOLCHAIN=local go mod download -json "golang.org/toolchain@v0.0.1-go${GO_TOOLCHAIN}.${goos}-${goarch}" |
    python3 -c 'import json, sys; m = json.load(sys.stdin); print(m.get("Dir") or sys.exit("deps.sh: " + m.get("Error", "no Dir")))')
  # Module zips keep no file modes: the commands must be made executable again.
  chmod -R u+w "$toolchain_dir"
  chmod +x "$toolchain_dir"/bin/* "$toolchain_dir"/pkg/tool/*/*
  rm -rf "$GO_DIR" && mkdir -p "$(dirname "$GO_DIR")" && mv "$toolchain_dir" "$GO_DIR"
  rm -rf "$scratch"
  say "go $(go_version_of "$GO_DIR/bin/go") in $GO_DIR"
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
