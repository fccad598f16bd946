#!/usr/bin/env bash
# Data-parallel check (issue 7): the same experiment in one process with data.batch_size=B and
# under torchrun with N processes and data.batch_size=B/N (the same global batch), then their
# final metrics side by side (`snnrun compare`).
#   scripts/compare_distributed.sh N B [overrides...]     e.g. scripts/compare_distributed.sh 2 64
# With a deterministic encoder (encoder=direct) the two runs see the same global batches and should
# agree up to float summation order; with the default Poisson encoder each rank draws its own noise.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
nproc="${1:?number of processes}"; batch="${2:?global batch size}"; shift 2
(( batch % nproc == 0 )) || { echo "the global batch $batch is not divisible by $nproc" >&2; exit 2; }
out="${OUT_DIR:-$(mktemp -d /tmp/compare_distributed.XXXXXX)}"
py="$here/.venv/bin/python"
common=(trainer.progress=false plots.enabled=false device=cpu "$@")
start=$(date +%s)
"$py" -m snnrun "${common[@]}" "data.batch_size=$batch" "hydra.run.dir=$out/single"
mid=$(date +%s)
OMP_NUM_THREADS=1 "$py" -m torch.distributed.run --standalone "--nproc_per_node=$nproc" -m snnrun "${common[@]}" \
  "data.batch_size=$((batch / nproc))" "hydra.run.dir=$out/ddp$nproc"
end=$(date +%s)
echo "wall time: single $((mid - start)) s, $nproc processes $((end - mid)) s (incl. start-up); load: $(uptime | sed 's/.*load/load/')"
"$py" -m snnrun compare "$out/single" "$out/ddp$nproc"
"$py" - "$out/single/summary.json" "$out/ddp$nproc/summary.json" <<'PY'
import json, sys
a, b = (json.load(open(p))["final"] for p in sys.argv[1:])
for key in sorted(k for k in a if k.endswith(("accuracy", "loss")) and k in b):
    print(f"{key:16s} single {a[key]:.6f}   data-parallel {b[key]:.6f}   |diff| {abs(a[key] - b[key]):.2e}")
PY
