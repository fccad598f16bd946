"""The pairing-protocol task: the measured window equals the rule's analytic window; an interrupted
run resumes to the same window; its rows reach the configured sinks."""

from __future__ import annotations

import csv
import json
import math

import pytest
from omegaconf import OmegaConf

from snnrun import checkpoint
from snnrun.tasks.stdp_window import ProtocolParams, measure_window
from snnrun.tasks import get_task

from conftest import compose_config, run_cli
from stopping import stop_after_checkpoints, tensorboard_scalars


def test_stdp_window_equals_exponentials_times_pairings():
    p = ProtocolParams(dt_min=-20, dt_max=20, dt_step=10, pairings=2, frequency=1.0)
    rows = dict(measure_window({"name": "stdp", "a_plus": 0.01, "a_minus": 0.02, "tau_plus": 15.0,
                                "tau_minus": 30.0}, p, dt=1.0))
    assert sorted(rows) == [-20, -10, 0, 10, 20]
    for dt_ms in (10, 20):
        assert rows[dt_ms] == pytest.approx(2 * 0.01 * math.exp(-dt_ms / 15.0), rel=1e-9)
        assert rows[-dt_ms] == pytest.approx(-2 * 0.02 * math.exp(-dt_ms / 30.0), rel=1e-9)
    assert rows[0] == pytest.approx(0.0, abs=1e-12)  # same-step pairs do not interact (weights_first)


def test_mstdp_window_has_the_stdp_shape_under_positive_reward():
    p = ProtocolParams(dt_min=-10, dt_max=10, dt_step=10, pairings=2, frequency=1.0)
    rows = dict(measure_window({"name": "mstdp", "a_plus": 0.01, "a_minus": 0.01}, p, dt=1.0))
    assert rows[10] == pytest.approx(2 * 0.01 * math.exp(-0.5), rel=1e-9)
    assert rows[-10] == pytest.approx(-2 * 0.01 * math.exp(-0.5), rel=1e-9)


def test_task_writes_csv_and_summary(tmp_path):
    cfg = compose_config(["experiment=stdp_window", "learner=postpre", "protocol.dt_step=25", "protocol.pairings=2"])
    summary = get_task("stdp_window").run(cfg, tmp_path, False)
    rows = list(csv.DictReader(open(tmp_path / "stdp_window.csv")))
    assert [float(r["dt_ms"]) for r in rows] == [-50, -25, 0, 25, 50]
    assert float(rows[3]["dw"]) > 0 > float(rows[1]["dw"])
    assert json.loads((tmp_path / "summary.json").read_text())["learner"] == "postpre" == summary["learner"]


def test_gradient_learner_is_rejected(tmp_path):
    from snnrun.errors import ConfigError

    cfg = compose_config(["experiment=stdp_window", "learner=bptt"])
    with pytest.raises(ConfigError, match=r"^learner.name: 'bptt' is a gradient learner"):
        get_task("stdp_window").run(cfg, tmp_path, False)


PAIRS = ["experiment=stdp_window", "learner=postpre", "protocol.dt_step=25", "protocol.pairings=2", "plots=off"]


def test_interrupted_run_resumes_to_the_same_window(tmp_path, monkeypatch):
    """SIGTERM after the third checkpoint (start, Δt 1 and 2 done): status interrupted, last.pt holds
    2 points; resuming measures the other 3 and ends with the uninterrupted run's files."""
    cfg = compose_config(PAIRS)
    task = get_task("stdp_window")
    reference = task.run(cfg, tmp_path / "reference", False)
    run_dir = tmp_path / "run"
    saved = stop_after_checkpoints(monkeypatch, 3)
    stopped = task.run(cfg, run_dir, False)
    assert stopped["status"] == "interrupted" and stopped["signal"] == "SIGTERM"
    assert stopped["checkpoint"] == {"point": 2} and saved == [0, 1, 2]
    reference_csv = csv.DictReader(open(tmp_path / "reference" / "stdp_window.csv"))
    window = [[float(r["dt_ms"]), float(r["dw"])] for r in reference_csv]
    assert checkpoint.load(run_dir / "checkpoints" / "last.pt")["rows"] == window[:2]
    assert not (run_dir / "stdp_window.csv").exists()
    resumed = task.run(cfg, run_dir, True)
    assert saved == [0, 1, 2, 3, 4, 5]  # only the missing Δt values were measured
    assert resumed["status"] == "completed" and resumed["resumes"][0]["point"] == 2
    assert (run_dir / "stdp_window.csv").read_text() == (tmp_path / "reference" / "stdp_window.csv").read_text()
    assert (run_dir / "metrics.csv").read_text() == (tmp_path / "reference" / "metrics.csv").read_text()
    for key in ("points", "max_dw", "max_dw_at_ms", "min_dw", "min_dw_at_ms"):
        assert resumed[key] == reference[key]


def test_snnrun_resume_continues_an_interrupted_run(tmp_path, monkeypatch):
    """`snnrun resume RUN_DIR` runs the task from its last checkpoint (the run directory as Hydra
    leaves it: .hydra/config.yaml)."""
    cfg = compose_config(PAIRS)
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    stop_after_checkpoints(monkeypatch, 2)
    assert get_task("stdp_window").run(cfg, run_dir, False)["status"] == "interrupted"
    proc = run_cli("resume", str(run_dir), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["points"] == 5 and len(summary["resumes"]) == 1
    assert [r["point"] for r in csv.DictReader(open(run_dir / "metrics.csv"))] == ["1", "2", "3", "4", "5"]


def test_window_rows_reach_tensorboard(tmp_path):
    pytest.importorskip("tensorboard", reason="the TensorBoard sink needs: the `tensorboard` extra")
    cfg = compose_config([*PAIRS, "logger.sinks=[csv,tensorboard]"])
    get_task("stdp_window").run(cfg, tmp_path, False)
    scalars = tensorboard_scalars(tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "stdp_window.csv")))
    assert [step for step, _ in scalars["dw"]] == [1, 2, 3, 4, 5]
    assert [value for _, value in scalars["dw"]] == pytest.approx([float(r["dw"]) for r in rows], rel=1e-6)
    assert [value for _, value in scalars["dt_ms"]] == [-50, -25, 0, 25, 50]
    assert not (tmp_path / "metrics.jsonl").exists()  # only the configured sinks
