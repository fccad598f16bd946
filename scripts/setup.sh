#!/usr/bin/env bash
# Set up snnrun in ./.venv: CPU torch first (a plain `pip install torch` may pull a
# multi-GB CUDA build), then the package with its dev extra, pinned to that torch.
# Usage: bash scripts/setup.sh [extra,extra...]   e.g. bash scripts/setup.sh dev,plots
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
EXTRAS="${1:-dev}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q "torch==${TORCH_VERSION}"
CONSTRAINTS="$(mktemp)"
echo "torch==${TORCH_VERSION}" > "$CONSTRAINTS"
.venv/bin/python -m pip install -q -c "$CONSTRAINTS" -e ".[${EXTRAS}]"
rm -f "$CONSTRAINTS"
# Compile the C++ fast paths now (about a minute, cached by torch) rather than in the first run.
.venv/bin/python -m snnrun.kernels
echo "snnrun installed in .venv ($(.venv/bin/python -c 'import torch, snnrun; print("snnrun", snnrun.__version__, "torch", torch.__version__)'))"
