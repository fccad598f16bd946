"""Figures of monitor recordings: spike raster, membrane potential and firing rates of the recorded
sample (``monitors/sample.npz``), and probes and current-clamp monitors (``monitors/<name>.npz``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import canvas
from .canvas import PlotsParams


def _populations(sample) -> list[tuple[str, np.ndarray]]:
    keys = [k for k in sample.files if k.startswith("input/")] + [k for k in sample.files if k.startswith("spikes/")]
    return [(k.split("/", 1)[1] + (" (input)" if k.startswith("input/") else ""), sample[k]) for k in keys]


def raster(sample, out: Path, params: PlotsParams) -> list[Path]:
    pops = _populations(sample)
    if not pops:
        return []
    dt = float(sample["dt"]) if "dt" in sample.files else 1.0
    fig = canvas.figure(9, 1.8 + 1.6 * len(pops))
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
    return [canvas.save(fig, out / "raster.png", params)]


def membrane(sample, out: Path, params: PlotsParams, neurons: int = 5) -> list[Path]:
    keys = [k for k in sample.files if k.startswith("v/")]
    if not keys:
        return []
    time_ms = sample["time_ms"]
    fig = canvas.figure(9, 1.8 + 2.0 * len(keys))
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
    return [canvas.save(fig, out / "membrane.png", params)]


def firing_rates(sample, out: Path, params: PlotsParams) -> list[Path]:
    pops = [(n, s) for n, s in _populations(sample) if s.dtype == np.uint8]
    if not pops:
        return []
    dt = float(sample["dt"]) if "dt" in sample.files else 1.0
    fig = canvas.figure(4 * len(pops), 3.5)
    axes = np.atleast_1d(fig.subplots(1, len(pops)))
    for i, (ax, (name, s)) in enumerate(zip(axes, pops)):
        flat = s.reshape(s.shape[0], s.shape[1], -1).astype(np.float64)
        rates = flat.sum(1).mean(0) / (flat.shape[1] * dt) * 1000.0
        ax.hist(rates, bins=min(30, max(5, rates.size // 4)), color=f"C{i % 10}")
        ax.set_title(f"{name}: mean {rates.mean():.1f} Hz")
        ax.set_xlabel("firing rate (Hz)")
        ax.set_ylabel("neurons")
    return [canvas.save(fig, out / "firing_rates.png", params)]


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
    fig = canvas.figure(9, 1.5 + 2.0 * len(panels))
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
    return [canvas.save(fig, out / f"probe_{path.stem}.png", params)]
