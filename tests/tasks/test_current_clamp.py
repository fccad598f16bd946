"""The current-clamp task: recorded arrays, f–I table, waveforms, trace files; an interrupted run
resumed exactly; metrics in TensorBoard."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from conftest import compose_config, run_cli
from snnrun.tasks import current_clamp as clamp_task
from snnrun.tasks.current_clamp import run as current_clamp
from snnrun.errors import DataError
from stopping import stop_after_checkpoints, tensorboard_scalars


def clamp(tmp_path, *overrides):
    cfg = compose_config(["experiment=current_clamp", *overrides])
    return current_clamp(cfg, tmp_path), tmp_path


def test_lif_f_i_curve_matches_closed_form(tmp_path):
    summary, run = clamp(tmp_path, "neuron=lif", "neuron.tau_m=20", "clamp.current=[0.5,1.5,3.0]",
                         "clamp.duration=1000", "network.dt=0.05")
    data = np.load(run / "monitors" / "cell.npz")
    assert data["v"].shape == (20000, 3) and data["spikes"].shape == (20000, 3)
    assert data["time_ms"][0] == pytest.approx(0.05) and data["time_ms"][-1] == pytest.approx(1000)
    rows = list(csv.DictReader(open(run / "fi_curve.csv")))
    assert [float(r["current"]) for r in rows] == [0.5, 1.5, 3.0]
    assert int(rows[0]["spikes"]) == 0  # R I below threshold
    for row in rows[1:]:
        ri = float(row["current"])
        period = 20 * math.log(ri / (ri - 1.0))
        assert float(row["rate_hz"]) == pytest.approx(1000 / period, rel=0.03)
    times = [float(r["time_ms"]) for r in csv.DictReader(open(run / "spike_times.csv")) if r["neuron"] == "1"]
    assert len(times) == int(rows[1]["spikes"]) and times[0] == pytest.approx(20 * math.log(3), abs=0.05)
    assert data["v"][:, 0].max() < 1.0 and summary["fi_curve"][2]["spikes"] == int(rows[2]["spikes"])


def test_step_waveform_and_trace_file(tmp_path):
    summary, run = clamp(tmp_path / "a", "neuron=if", "clamp.current=2.0", "clamp.shape=step",
                         "clamp.onset=10", "clamp.offset=20", "clamp.duration=40", "network.dt=1.0")
    data = np.load(run / "monitors" / "cell.npz")
    assert data["current"][:, 0].tolist() == [0.0] * 10 + [2.0] * 10 + [0.0] * 20
    assert data["spikes"][:10].sum() == 0 and data["spikes"][20:].sum() == 0 and data["spikes"].sum() == 10
    trace = np.zeros((40, 2))
    trace[5:, 1] = 0.5
    np.save(tmp_path / "trace.npy", trace)
    summary, run = clamp(tmp_path / "b", "neuron=if", f"clamp.current={tmp_path / 'trace.npy'}",
                         "clamp.duration=40", "network.dt=1.0")
    data = np.load(run / "monitors" / "cell.npz")
    assert data["spikes"][:, 0].sum() == 0 and data["spikes"][:, 1].sum() == 17  # one spike per 2 steps
    np.save(tmp_path / "short.npy", np.zeros(3))
    with pytest.raises(DataError, match=r"clamp.current: .*short.npy must be a numeric \[T\] or \[T, N\] array"):
        clamp(tmp_path / "c", f"clamp.current={tmp_path / 'short.npy'}", "clamp.duration=40", "network.dt=1.0")


def test_cli_runs_the_experiment(tmp_path):
    proc = run_cli("experiment=current_clamp", "neuron=izh", "clamp.current=[0,10]", "clamp.duration=200",
                   f"hydra.run.dir={tmp_path}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "f-I: 0 -> 0.0 Hz, 10 ->" in proc.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["neuron"] == "izh" and summary["fi_curve"][1]["spikes"] > 0


def test_step_offset_before_onset_is_a_config_error(tmp_path):
    from snnrun.errors import ConfigError
    with pytest.raises(ConfigError, match=r"clamp.offset: 5.0 ms must be after clamp.onset \(10.0 ms\)"):
        clamp(tmp_path, "clamp.shape=step", "clamp.onset=10", "clamp.offset=5", "network.dt=1.0")


#: escape noise: every step draws from the global RNG, which a resume must restore
NOISY = ["neuron=lif", "neuron.escape_noise=true", "neuron.delta_u=0.3", "clamp.current=[0.8,1.5,3.0]",
         "clamp.duration=50", "network.dt=0.1", "++clamp.checkpoint_every=10", "plots=off"]
OUTPUTS = ("fi_curve.csv", "spike_times.csv", "metrics.csv")


def same_recording(run, reference, files=OUTPUTS):
    for name in files:
        assert (run / name).read_text() == (reference / name).read_text(), name
    with np.load(run / "monitors" / "cell.npz") as a, np.load(reference / "monitors" / "cell.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            assert np.array_equal(a[key], b[key]), key


def test_chunks_continue_the_neuron_state_and_an_interrupted_run_resumes_exactly(tmp_path, monkeypatch):
    """Five chunks of 100 steps equal one call over the 500 steps (the neuron module carries its state
    between calls); SIGTERM after the second chunk's checkpoint, resume: the same recording."""
    one_call, _ = clamp(tmp_path / "one", *NOISY, "++clamp.checkpoint_every=50")  # 500 steps in one chunk
    reference, _ = clamp(tmp_path / "reference", *NOISY)
    same_recording(tmp_path / "reference", tmp_path / "one", OUTPUTS[:2])
    assert [int(r["steps"]) for r in csv.DictReader(open(tmp_path / "reference" / "metrics.csv"))] == \
        [100, 200, 300, 400, 500]
    saved = stop_after_checkpoints(monkeypatch, 3)
    stopped, run = clamp(tmp_path / "run", *NOISY)
    assert stopped["status"] == "interrupted" and stopped["checkpoint"] == {"steps": 200} and saved == [0, 100, 200]
    assert not (run / "fi_curve.csv").exists()
    resumed = current_clamp(compose_config(["experiment=current_clamp", *NOISY]), run, True)
    assert resumed["status"] == "completed" and resumed["resumes"][0]["steps"] == 200
    assert resumed["fi_curve"] == reference["fi_curve"] and sum(r["spikes"] for r in resumed["fi_curve"]) > 10
    same_recording(run, tmp_path / "reference")


def test_a_model_without_carried_state_runs_in_one_call(tmp_path, monkeypatch):
    """A neuron module whose state cannot be carried between calls: the run is simulated again in one
    call (warned), checkpointed only at its end, with the same result."""
    clamp(tmp_path / "reference", *NOISY)
    monkeypatch.setattr(clamp_task, "_neuron_state", lambda neuron: None)
    saved = stop_after_checkpoints(monkeypatch, 0)
    summary, run = clamp(tmp_path / "run", *NOISY)
    assert summary["status"] == "completed" and saved == [0, 500]
    for name in ("fi_curve.csv", "spike_times.csv"):
        assert (run / name).read_text() == (tmp_path / "reference" / name).read_text()


def test_metrics_reach_tensorboard(tmp_path):
    pytest.importorskip("tensorboard", reason="the TensorBoard sink needs: the `tensorboard` extra")
    summary, run = clamp(tmp_path, *NOISY, "logger.sinks=[csv,tensorboard]")
    spikes = tensorboard_scalars(run)["spikes"]
    assert [step for step, _ in spikes] == [100, 200, 300, 400, 500]
    assert spikes[-1][1] == sum(r["spikes"] for r in summary["fi_curve"])
