"""Metric sinks: CSV/JSONL always; TensorBoard and MLflow when installed."""

from __future__ import annotations

import csv
import json
import math
import sys

import numpy as np
import pytest

from snnrun.build import build_experiment
from snnrun.errors import ConfigError
from snnrun.loggers import MetricLogger
from snnrun.runner import Runner

COLUMNS = ["epoch", "step", "split", "train/loss", "train/synops/total", "test/accuracy"]
ROWS = [{"epoch": 1, "step": 4, "split": "train", "train/loss": 1.5, "train/synops/total": 100.0},
        {"epoch": 1, "step": 4, "split": "test", "test/accuracy": float("nan")},
        {"epoch": 2, "step": 8, "split": "train", "train/loss": 0.75, "train/synops/total": 120.0, "extra/x": 3.0}]


def _log(tmp_path, sinks, tensors=True):
    log = MetricLogger(tmp_path, sinks, COLUMNS, config={"name": "unit", "seed": 3, "network": {"dt": 1.0}})
    for row in ROWS:
        log.log(row)
        if tensors and row["split"] == "train":
            log.log_tensors(row["epoch"], {"weights/a": np.linspace(-1, 1, 50), "rates_hz/h": np.arange(10.0)},
                            {"raster/h": (np.eye(8, 12) * 255).astype(np.uint8)})
    log.close()


def test_csv_and_jsonl_rows(tmp_path):
    _log(tmp_path, ["csv", "jsonl"])
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert list(rows[0]) == COLUMNS  # fixed columns; keys outside them are left to JSONL
    assert [r["train/loss"] for r in rows] == ["1.5", "", "0.75"]
    assert rows[1]["test/accuracy"] == "nan"
    lines = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert lines[1]["test/accuracy"] is None  # NaN is not JSON
    assert lines[2]["extra/x"] == 3.0 and len(lines) == 3


def test_unknown_sink_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"^logger.sinks: unknown sink 'tensorbord' \(did you mean `tensorboard`"):
        MetricLogger(tmp_path, ["csv", "tensorbord"], COLUMNS)


def test_tensorboard_scalars_histograms_and_images(tmp_path):
    pytest.importorskip("tensorboard", reason="the TensorBoard sink needs: the `tensorboard` extra: python3 bootstrap.py --extras tensorboard setup")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _log(tmp_path, ["tensorboard"])
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"histograms": 0, "images": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    loss = acc.Scalars("train/loss")
    assert [(e.step, e.value) for e in loss] == [(1, 1.5), (2, 0.75)]
    assert "test/accuracy" not in tags["scalars"]  # NaN is skipped
    assert {"weights/a", "rates_hz/h"} <= set(tags["histograms"])
    hist = acc.Histograms("rates_hz/h")[0].histogram_value
    assert hist.num == 10 and hist.sum == pytest.approx(45.0)
    image = acc.Images("raster/h")[-1]
    assert (image.width, image.height) == (12, 8)


def test_mlflow_local_store_and_resume(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the MLflow sink needs: the `mlflow` extra: python3 bootstrap.py --extras mlflow setup")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _log(tmp_path, ["mlflow"], tensors=False)
    store = tmp_path / "mlruns"
    run_id = (store / "snnrun_run_id").read_text()
    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    history = client.get_metric_history(run_id, "train/loss")
    assert sorted((m.step, m.value) for m in history) == [(1, 1.5), (2, 0.75)]
    run = client.get_run(run_id)
    assert run.data.params["seed"] == "3" and run.data.params["network.dt"] == "1.0"
    assert run.info.status == "FINISHED"
    assert "test/accuracy" not in run.data.metrics  # NaN is skipped
    # a resumed run appends to the same MLflow run
    log = MetricLogger(tmp_path, ["mlflow"], COLUMNS, config={"name": "unit"})
    log.log({"epoch": 3, "step": 12, "split": "train", "train/loss": 0.5})
    log.close()
    assert (store / "snnrun_run_id").read_text() == run_id
    assert sorted(m.step for m in client.get_metric_history(run_id, "train/loss")) == [1, 2, 3]


def test_runner_sends_tensors_to_tensorboard(tiny_cfg, tmp_path):
    pytest.importorskip("tensorboard", reason="the TensorBoard sink needs: the `tensorboard` extra: python3 bootstrap.py --extras tensorboard setup")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    Runner(build_experiment(tiny_cfg("logger=tensorboard")), tmp_path, "").fit()
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"histograms": 0, "images": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"test/accuracy", "train/synops/total", "test/silent/hidden", "dw/inp_hidden"} <= set(tags["scalars"])
    assert {"weights/inp_hidden", "rates_hz/hidden"} <= set(tags["histograms"])
    assert {"raster/hidden", "raster/out"} <= set(tags["images"])
    assert [e.step for e in acc.Scalars("test/accuracy")] == [1, 2]
    rates = acc.Histograms("rates_hz/hidden")[-1].histogram_value
    assert rates.num == 16 and math.isfinite(rates.sum)


def test_console_log_lines_go_through_tqdm_during_fit(tiny_cfg, tmp_path, monkeypatch):
    import logging
    import sys

    from tqdm.contrib.logging import _TqdmLoggingHandler

    console = logging.StreamHandler(sys.stderr)
    root = logging.getLogger()
    root.addHandler(console)
    seen = []
    fit_epoch = Runner._fit_epoch

    def spy(self, *args):
        seen.append([type(h) for h in root.handlers])
        return fit_epoch(self, *args)

    monkeypatch.setattr(Runner, "_fit_epoch", spy)
    try:
        Runner(build_experiment(tiny_cfg("trainer.progress=true")), tmp_path, "").fit()
        restored = console in root.handlers
    finally:
        root.removeHandler(console)
    assert len(seen) == 2
    for types in seen:  # while bars may be open, the console handler is swapped for one using tqdm.write
        assert _TqdmLoggingHandler in types and logging.StreamHandler not in types
    assert restored  # and put back after the fit


def test_resume_warns_about_corrupt_metric_rows_and_keeps_the_good_ones(tmp_path, caplog):
    import logging

    from snnrun.loggers import truncate_after

    good = [json.dumps({"epoch": e, "split": "train", "train/loss": 1.0 / e}) for e in (1, 2, 3)]
    jsonl = tmp_path / "metrics.jsonl"
    jsonl.write_bytes("\n".join([good[0], '{"epoch": 1, "spl', good[1], '{"epoch": 2, "split": "t\xe9st"}'])
                      .encode("latin-1") + b"\n" + good[2].encode() + b"\n" + b'[1, 2]\n{"epoch": 3, "sp')
    csv_path = tmp_path / "metrics.csv"
    csv_path.write_bytes(b"epoch,split,train/loss\n1,train,1.0\n1,tr\xffin,0.9\n2,train\n2,train,0.5\n3,train,0.3\n")
    with caplog.at_level(logging.WARNING, logger="snnrun"):
        truncate_after(tmp_path, 2)
    assert [json.loads(line)["epoch"] for line in jsonl.read_text().splitlines()] == [1, 2]
    assert [(r["epoch"], r["train/loss"]) for r in csv.DictReader(open(csv_path))] == [("1", "1.0"), ("2", "0.5")]
    warnings = [r.getMessage() for r in caplog.records]
    for where in (f"{jsonl} line 2", f"{jsonl} line 4", f"{jsonl} line 6", f"{jsonl} line 7",
                  f"{csv_path} line 3", f"{csv_path} line 4"):
        assert any(w.startswith(where + ":") for w in warnings), (where, warnings)
    assert any("not UTF-8" in w for w in warnings) and len(warnings) == 6
    assert all(len(w.splitlines()) == 1 for w in warnings)


def test_install_hint_names_this_installation():
    """snnrun is not on PyPI: the hint installs the extra into this checkout's installation."""
    from snnrun.extras import install_command, needs

    command = install_command("plots")
    assert command.startswith(sys.executable) and "pip install" in command
    assert "[plots]" in command and "snnrun[plots]'" not in command.split("@")[0]
    assert needs("tonic", "data: x").startswith("data: x needs the optional extra 'tonic': ")
