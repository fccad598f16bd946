"""Settings of a run's figures and what every figure uses: a new figure, an atomic PNG write, CSV rows."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..schema import param


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


def figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save(fig, path: Path, params: PlotsParams) -> Path:
    from ..faults import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # a full disk leaves no truncated figure; same suffix: same format
        fig.savefig(tmp, dpi=params.dpi)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
