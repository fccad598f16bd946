"""Accuracy of the spike-time encoders ``sstb`` and ``mstb`` on the default experiment's digits, given as
spike times.

    python scripts/spike_time_digits.py OUT_DIR [-- extra overrides]

``sstb`` and ``mstb`` read spike times in ms, not intensities, so on ``data=digits`` they stop at build
with a one-line error. This script writes the same digits (scikit-learn's 8×8 set, the default
experiment's stratified split: 20 % test, ``split_seed`` 0, pixels / 16) as spike times into
``OUT_DIR/digits_sstb.npz`` and ``OUT_DIR/digits_mstb.npz``, then runs the default experiment on each
with only the data file and the encoder changed (``data=npz data.path=... encoder=sstb|mstb``) and
prints the rows of ``scripts/component_accuracy.py``'s table.

- ``sstb``: one time per pixel, ``t = 5 (1 − x)`` ms (the ``latency`` encoder's default code, τ = 5 ms);
  pixels at or below 0.01 have no spike (−1).
- ``mstb``: up to K = 3 times per pixel, ``round(3x)`` spikes at ``5 (1 − x) + 8k`` ms, k = 0, 1, 2
  (a burst whose length grows with the intensity); unused slots are −1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from component_accuracy import row, run  # noqa: E402

TAU_MS, THRESHOLD, K, BURST_MS = 5.0, 0.01, 3, 8.0


def digits_split():
    """The default experiment's digits: (x_train, y_train, x_test, y_test), x in [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.2, random_state=0, stratify=digits.target)
    return x_train / 16.0, y_train, x_test / 16.0, y_test


def single_times(x: np.ndarray) -> np.ndarray:
    """[N, 64] spike times (ms), −1 for no spike."""
    return np.where(x > THRESHOLD, TAU_MS * (1.0 - x), -1.0).astype(np.float32)


def multiple_times(x: np.ndarray) -> np.ndarray:
    """[N, 64, K] spike times (ms), −1 in unused slots."""
    first = TAU_MS * (1.0 - x)
    k = np.arange(K).reshape(1, 1, K)
    times = first[..., None] + BURST_MS * k
    used = k < np.rint(K * x)[..., None]
    return np.where(used, times, -1.0).astype(np.float32)


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit(__doc__)
    out = Path(argv[0])
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    out.mkdir(parents=True, exist_ok=True)
    x_train, y_train, x_test, y_test = digits_split()
    for name, code in (("sstb", single_times), ("mstb", multiple_times)):
        path = out / f"digits_{name}.npz"
        np.savez(path, x_train=code(x_train), y_train=y_train, x_test=code(x_test), y_test=y_test)
        overrides = ["data=npz", f"data.path={path}", "data.scale=none", *extra]
        print(row(run(out, "encoder", name, overrides), overrides), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
