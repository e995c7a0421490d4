#!/usr/bin/env bash
# The first thing to run: installs what is missing, builds, and trains a model on this
# machine with the same TrainingJob manifest a cluster would take (4 workers on CPU,
# the bundled handwritten-digits set; about a minute on 2 cores).
#
#   scripts/quickstart.sh            build into build/ and run examples/trainingjob-digits.yaml
#   scripts/quickstart.sh --fresh    forget an earlier run (its checkpoints) and train again
set -euo pipefail
cd "$(dirname "$0")/.."
fresh=0
for arg in "$@"; do
  case "$arg" in
    --fresh) fresh=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "quickstart.sh: unknown option '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

echo "==> dependencies"
scripts/deps.sh

echo "==> build (build/)"
cmake -S . -B build -G Ninja >build-configure.log || { cat build-configure.log; exit 1; }
cmake --build build -j "$(nproc)" --target mlscale_cli mlscale_launch mlscale-train

run_dir=mlscale-runs/digits
if [ "$fresh" = 1 ]; then rm -rf "$run_dir"; fi
echo "==> build/launcher/mlscale run -f examples/trainingjob-digits.yaml"
build/launcher/mlscale run -f examples/trainingjob-digits.yaml --dir "$run_dir"

python3 - "$run_dir/result.json" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
print(f"accuracy: {100 * result['accuracy']:.2f} % on the held-out digits "
      f"({result['worldSize']} workers, {result['steps']} steps); the model is in {sys.argv[1].rsplit('/', 1)[0]}/model")
PY
