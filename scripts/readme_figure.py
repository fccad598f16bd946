"""The README's picture: one test sample's spike raster beside the accuracy curves of a run.

    python scripts/readme_figure.py RUN_DIR docs/images/default-run.png

Reads only the run directory's files (``monitors/sample.npz``, ``metrics.csv``); needs matplotlib.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main(run_dir: Path, out: Path) -> None:
    sample = np.load(run_dir / "monitors" / "sample.npz")
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    dt = float(sample["dt"])
    fig, (raster, curve) = plt.subplots(1, 2, figsize=(11, 3.8), dpi=110, gridspec_kw={"width_ratios": [1.3, 1]})
    offset, ticks = 0, []
    keys = [k for k in sample.files if k.startswith(("input/", "spikes/"))]
    for i, key in enumerate(keys):
        spikes = sample[key][0].reshape(sample[key].shape[1], -1)  # [T, N]
        t, n = np.nonzero(spikes)
        raster.scatter((t + 1) * dt, n + offset, s=6, marker="|", color=f"C{i}")
        ticks.append((offset + spikes.shape[1] / 2, f"{key.split('/', 1)[1]}\n({spikes.shape[1]})"))
        offset += spikes.shape[1] + 8
    raster.set_yticks([p for p, _ in ticks], [name for _, name in ticks])
    raster.set_xlabel("time (ms)")
    raster.set_title(f"spikes of one test digit (label {int(sample['label'][0])}, predicted {int(sample['pred'][0])})")
    for split, style in (("train", "-"), ("val", "--"), ("test", "-")):
        pts = [(int(r["epoch"]), float(r[f"{split}/accuracy"])) for r in rows
               if r.get("split") == split and r.get(f"{split}/accuracy")]
        if pts:
            curve.plot(*zip(*pts), style, label=split)
    curve.set_xlabel("epoch")
    curve.set_ylabel("accuracy")
    curve.set_title("accuracy per epoch")
    curve.grid(alpha=0.3)
    curve.legend(loc="lower right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
