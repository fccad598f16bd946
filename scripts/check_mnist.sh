#!/usr/bin/env bash
# Real-data checks: surrogate-gradient BPTT on 5000 real MNIST digits, tested on 1000.
#   scripts/check_mnist.sh mnist_mlp [path/to/mnist_6k.npz] [extra overrides...]   bar 0.95  (issue 4)
#   scripts/check_mnist.sh mnist_cnn [path/to/mnist_6k.npz] [extra overrides...]   bar 0.975 (issue 6)
# Runs `snnrun experiment=EXPERIMENT data=npz data.path=...`, prints the wall time and the final and
# best test accuracy from the run's summary.json; exits 1 when the final test accuracy is below the bar.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
experiment="${1:?usage: scripts/check_mnist.sh mnist_mlp|mnist_cnn [npz] [overrides...]}"
shift
case "$experiment" in
  mnist_mlp) bar=0.95 ;;
  mnist_cnn) bar=0.975 ;;
  *) echo "unknown experiment '$experiment': choose mnist_mlp or mnist_cnn" >&2; exit 2 ;;
esac
npz="${1:-${SNNRUN_MNIST_NPZ:-mnist_6k.npz}}"
shift || true
[ -f "$npz" ] || { echo "no MNIST npz at $npz (pass its path as the first argument)" >&2; exit 2; }
out="${RUN_DIR:-$(mktemp -d "/tmp/check_$experiment.XXXXXX")}"
snnrun="$here/.venv/bin/snnrun"; [ -x "$snnrun" ] || snnrun=snnrun
start=$(date +%s)
"$snnrun" "experiment=$experiment" data=npz "data.path=$npz" trainer.progress=false plots.enabled=false \
  "hydra.run.dir=$out" "$@"
echo "wall time: $(( $(date +%s) - start )) s; run dir: $out"
"$here/.venv/bin/python" - "$out/summary.json" "$bar" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
bar = float(sys.argv[2])
final = s.get("final", {}).get("test/accuracy")
print(f"final test/accuracy: {final} (bar {bar}); best: {s.get('best')}")
sys.exit(0 if final is not None and final >= bar else 1)
PY
