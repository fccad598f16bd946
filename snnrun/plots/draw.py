"""Drawing every figure of a run directory: :func:`plot_run`, ``snnrun plot`` and the figures
drawn after a task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, SnnrunError
from ..extras import needs
from .canvas import PlotsParams, matplotlib_available
from .curves import confusion_matrix, fi_curve, learning_curves, stdp_window
from .multirun import is_multirun, sweep
from .recordings import firing_rates, membrane, probe, raster
from .weight_maps import checkpoint_weights, weights


def plot_run(run_dir: Path, params: PlotsParams | None = None) -> list[Path]:
    """Draw every figure whose source file exists in ``run_dir``; returns the PNG paths."""
    run_dir = Path(run_dir)
    params = params or PlotsParams()
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: not a directory")
    out = run_dir / "plots"
    if is_multirun(run_dir):
        return sweep(run_dir, out, params)
    written: list[Path] = []
    for name, fn in (("metrics.csv", learning_curves), ("confusion_matrix.csv", confusion_matrix),
                     ("fi_curve.csv", fi_curve), ("stdp_window.csv", stdp_window)):
        if (run_dir / name).exists():
            written += fn(run_dir, out, params)
    sample_path = run_dir / "monitors" / "sample.npz"
    if sample_path.exists():
        with np.load(sample_path, allow_pickle=False) as sample:
            for fn in (raster, membrane, firing_rates, weights):
                written += fn(sample, out, params)
    elif (run_dir / "checkpoints" / "last.pt").exists():  # runs of other tasks (e.g. diehl_cook): weights only
        written += weights(checkpoint_weights(run_dir), out, params)
    for path in sorted((run_dir / "monitors").glob("*.npz")) if (run_dir / "monitors").is_dir() else []:
        if path.name != "sample.npz":
            written += probe(path, out, params)
    return written


USAGE = """usage: snnrun plot RUN_DIR [--metric KEY] [--dpi N]

Draw the figures of RUN_DIR into RUN_DIR/plots from the files the run left (metrics.csv,
monitors/*.npz, confusion_matrix.csv, fi_curve.csv, stdp_window.csv). For a multirun
directory (numbered jobs), plot KEY (default: the runs' monitored metric) against the swept
parameter, mean ± std over seeds. Needs matplotlib (the ``plots`` extra)."""


def main(args: list[str]) -> list[Path]:
    """``snnrun plot RUN_DIR [--metric KEY] [--dpi N]``; raises SnnrunError on user errors."""
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return []
    run_dir, rest = Path(args[0]), args[1:]
    options = {}
    while rest:
        if rest[0] not in ("--metric", "--dpi") or len(rest) < 2:
            raise SnnrunError(f"plot: unknown or incomplete option {rest[0]!r}; valid: --metric KEY, --dpi N")
        options[rest[0][2:]], rest = rest[1], rest[2:]
    if not run_dir.is_dir():
        raise SnnrunError(f"plot: {run_dir} is not a directory")
    if not matplotlib_available():
        raise SnnrunError(needs("plots", "plot: drawing (matplotlib is not installed)"))
    params = PlotsParams()
    saved = run_dir / ".hydra" / "config.yaml"
    if saved.exists():
        import yaml

        node = (yaml.safe_load(saved.read_text()) or {}).get("plots") or {}
        for key in ("dpi", "max_neurons", "max_fields"):
            if isinstance(node.get(key), int):
                setattr(params, key, node[key])
        if node.get("field_scale") in ("shared", "own"):
            params.field_scale = node["field_scale"]
    if "dpi" in options:
        if not options["dpi"].isdigit() or int(options["dpi"]) < 20:
            raise SnnrunError(f"plot: --dpi expects an integer >= 20, got {options['dpi']!r}")
        params.dpi = int(options["dpi"])
    if is_multirun(run_dir):
        written = sweep(run_dir, run_dir / "plots", params, options.get("metric"))
    else:
        written = plot_run(run_dir, params)
    if not written:
        raise SnnrunError(f"plot: nothing to plot in {run_dir} (no metrics.csv, monitors/*.npz, fi_curve.csv, "
                          f"stdp_window.csv or multirun jobs)")
    for path in written:
        print(path)
    return written


def plot_after_task(node: Any, run_dir: Path) -> list[Path]:
    """Draw the figures of a non-training task's run directory (f–I curve, clamp monitors, STDP
    window) when ``plots.enabled`` and matplotlib is installed; never fails the finished task."""
    import logging

    from ..schema import parse_params

    log = logging.getLogger("snnrun")
    params = parse_params(PlotsParams, dict(node or {}), "plots")
    if not params.enabled or not matplotlib_available():
        return []
    try:
        written = plot_run(Path(run_dir), params)
    except Exception:  # noqa: BLE001 - a plotting failure must not lose a finished run
        log.warning("plots: failed; the run itself is complete (snnrun plot %s retries)", run_dir, exc_info=True)
        return []
    log.info("plots: wrote %d figures to %s", len(written), Path(run_dir) / "plots")
    return written
