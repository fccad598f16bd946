"""Figures of a run's CSV files: learning curves, confusion matrix, f–I curve, STDP window."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from . import canvas
from .canvas import PlotsParams


def learning_curves(run_dir: Path, out: Path, params: PlotsParams) -> list[Path]:
    rows = canvas.read_csv(run_dir / "metrics.csv")
    fig = canvas.figure(10, 4)
    drawn = False
    for ax, metric in zip(fig.subplots(1, 2), ("loss", "accuracy")):
        for split in ("train", "val", "test"):
            pts = [(canvas.number(r.get("epoch")), canvas.number(r.get(f"{split}/{metric}"))) for r in rows
                   if r.get("split") == split]
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
    return [canvas.save(fig, out / "learning_curves.png", params)] if drawn else []


def confusion_matrix(run_dir: Path, out: Path, params: PlotsParams) -> list[Path]:
    rows = list(csv.reader(open(run_dir / "confusion_matrix.csv", newline="")))[1:]
    m = np.array([[int(v) for v in r[1:]] for r in rows])
    if m.size == 0:
        return []
    fig = canvas.figure(max(5.0, 1.5 + 0.5 * m.shape[1]), max(4.5, 1.2 + 0.5 * m.shape[0]))
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
    return [canvas.save(fig, out / "confusion_matrix.png", params)]


def fi_curve(run_dir: Path, out: Path, params: PlotsParams) -> list[Path]:
    rows = canvas.read_csv(run_dir / "fi_curve.csv")
    pts = sorted((canvas.number(r["current"]), canvas.number(r["rate_hz"])) for r in rows)
    if not pts:
        return []
    fig = canvas.figure(5, 4)
    ax = fig.subplots()
    ax.plot(*zip(*pts), marker="o", color="C3")
    ax.set_xlabel("injected current")
    ax.set_ylabel("firing rate (Hz)")
    ax.set_title("f-I curve")
    ax.grid(alpha=0.3)
    return [canvas.save(fig, out / "fi_curve.png", params)]


def stdp_window(run_dir: Path, out: Path, params: PlotsParams) -> list[Path]:
    rows = canvas.read_csv(run_dir / "stdp_window.csv")
    pts = sorted((canvas.number(r["dt_ms"]), canvas.number(r["dw"])) for r in rows)
    if not pts:
        return []
    x, y = map(np.asarray, zip(*pts))
    fig = canvas.figure(5, 4)
    ax = fig.subplots()
    ax.axhline(0, color="k", lw=0.6)
    ax.axvline(0, color="k", lw=0.6)
    ax.plot(x[x <= 0], y[x <= 0], "o-", color="C0", label="post before pre (Δt ≤ 0)")
    ax.plot(x[x >= 0], y[x >= 0], "o-", color="C3", label="pre before post (Δt ≥ 0)")
    ax.set_xlabel("Δt = t_post − t_pre (ms)")
    ax.set_ylabel("Δw")
    ax.set_title("STDP window")
    ax.legend(fontsize=7)
    return [canvas.save(fig, out / "stdp_window.png", params)]
