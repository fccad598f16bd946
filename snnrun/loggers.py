"""Metric sinks: CSV and JSONL (always); TensorBoard, MLflow and W&B (optional extras).

Every sink receives one row per epoch and split (``log(row)``), flushed as
written, so a killed run keeps every finished epoch. A row's step (the x axis of TensorBoard,
MLflow and W&B) is its ``epoch``; a task whose rows count something else (trials, samples) names
that column (``MetricLogger(step_key=...)``) and the columns TensorBoard shows as scalars
(``scalars=...``; by default those whose name has a ``/``, as ``train/loss``). Sinks that can show
tensors also receive, once per epoch, histograms (weights, per-neuron firing
rates in Hz) and images (spike rasters, neurons x steps) via
``log_tensors(step, histograms, images)``; CSV and JSONL ignore them.

- ``csv``: ``<run dir>/metrics.csv`` (fixed columns, blank where a split has no value)
- ``jsonl``: ``<run dir>/metrics.jsonl`` (one JSON object per row; NaN/inf as null)
- ``tensorboard``: event files in ``<run dir>/tb`` (scalars, histograms, images)
- ``mlflow``: a local file store ``<run dir>/mlruns`` (metrics per epoch, the config as params
  and as ``config.json`` artifact), or ``$MLFLOW_TRACKING_URI`` when set; browse with
  ``MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri <run dir>/mlruns``
- ``wandb``: Weights & Biases in offline mode under ``<run dir>/wandb`` (``wandb sync`` uploads later)
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Iterable

from .errors import ConfigError
from .extras import needs
from .schema import suggest

log = logging.getLogger("snnrun")


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _flatten(node: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: json.dumps(node) if isinstance(node, (list, tuple)) else str(node)}


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
    """Scalars per epoch (step = epoch), weight and firing-rate histograms, raster images."""

    step_key = "epoch"
    scalars: tuple[str, ...] | None = None  # the columns shown as scalars (None: names with a "/")

    def __init__(self, run_dir: Path, columns: list[str], config: dict | None = None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(needs("tensorboard", "logger.sinks: 'tensorboard'")) from None
        self.writer = SummaryWriter(log_dir=str(run_dir / "tb"))

    def log(self, row: dict[str, Any]) -> None:
        step = row.get(self.step_key, 0)
        for key, value in row.items():
            if (key in self.scalars if self.scalars is not None else "/" in key) and _numeric(value):
                self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def log_tensors(self, step: int, histograms: dict, images: dict) -> None:
        for name, values in histograms.items():
            if getattr(values, "size", 0):
                self.writer.add_histogram(name, values, step)
        for name, image in images.items():
            self.writer.add_image(name, image, step, dataformats="HW")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class MLflowSink:
    """MLflow tracking into a local file store ``<run dir>/mlruns`` (no server; ``$MLFLOW_TRACKING_URI``
    overrides it). A resumed run continues the same MLflow run (id kept in ``mlruns/snnrun_run_id``)."""

    step_key = "epoch"

    def __init__(self, run_dir: Path, columns: list[str], config: dict | None = None):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise ConfigError(needs("mlflow", "logger.sinks: 'mlflow'")) from None
        store = (Path(run_dir) / "mlruns").resolve()
        store.mkdir(parents=True, exist_ok=True)
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            # MLflow >= 3 keeps the file store in maintenance mode behind this switch; it needs no
            # server or database migration (an sqlite store takes ~8 s to create per run).
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = store.as_uri()
        self.client = MlflowClient(tracking_uri=uri)
        id_file = store / "snnrun_run_id"
        if id_file.exists():
            self.run_id = id_file.read_text().strip()
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            name = str((config or {}).get("name") or "snnrun")
            found = self.client.get_experiment_by_name(name)
            experiment_id = found.experiment_id if found else self.client.create_experiment(name)
            self.run_id = self.client.create_run(experiment_id, run_name=Path(run_dir).name).info.run_id
            id_file.write_text(self.run_id)
            if config:
                from mlflow.entities import Param
                params = [Param(k, v[:6000]) for k, v in _flatten(config).items() if k]
                for i in range(0, len(params), 100):
                    self.client.log_batch(self.run_id, params=params[i:i + 100])
                self.client.log_text(self.run_id, json.dumps(config, indent=2), "config.json")

    def log(self, row: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        step, now = int(row.get(self.step_key, 0) or 0), int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in row.items()
                   if _numeric(v) and k not in ("epoch", "step", self.step_key)]
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + 1000])

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


class WandbSink:
    """Weights & Biases in offline mode (files under ``<run dir>/wandb``; upload later with ``wandb sync``)."""

    step_key = "epoch"

    def __init__(self, run_dir: Path, columns: list[str], config: dict | None = None):
        try:
            import wandb
        except ImportError:
            raise ConfigError(needs("wandb", "logger.sinks: 'wandb'")) from None
        self.run = wandb.init(mode="offline", dir=str(run_dir), config=config or {}, name=Path(run_dir).name,
                              project=str((config or {}).get("name") or "snnrun"))

    def log(self, row: dict[str, Any]) -> None:
        self.run.log({k: v for k, v in row.items() if _numeric(v) and k not in ("epoch", self.step_key)},
                     step=int(row.get(self.step_key, 0) or 0))

    def close(self) -> None:
        self.run.finish()


SINKS = {"csv": CSVSink, "jsonl": JSONLSink, "tensorboard": TensorBoardSink, "mlflow": MLflowSink, "wandb": WandbSink}


class MetricLogger:
    """Fans each row out to the configured sinks.

    ``step_key``: the column holding each row's step (default ``epoch``); ``scalars``: the columns
    TensorBoard shows as scalars (default: those whose name has a ``/``)."""

    def __init__(self, run_dir: Path, sinks: Iterable[str], columns: list[str], key: str = "logger.sinks",
                 config: dict | None = None, step_key: str = "epoch", scalars: Iterable[str] | None = None):
        self.sinks = []
        for name in sinks:
            if name not in SINKS:
                raise ConfigError(f"{key}: unknown sink '{name}'{suggest(name, SINKS)}; valid: {', '.join(SINKS)}")
        for name in sinks:
            cls = SINKS[name]
            self.sinks.append(cls(run_dir, columns, config) if cls not in (CSVSink, JSONLSink) else cls(run_dir, columns))
        for sink in self.sinks:
            sink.step_key = step_key
            if scalars is not None and hasattr(sink, "scalars"):
                sink.scalars = tuple(scalars)

    def log(self, row: dict[str, Any]) -> None:
        for sink in self.sinks:
            try:
                sink.log(row)
            except OSError as err:  # full disk, vanished directory: say which file, keep the checkpoints
                from .errors import SnnrunError
                raise SnnrunError(f"cannot write metrics to {getattr(sink, 'path', type(sink).__name__)}: "
                                  f"{err.strerror or err}; the last good checkpoint is kept") from None

    @property
    def wants_tensors(self) -> bool:
        """Whether any sink shows histograms and images (else nobody needs them computed)."""
        return any(hasattr(sink, "log_tensors") for sink in self.sinks)

    def log_tensors(self, step: int, histograms: dict, images: dict) -> None:
        """Histograms (name -> array) and images (name -> [H, W] uint8) for the sinks that show them."""
        for sink in self.sinks:
            if hasattr(sink, "log_tensors"):
                sink.log_tensors(step, histograms, images)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def _decoded(raw: bytes) -> tuple[str | None, str]:
    """``(text, "")`` for a UTF-8 line, else ``(None, why not)``."""
    try:
        return raw.decode("utf-8"), ""
    except UnicodeDecodeError as err:
        return None, f"not UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})"


def truncate_after(run_dir: Path, epoch: int, key: str = "epoch") -> None:
    """Drop metric rows of epochs after ``epoch`` (used on resume: no duplicated rows); ``key``: the
    column that counts them (a task's ``MetricLogger(step_key=...)``, e.g. ``trial``).

    A row that cannot be read (cut short by a crash, not JSON, a CSV row with the wrong number of
    fields, bytes that are not UTF-8, no integer epoch) is dropped too, with a warning naming the
    file and line.
    """
    def dropped(path: Path, number: int, why: str) -> None:
        log.warning("%s line %d: %s; the row is dropped on resume", path, number, why)

    jsonl = run_dir / "metrics.jsonl"
    if jsonl.exists():
        kept = []
        for number, raw in enumerate(jsonl.read_bytes().splitlines(), 1):
            if not raw.strip():
                continue
            line, why = _decoded(raw)
            if line is None:
                dropped(jsonl, number, why)
                continue
            try:
                row = json.loads(line)
            except ValueError as err:
                dropped(jsonl, number, f"not a JSON object ({err})")
                continue
            value = row.get(key) if isinstance(row, dict) else None
            if not isinstance(value, int) or isinstance(value, bool):
                dropped(jsonl, number, f"not a metrics row (no integer {key})")
            elif value <= epoch:
                kept.append(line)
        jsonl.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    path = run_dir / "metrics.csv"
    if path.exists():
        lines = path.read_bytes().splitlines()
        header, why = _decoded(lines[0]) if lines else ("", "")
        if header is None or (lines and not header.strip()):
            dropped(path, 1, f"the header is {why or 'empty'}; every row of the file")
            path.write_bytes(b"")  # the sink writes a fresh header
            return
        columns = next(csv.reader([header])) if header else []
        kept_rows = []
        for number, raw in enumerate(lines[1:], 2):  # snnrun writes one row per line (no quoted newlines)
            if not raw.strip():
                continue
            line, why = _decoded(raw)
            if line is None:
                dropped(path, number, why)
                continue
            try:
                fields = next(csv.reader([line]))
            except csv.Error as err:
                dropped(path, number, f"not a CSV row ({err})")
                continue
            if len(fields) != len(columns):
                dropped(path, number, f"{len(fields)} fields, the header has {len(columns)}")
                continue
            row = dict(zip(columns, fields))
            if not (row.get(key, "").isascii() and row.get(key, "").isdigit()):
                dropped(path, number, f"not a metrics row (no integer {key})")
            elif int(row[key]) <= epoch:
                kept_rows.append(row)
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(kept_rows)
