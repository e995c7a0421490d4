#!/usr/bin/env bash
# Follows the README on a fresh Debian bookworm: a minimal root made by debootstrap (no Go, no
# compiler, no caches), entered with chroot, where the repository is cloned and the README's
# commands run as written. Not run by CI (a cold run builds everything: about half an hour on
# 2 cores); run it by hand, as root, after changing scripts/deps.sh, the README or the scripts.
#
#   tests/scripts/fresh-machine.sh [options]            up, the README's commands, down
#   tests/scripts/fresh-machine.sh [options] up         make the root (once), mount, clone or update
#   tests/scripts/fresh-machine.sh [options] run CMD..  run CMD in the clone inside the root
#   tests/scripts/fresh-machine.sh [options] quickstart|tests|cluster|by-hand
#                                                       one part of the README (after `up`)
#   tests/scripts/fresh-machine.sh [options] down       unmount everything `up` mounted
#
#   --root DIR       where the root lives (default /var/tmp/mlscale-fresh; it is kept for reuse)
#   --branch B       the branch to clone (default: the checked-out one)
#   --warm-caches    bind this machine's ccache, Go build and module caches and the PyTorch venv
#                    into the root: proves the install steps and the commands, not a cold build
#                    time, and spares a shared machine a cold build
#   --tests ARGS     ctest arguments for `scripts/test.sh` (default: none, every test)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
root=/var/tmp/mlscale-fresh branch="" warm=0 tests=""
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="$2"; shift 2 ;;
    --branch) branch="$2"; shift 2 ;;
    --warm-caches) warm=1; shift ;;
    --tests) tests="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "fresh-machine.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
step="${1:-all}"; [ $# -gt 0 ] && shift
[ "$(id -u)" -eq 0 ] || { echo "fresh-machine.sh: needs root (debootstrap, mount, chroot)" >&2; exit 1; }
branch="${branch:-$(git -C "$repo" rev-parse --abbrev-ref HEAD)}"
git_dir="$(cd "$repo" && cd "$(git rev-parse --git-common-dir)" && pwd)"
say() { echo "fresh-machine: $*"; }

# What a fresh machine's root shell has: no /usr/local/go, no caches, a plain PATH.
in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

# This machine's first Debian mirror, so the root installs from the same place.
mirror() {
  cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
    sed -n -e 's/^URIs: *\([^ ]*\).*/\1/p' -e 's/^deb \(\[[^]]*\] \)\?\([^ ]*\) .*/\2/p' |
    grep -v security | head -1
}

bind() {  # bind SOURCE to TARGET inside the root (recursive, and never propagating back)
  local target="$root$2"
  mountpoint -q "$target" && return 0
  mkdir -p "$target" "$1"
  mount --rbind "$1" "$target"
  mount --make-rslave "$target"
}

up() {
  if [ ! -x "$root/usr/bin/apt-get" ]; then
    command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
    say "debootstrap bookworm into $root"
    debootstrap --variant=minbase bookworm "$root" "$(mirror)" >"$root.debootstrap.log" 2>&1 ||
      { tail -20 "$root.debootstrap.log"; exit 1; }
  fi
  # The root must be a mount point, as / is on a machine: the node agents make "/" a private
  # mount in each pod's namespace, which fails (EINVAL) on a plain folder.
  if ! mountpoint -q "$root"; then mount --bind "$root" "$root"; mount --make-private "$root"; fi
  bind /proc /proc; bind /sys /sys; bind /dev /dev
  # This machine's network setup, as any machine here has it: its resolver and the local CAs
  # its TLS traffic is verified against. Nothing of the project's.
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    in_root sh -c 'command -v update-ca-certificates >/dev/null || { apt-get update -qq && apt-get install -y -qq ca-certificates >/dev/null; }; update-ca-certificates >/dev/null'
  fi
  bind "$git_dir" /src/mlscale.git
  mount -o remount,bind,ro "$root/src/mlscale.git"
  if [ "$warm" = 1 ]; then
    bind "$HOME/.cache/ccache" /root/.cache/ccache
    bind "$HOME/.cache/go-build" /root/.cache/go-build
    bind "$HOME/go/pkg/mod" /root/go/pkg/mod
    [ -d "$HOME/.cache/mlscale/venv-torch" ] && bind "$HOME/.cache/mlscale/venv-torch" /root/.cache/mlscale/venv-torch
  fi
  # The one step before the README: getting the code.
  in_root sh -c 'command -v git >/dev/null || { apt-get update -qq && apt-get install -y -qq git >/dev/null; }'
  if [ -d "$root/root/mlscale/.git" ]; then
    in_root git -C /root/mlscale fetch -q origin "$branch"
    in_root git -C /root/mlscale checkout -q -B "$branch" FETCH_HEAD
  else
    in_root git clone -q --branch "$branch" file:///src/mlscale.git /root/mlscale
  fi
  say "$root: $(in_root git -C /root/mlscale log --oneline -1)"
}

down() {
  for target in /root/.cache/mlscale/venv-torch /root/go/pkg/mod /root/.cache/go-build /root/.cache/ccache \
                /src/mlscale.git /dev /sys /proc; do
    mountpoint -q "$root$target" && umount -R "$root$target"
  done
  mountpoint -q "$root" && umount "$root"
  return 0
}

run() {
  say "\$ $*"
  in_root bash -c 'cd /root/mlscale && "$@"' run "$@"
}

# The README's commands, top to bottom, in four parts (each also a step of its own).
part_quickstart() { run scripts/quickstart.sh; }
part_tests() {
  # shellcheck disable=SC2086  # ctest arguments, split on purpose
  run scripts/test.sh $tests
}
# "On a cluster": the demo, then what the README and the demo say to run on it.
part_cluster() {
  run bash -o pipefail -c 'scripts/cluster-demo.sh --no-watch | tee /tmp/demo.out'
  run bash -c 'set -ex
    eval "$(grep -m1 "^  export KUBECONFIG=" /tmp/demo.out)"
    kubectl get mlscale
    kubectl wait --for=condition=Succeeded tj/digits --timeout=60s
    kubectl describe tj digits | tail -5
    kubectl logs digits-worker-0 --tail 3
    kubectl -n mlscale-system logs deployment/mlscale --tail 3
    kubectl mlscale status digits
    kubectl mlscale logs digits --rank 1 --tail 2
    kubectl mlscale top
    if kubectl get sweep digits-bayesian >/dev/null 2>&1; then kubectl mlscale trials digits-bayesian; fi
    timeout 5 kubectl get tj -w || true
    kubectl apply --server-side -f crds/
    out=$(helm install bad charts/mlscale --namespace bad --set logLevel=verbose 2>&1) && exit 1
    grep -q "logLevel" <<<"$out" && echo "refused as the README says: $out"
    helm status mlscale -n mlscale-system | head -5'
  run scripts/cluster-demo.sh --down
}
# "Train locally", "Building by hand" and "The test control plane".
part_by_hand() {
  run bash -c 'set -ex
    build/launcher/mlscale validate -f examples/trainingjob-digits.yaml
    scripts/deps.sh --check
    scripts/deps.sh
    cmake -S . -B build -G Ninja && cmake --build build
    python3 tests/cluster/testcluster.py up --dir /tmp/c
    python3 tests/cluster/testcluster.py binaries
    export PATH=$(dirname "$(python3 tests/cluster/testcluster.py binaries | awk '"'"'$1 == "kubectl" {print $2}'"'"')"):$PATH
    kubectl --kubeconfig /tmp/c/admin.kubeconfig get ns
    python3 tests/cluster/testcluster.py kubeconfig --dir /tmp/c --namespace team-a \
      --service-account runner --out /tmp/c/runner.kubeconfig
    kubectl --kubeconfig /tmp/c/runner.kubeconfig auth whoami
    python3 tests/cluster/testcluster.py restart --dir /tmp/c --component kube-apiserver
    kubectl --kubeconfig /tmp/c/admin.kubeconfig get ns default
    python3 tests/cluster/testcluster.py down --dir /tmp/c'
}

case "$step" in
  up) up ;;
  down) down ;;
  run) run "$@" ;;
  quickstart|tests|cluster|by-hand) "part_${step//-/_}" ;;
  all) trap down EXIT; up; part_quickstart; part_tests; part_cluster; part_by_hand ;;
  *) echo "fresh-machine.sh: unknown step '$step' (see --help)" >&2; exit 2 ;;
esac
