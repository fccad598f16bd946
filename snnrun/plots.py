"""Figures of a run, drawn from the files in its run directory (PNG in ``<run dir>/plots/``).

Needs the optional extra ``plots`` (matplotlib). Drawn at the end of a run when
``plots.enabled`` and on demand with ``snnrun plot RUN_DIR``; every figure reads
only files, so it can be redrawn later:

=============================  ====================================================
figure                         source
=============================  ====================================================
``learning_curves.png``        ``metrics.csv``: loss and accuracy per split vs epoch
``raster.png``                 ``monitors/sample.npz``: input and every population, sample 0
``membrane.png``               ``monitors/sample.npz``: ``v`` of a few neurons per population (+ ``v_th``)
``firing_rates.png``           ``monitors/sample.npz``: histogram of per-neuron rates (Hz)
``weights_<proj>.png``         ``monitors/sample.npz`` (else ``checkpoints/last.pt``): the weight matrix ``[post, pre]``
``receptive_fields_<proj>.png`` rows of a weight matrix whose source is an image, as an image grid
``confusion_matrix.png``       ``confusion_matrix.csv`` (last test epoch)
``fi_curve.png``               ``fi_curve.csv`` (current-clamp runs)
``probe_<name>.png``           ``monitors/<name>.npz`` (probes and current-clamp monitors)
``stdp_window.png``            ``stdp_window.csv`` with ``dt_ms, dw`` (plasticity protocols)
``sweep_<metric>.png``         a multirun directory: metric vs swept parameter, mean ± std over seeds
=============================  ====================================================
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError, SnnrunError
from .extras import needs
from .schema import param


@dataclass
class PlotsParams:
    enabled: bool = param(True, help="write PNG figures to <run dir>/plots at the end of a run")
    dpi: int = param(100, ge=20, help="resolution of the PNG files")
    max_neurons: int = param(200, ge=1, help="neurons shown per raster panel")
    max_fields: int = param(100, ge=1, help="receptive fields shown per projection")
    field_scale: str = param("shared", choices=("shared", "own"),
                             help="receptive fields on one colour scale, or each scaled to its own range")


def matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig, path: Path, params: PlotsParams) -> Path:
    from .faults import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # a full disk leaves no truncated figure; same suffix: same format
        fig.savefig(tmp, dpi=params.dpi)
    return path


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# --- run figures ------------------------------------------------------------------------------
def learning_curves(run_dir: Path, out: Path, params: PlotsParams) -> list[Path]:
    rows = _read_csv(run_dir / "metrics.csv")
    fig = _figure(10, 4)
    drawn = False
    for ax, metric in zip(fig.subplots(1, 2), ("loss", "accuracy")):
        for split in ("train", "val", "test"):
            pts = [(_float(r.get("epoch")), _float(r.get(f"{split}/{metric}"))) for r in rows if r.get("split") == split]
            pts = [(e, v) for e, v in pts if math.isfinite(e) and math.isfinite(v)]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=split)
                drawn = True
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    return [_save(fig, out / "learning_curves.png", params)] if drawn else []


def _populations(sample) -> list[tuple[str, np.ndarray]]:
    keys = [k for k in sample.files if k.startswith("input/")] + [k for k in sample.files if k.startswith("spikes/")]
    return [(k.split("/", 1)[1] + (" (input)" if k.startswith("input/") else ""), sample[k]) for k in keys]


def raster(sample, out: Path, params: PlotsParams) -> list[Path]:
    pops = _populations(sample)
    if not pops:
        return []
    dt = float(sample["dt"]) if "dt" in sample.files else 1.0
    fig = _figure(9, 1.8 + 1.6 * len(pops))
    axes = np.atleast_1d(fig.subplots(len(pops), 1, sharex=True))
    colors = [f"C{i % 10}" for i in range(len(pops))]
    for ax, (name, spikes), color in zip(axes, pops, colors):
        full = spikes[0].reshape(spikes.shape[1], -1)  # [T, N]
        s = full[:, :params.max_neurons]
        t, n = np.nonzero(s > 0)
        ax.scatter((t + 1) * dt, n, s=25, marker="|", linewidths=1.2, color=color)
        shown = f"\n(first {s.shape[1]} of {full.shape[1]})" if s.shape[1] < full.shape[1] else ""
        ax.set_ylabel(f"{name}\nneuron{shown}")
        ax.set_ylim(-0.5, s.shape[1] - 0.5)
        ax.set_xlim(0, s.shape[0] * dt + dt)
    label = f", label {int(sample['label'][0])}" if "label" in sample.files else ""
    axes[0].set_title(f"spike raster, sample 0{label}")
    axes[-1].set_xlabel("time (ms)")
    return [_save(fig, out / "raster.png", params)]


def membrane(sample, out: Path, params: PlotsParams, neurons: int = 5) -> list[Path]:
    keys = [k for k in sample.files if k.startswith("v/")]
    if not keys:
        return []
    time_ms = sample["time_ms"]
    fig = _figure(9, 1.8 + 2.0 * len(keys))
    axes = np.atleast_1d(fig.subplots(len(keys), 1, sharex=True))
    for ax, key in zip(axes, keys):
        pop = key.split("/", 1)[1]
        v = sample[key][0].reshape(len(time_ms), -1)
        for i in range(min(neurons, v.shape[1])):
            ax.plot(time_ms, v[:, i], lw=1, label=f"neuron {i}")
        if f"v_th/{pop}" in sample.files:
            ax.axhline(float(sample[f"v_th/{pop}"]), color="k", ls="--", lw=0.8, label="v_th")
        unit = str(sample[f"v_unit/{pop}"]) if f"v_unit/{pop}" in sample.files else "model units"
        ax.set_ylabel(f"{pop}\nv ({unit})")
        ax.legend(fontsize=6, loc="upper right", ncol=3)
    shown = min(neurons, sample[keys[0]][0].reshape(len(time_ms), -1).shape[1])
    axes[0].set_title(f"membrane potential, sample 0 (first {shown} neurons per population)")
    axes[-1].set_xlabel("time (ms)")
    return [_save(fig, out / "membrane.png", params)]


def firing_rates(sample, out: Path, params: PlotsParams) -> list[Path]:
    pops = [(n, s) for n, s in _populations(sample) if s.dtype == np.uint8]
    if not pops:
        return []
    dt = float(sample["dt"]) if "dt" in sample.files else 1.0
    fig = _figure(4 * len(pops), 3.5)
    axes = np.atleast_1d(fig.subplots(1, len(pops)))
    for i, (ax, (name, s)) in enumerate(zip(axes, pops)):
        flat = s.reshape(s.shape[0], s.shape[1], -1).astype(np.float64)
        rates = flat.sum(1).mean(0) / (flat.shape[1] * dt) * 1000.0
        ax.hist(rates, bins=min(30, max(5, rates.size // 4)), color=f"C{i % 10}")
        ax.set_title(f"{name}: mean {rates.mean():.1f} Hz")
        ax.set_xlabel("firing rate (Hz)")
        ax.set_ylabel("neurons")
    return [_save(fig, out / "firing_rates.png", params)]


def _image_shape(n: int, source_shape: tuple, input_shape: tuple, from_input: bool = True) -> tuple[int, ...] | None:
    """How to show ``n`` presynaptic weights as an image (source shaped as an image, or an input
    population whose data samples are images or square), or None."""
    if len(source_shape) == 3 and source_shape[0] in (1, 3):
        return source_shape[1:] if source_shape[0] == 1 else None
    if len(source_shape) == 2:
        return source_shape
    shape = tuple(s for s in input_shape if s > 1)
    if len(shape) == 2 and math.prod(shape) == n:
        return shape
    if len(shape) == 3 and shape[0] == 1 and math.prod(shape) == n:
        return shape[1:]
    side = int(round(math.sqrt(n)))
    return (side, side) if from_input and side * side == n and side >= 4 else None


def weights(sample, out: Path, params: PlotsParams) -> list[Path]:
    written = []
    input_shape = tuple(int(s) for s in sample["input_shape"]) if "input_shape" in sample.files else ()
    for key in [k for k in sample.files if k.startswith("weight/")]:
        proj = key.split("/", 1)[1]
        w = sample[key]
        matrix = w.reshape(w.shape[0], -1) if w.ndim > 1 else w.reshape(1, -1)
        fig = _figure(7, 5)
        ax = fig.subplots()
        lim = float(np.abs(matrix).max()) or 1.0
        im = ax.imshow(matrix, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        fig.colorbar(im, ax=ax, label="weight")
        ax.set_title(f"{proj}: weights [{' x '.join(str(s) for s in w.shape)}]")
        ax.set_xlabel("presynaptic")
        ax.set_ylabel("postsynaptic")
        written.append(_save(fig, out / f"weights_{proj}.png", params))
        source = tuple(int(s) for s in sample[f"source_shape/{proj}"]) if f"source_shape/{proj}" in sample.files else ()
        if w.ndim == 4:  # conv kernels [out, in, k, k]: show the first input channel of each kernel
            fields, shape = w[:, 0], w.shape[2:]
        else:
            from_input = bool(sample[f"source_is_input/{proj}"]) if f"source_is_input/{proj}" in sample.files else True
            shape = _image_shape(matrix.shape[1], source, input_shape if from_input else (), from_input)
            fields = matrix.reshape(matrix.shape[0], *shape) if shape else None
        if fields is not None and fields.shape[0] > 1:
            written.append(_field_grid(fields[:params.max_fields], proj, out, params, total=fields.shape[0]))
    return written


def _field_grid(fields: np.ndarray, proj: str, out: Path, params: PlotsParams, total: int) -> Path:
    n = fields.shape[0]
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    h, w = fields.shape[1:]
    grid = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    shared = params.field_scale == "shared"
    low, high = float(fields.min()), float(fields.max())
    for i in range(n):
        r, c = divmod(i, cols)
        f = fields[i]
        lo, hi = (low, high) if shared else (float(f.min()), float(f.max()))
        grid[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = (f - lo) / (hi - lo) if hi > lo else 0.5
    fig = _figure(min(14, 2 + cols * 1.2), min(14, 2 + rows * 1.2))
    ax = fig.subplots()
    if shared and low < 0 < high:  # signed weights: diverging map centred on zero, in weight units
        lim = max(-low, high)
        grid = grid * (high - low) + low  # back from [0, 1] to weights
        im = ax.imshow(grid, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    else:
        im = ax.imshow(grid, cmap="hot", interpolation="nearest", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, label="weight" if shared and low < 0 < high else
                 ("weight, scaled to [low, high]" if shared else "weight, scaled per neuron to [min, max]"))
    ax.set_axis_off()
    scale = f"one scale, {low:.3g} to {high:.3g}" if shared else "each scaled to its own range"
    which = f"the first {n} of {total} neurons" if n < total else f"{n} neurons"
    ax.set_title(f"{proj}: receptive fields of {which} ({scale})")
    return _save(fig, out / f"receptive_fields_{proj}.png", params)


def confusion_matrix(run_dir: Path, out: Path, params: PlotsParams) -> list[Path]:
    rows = list(csv.reader(open(run_dir / "confusion_matrix.csv", newline="")))[1:]
    m = np.array([[int(v) for v in r[1:]] for r in rows])
    if m.size == 0:
        return []
    fig = _figure(max(5.0, 1.5 + 0.5 * m.shape[1]), max(4.5, 1.2 + 0.5 * m.shape[0]))
    ax = fig.subplots()
    im = ax.imshow(m, cmap="viridis")
    fig.colorbar(im, ax=ax, label="samples")
    if m.shape[0] <= 20:
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                        color="w" if m[i, j] < m.max() / 2 else "k")
    acc = np.trace(m) / max(m.sum(), 1)
    ax.set_title(f"confusion matrix (test, accuracy {acc:.3f})")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return [_save(fig, out / "confusion_matrix.png", params)]


def fi_curve(run_dir: Path, out: Path, params: PlotsParams) -> list[Path]:
    rows = _read_csv(run_dir / "fi_curve.csv")
    pts = sorted((_float(r["current"]), _float(r["rate_hz"])) for r in rows)
    if not pts:
        return []
    fig = _figure(5, 4)
    ax = fig.subplots()
    ax.plot(*zip(*pts), marker="o", color="C3")
    ax.set_xlabel("injected current")
    ax.set_ylabel("firing rate (Hz)")
    ax.set_title("f-I curve")
    ax.grid(alpha=0.3)
    return [_save(fig, out / "fi_curve.png", params)]


def stdp_window(run_dir: Path, out: Path, params: PlotsParams) -> list[Path]:
    rows = _read_csv(run_dir / "stdp_window.csv")
    pts = sorted((_float(r["dt_ms"]), _float(r["dw"])) for r in rows)
    if not pts:
        return []
    x, y = map(np.asarray, zip(*pts))
    fig = _figure(5, 4)
    ax = fig.subplots()
    ax.axhline(0, color="k", lw=0.6)
    ax.axvline(0, color="k", lw=0.6)
    ax.plot(x[x <= 0], y[x <= 0], "o-", color="C0", label="post before pre (Δt ≤ 0)")
    ax.plot(x[x >= 0], y[x >= 0], "o-", color="C3", label="pre before post (Δt ≥ 0)")
    ax.set_xlabel("Δt = t_post − t_pre (ms)")
    ax.set_ylabel("Δw")
    ax.set_title("STDP window")
    ax.legend(fontsize=7)
    return [_save(fig, out / "stdp_window.png", params)]


def probe(path: Path, out: Path, params: PlotsParams) -> list[Path]:
    """A probe file ([records, samples, steps, ...]) or a current-clamp monitor ([steps, neurons])."""
    data = np.load(path, allow_pickle=False)
    time_ms = data["time_ms"] if "time_ms" in data.files else None
    panels = []
    for var in [k for k in data.files if k not in ("epoch", "sample_index", "label", "time_ms", "dt", "current")
                or (k == "current" and data[k].ndim >= 4)]:
        a = data[var]
        if a.ndim >= 4:  # probe: last record, first sample -> [T, N]
            panels.append((var, a[-1, 0].reshape(a.shape[2], -1)))
        elif a.ndim == 2 and time_ms is not None and a.shape[0] == len(time_ms):  # clamp: [T, N]
            panels.append((var, a))
    if not panels:
        return []
    fig = _figure(9, 1.5 + 2.0 * len(panels))
    axes = np.atleast_1d(fig.subplots(len(panels), 1, sharex=True))
    for i, (ax, (var, a)) in enumerate(zip(axes, panels)):
        t = time_ms if time_ms is not None and len(time_ms) == a.shape[0] else np.arange(a.shape[0])
        a = a[:, :params.max_neurons]
        if var == "spikes":
            tt, nn = np.nonzero(a > 0)
            ax.scatter(t[tt], nn, s=25, marker="|", linewidths=1.2, color=f"C{i % 10}")
            ax.set_ylabel("spikes\nneuron")
        else:
            for j in range(min(5, a.shape[1])):
                ax.plot(t, a[:, j], lw=1)
            ax.set_ylabel(var)
    axes[0].set_title(f"{path.stem}" + (f" (epoch {int(data['epoch'][-1])}, sample {int(data['sample_index'][0])})"
                                        if "epoch" in data.files and len(data["epoch"]) else ""))
    axes[-1].set_xlabel("time (ms)")
    return [_save(fig, out / f"probe_{path.stem}.png", params)]


# --- sweeps ------------------------------------------------------------------------------------
def is_multirun(path: Path) -> bool:
    """A Hydra sweep directory: numbered job sub-directories with a summary.json and no metrics of its own."""
    return not (path / "metrics.csv").exists() and any(p.is_dir() and (p / "summary.json").exists() for p in path.iterdir())


def _overrides(job: Path) -> dict[str, str]:
    path = job / ".hydra" / "overrides.yaml"
    if not path.exists():
        return {}
    import yaml

    items = yaml.safe_load(path.read_text()) or []
    return dict(item.split("=", 1) for item in items if "=" in item)


def sweep(multirun: Path, out: Path, params: PlotsParams, metric: str | None = None) -> list[Path]:
    """Metric vs the swept parameter(s), mean ± std over ``seed``; also writes ``sweep.csv``."""
    jobs = []
    for job in sorted(p for p in multirun.iterdir() if p.is_dir() and (p / "summary.json").exists()):
        summary = json.loads((job / "summary.json").read_text())
        key = metric or summary.get("monitor", "test/accuracy")
        value = summary.get("final", {}).get(key, summary.get("best", {}).get(key))
        if isinstance(value, (int, float)):
            jobs.append((_overrides(job), float(value), key))
    if not jobs:
        return []
    key = jobs[0][2]
    names = sorted({k for o, _, _ in jobs for k in o})
    varied = [k for k in names if len({o.get(k) for o, _, _ in jobs}) > 1 and k not in ("seed", "+seed")]
    x_key = varied[0] if varied else None
    groups: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for overrides, value, _ in jobs:
        line = tuple((k, overrides.get(k)) for k in varied[1:])
        groups[line][overrides.get(x_key, "-") if x_key else "-"].append(value)
    fig = _figure(6, 4.5)
    ax = fig.subplots()
    table = []
    for i, (line, points) in enumerate(sorted(groups.items())):
        xs = list(points)
        numeric = all(not math.isnan(_float(x)) for x in xs)
        xs = sorted(xs, key=_float) if numeric else sorted(xs)
        mean = np.array([np.mean(points[x]) for x in xs])
        std = np.array([np.std(points[x]) for x in xs])
        pos = [_float(x) for x in xs] if numeric else list(range(len(xs)))
        label = ", ".join(f"{k}={v}" for k, v in line) or None
        ax.errorbar(pos, mean, yerr=std, marker="o", capsize=3, color=f"C{i % 10}", label=label)
        if not numeric:
            ax.set_xticks(pos, xs)
        for x, m, s in zip(xs, mean, std):
            table.append({**dict(line), x_key or "job": x, "mean": m, "std": s, "n": len(points[x])})
    ax.set_xlabel(x_key or "job")
    ax.set_ylabel(key)
    ax.set_title(f"{key}: mean ± std over seeds ({len(jobs)} jobs)")
    ax.grid(alpha=0.3)
    if any(line for line in groups):
        ax.legend(fontsize=7)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "sweep.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    return [_save(fig, out / f"sweep_{key.replace('/', '_')}.png", params)]


class _Arrays(dict):
    """A dict that looks like an opened ``.npz`` (``.files`` and item access)."""

    @property
    def files(self) -> list[str]:
        return list(self)


def checkpoint_weights(run_dir: Path) -> _Arrays:
    """``weight/<proj>`` (+ ``source_is_input/<proj>``) from ``checkpoints/last.pt`` (loaded with
    ``weights_only=True``) and ``.hydra/config.yaml``, in the layout of ``monitors/sample.npz``."""
    import re

    import torch

    state = torch.load(run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    model = state.get("model", {}) if isinstance(state, dict) else {}
    projections, inputs = {}, set()
    saved = run_dir / ".hydra" / "config.yaml"
    if saved.exists():
        import yaml

        network = (yaml.safe_load(saved.read_text()) or {}).get("network") or {}
        projections = network.get("projections") or {}
        targets = {p.get("to") for p in projections.values() if isinstance(p, dict)}
        inputs = {n for n in (network.get("populations") or {}) if n not in targets}
    arrays = _Arrays()
    for key, value in model.items():
        match = re.fullmatch(r"projections\.(\w+)\.stages\.\d+\.weight", key)
        if match and isinstance(value, torch.Tensor) and value.dim() >= 2 and f"weight/{match[1]}" not in arrays:
            name = match[1]
            arrays[f"weight/{name}"] = value.float().numpy()
            source = (projections.get(name) or {}).get("from")
            arrays[f"source_is_input/{name}"] = np.bool_(source in inputs if source else True)
    return arrays


# --- entry points ------------------------------------------------------------------------------
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

    from .schema import parse_params

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
