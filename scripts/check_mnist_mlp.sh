#!/usr/bin/env bash
# Real-data check (issue 4): surrogate-gradient BPTT on 5000 real MNIST digits, tested on 1000.
#   scripts/check_mnist_mlp.sh [path/to/mnist_6k.npz] [extra overrides...]   e.g. seed=1
# The recipe is experiment=mnist_mlp (lr 3e-3, cosine, 30 epochs, data.random_shift=1); about an
# hour on 2 shared CPU cores (see the README's real-data check).
# Runs `snnrun experiment=mnist_mlp data=npz data.path=...` and prints the final and best
# test accuracy from the run's summary.json; exits 1 when the final test accuracy is below 0.95.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
npz="${1:-${SNNRUN_MNIST_NPZ:-$here/../shared/data/mnist_6k.npz}}"
shift || true
[ -f "$npz" ] || { echo "no MNIST npz at $npz (pass its path as the first argument)" >&2; exit 2; }
out="${RUN_DIR:-$(mktemp -d /tmp/check_mnist_mlp.XXXXXX)}"
snnrun="$here/.venv/bin/snnrun"; [ -x "$snnrun" ] || snnrun=snnrun
start=$(date +%s)
"$snnrun" experiment=mnist_mlp data=npz "data.path=$npz" trainer.progress=false plots.enabled=false \
  "hydra.run.dir=$out" "$@"
echo "wall time: $(( $(date +%s) - start )) s; run dir: $out"
"$here/.venv/bin/python" - "$out/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
final = s.get("final", {}).get("test/accuracy")
print(f"final test/accuracy: {final}; best: {s.get('best')}")
sys.exit(0 if final is not None and final >= 0.95 else 1)
PY
