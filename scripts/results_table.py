"""Markdown rows of accuracy results from finished run directories, under the validation protocol.

    python scripts/results_table.py RUN_DIR [RUN_DIR ...]

Per run: the experiment and its overrides (the command that reproduces it), the seed, the
final-epoch test accuracy, the epoch the validation metric selected (``best.pt``) with its
validation and test accuracy, the wall time, and the date, machine and versions it ran on — read
from the run's ``summary.json`` and ``.hydra/`` files, never typed by hand. Test accuracy is
reported, never used to select: a run that selected on the test set (``trainer.select_on_test``)
is marked so. Tasks without epochs (diehl_cook) show their final test accuracy only.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import yaml


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else ("–" if value is None else str(value))


def row(run: Path) -> str:
    summary = json.loads((run / "summary.json").read_text())
    overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text()) or []
    shown = [o for o in overrides if not o.startswith(("hydra.", "trainer.progress", "plots.enabled", "data.path"))]
    command = "snnrun " + " ".join(shown)
    final, best = summary.get("final") or {}, summary.get("best") or {}
    selection = summary.get("selection") or {}
    test_final = final.get("test/accuracy", summary.get("test/accuracy"))
    if best:
        picked = f"{best.get('epoch')}: val {_fmt(best.get('val/accuracy'))}, test {_fmt(best.get('test/accuracy'))}"
        if selection.get("select_on_test"):
            picked += " (selected on test)"
    else:
        picked = "– (no model selection)"
    when = datetime.fromtimestamp((run / "summary.json").stat().st_mtime, timezone.utc).strftime("%Y-%m-%d")
    versions = summary.get("versions") or {}
    cpu = (summary.get("kernels") or {}).get("cpu", {}).get("model", "?")
    wall = summary.get("wall_time_s", summary.get("train_time_s"))
    machine = f"{cpu}, {os.cpu_count()} cores, torch {versions.get('torch')}, snnrun {versions.get('snnrun')}"
    return (f"| `{command}` | {summary.get('seed')} | **{_fmt(test_final)}** | {picked} | "
            f"{wall:.0f} s | {when}; {machine} |" if isinstance(wall, (int, float)) else f"– | {when}; {machine} |")


HEADER = ("| command | seed | final test accuracy | epoch selected on validation: val / test accuracy | "
          "wall time | date; machine |\n|---|---|---|---|---|---|")


def main(argv: list[str]) -> None:
    if not argv:
        print(__doc__)
        sys.exit(2)
    print(HEADER)
    for path in argv:
        print(row(Path(path)))


if __name__ == "__main__":
    main(sys.argv[1:])
