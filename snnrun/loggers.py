"""Metric sinks: CSV and JSONL (always), TensorBoard (optional extra).

Every sink receives one row per epoch and split (``log(row)``), flushed as
written, so a killed run keeps every finished epoch.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Iterable

from .errors import ConfigError
from .schema import suggest


class CSVSink:
    def __init__(self, run_dir: Path, columns: list[str]):
        self.path = run_dir / "metrics.csv"
        self.columns = columns
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.file = open(self.path, "a", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=columns, extrasaction="ignore")
        if new:
            self.writer.writeheader()
            self.file.flush()

    def log(self, row: dict[str, Any]) -> None:
        self.writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class JSONLSink:
    def __init__(self, run_dir: Path, columns: list[str]):
        self.path = run_dir / "metrics.jsonl"
        self.file = open(self.path, "a")

    def log(self, row: dict[str, Any]) -> None:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
        self.file.write(json.dumps(clean) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class TensorBoardSink:
    def __init__(self, run_dir: Path, columns: list[str]):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("logger.sinks: 'tensorboard' needs the optional extra: pip install 'snnrun[tensorboard]'") from None
        self.writer = SummaryWriter(log_dir=str(run_dir / "tb"))

    def log(self, row: dict[str, Any]) -> None:
        step = row.get("epoch", 0)
        for key, value in row.items():
            if "/" in key and isinstance(value, (int, float)) and value is not None:
                self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


SINKS = {"csv": CSVSink, "jsonl": JSONLSink, "tensorboard": TensorBoardSink}


class MetricLogger:
    """Fans each row out to the configured sinks."""

    def __init__(self, run_dir: Path, sinks: Iterable[str], columns: list[str], key: str = "logger.sinks"):
        self.sinks = []
        for name in sinks:
            if name not in SINKS:
                raise ConfigError(f"{key}: unknown sink '{name}'{suggest(name, SINKS)}; valid: {', '.join(SINKS)}")
        for name in sinks:
            self.sinks.append(SINKS[name](run_dir, columns))

    def log(self, row: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink.log(row)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def truncate_after(run_dir: Path, epoch: int) -> None:
    """Drop metric rows of epochs after ``epoch`` (used on resume: no duplicated rows)."""
    jsonl = run_dir / "metrics.jsonl"
    if jsonl.exists():
        rows = [line for line in jsonl.read_text().splitlines() if line.strip()]
        kept = [line for line in rows if json.loads(line).get("epoch", 0) <= epoch]
        jsonl.write_text("".join(line + "\n" for line in kept))
    path = run_dir / "metrics.csv"
    if path.exists():
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            kept_rows = [r for r in reader if r.get("epoch") and int(r["epoch"]) <= epoch]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(kept_rows)
