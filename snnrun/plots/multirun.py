"""Figures of a multirun (sweep) directory: a metric against the swept parameter, mean ± std over seeds."""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from . import canvas
from .canvas import PlotsParams


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
    fig = canvas.figure(6, 4.5)
    ax = fig.subplots()
    table = []
    for i, (line, points) in enumerate(sorted(groups.items())):
        xs = list(points)
        numeric = all(not math.isnan(canvas.number(x)) for x in xs)
        xs = sorted(xs, key=canvas.number) if numeric else sorted(xs)
        mean = np.array([np.mean(points[x]) for x in xs])
        std = np.array([np.std(points[x]) for x in xs])
        pos = [canvas.number(x) for x in xs] if numeric else list(range(len(xs)))
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
    return [canvas.save(fig, out / f"sweep_{key.replace('/', '_')}.png", params)]
