"""Activity check (silent/saturated populations, trainer.activity_check) and the firing-rate
regulariser (learner.rate_reg)."""

from __future__ import annotations

import json
import logging
import math
import re

import pytest
import torch
from omegaconf import OmegaConf

from conftest import TINY, compose_config, run_cli
from snnrun import checkpoint
from snnrun.activity import ActivityCheck, ActivityError
from snnrun.build import build_experiment
from snnrun.errors import ConfigError
from snnrun.kernels import lif_scan
from snnrun.runner import Runner

# no input current, whatever the neuron's units, and kept so (BPTT would otherwise wake it through the surrogate)
SILENT_HIDDEN = ["network.projections.inp_hidden.synapse.gain=0.0", "learner.trainable=[hidden_out]"]
SATURATED_HIDDEN = ["network.projections.inp_hidden.synapse.init=constant",  # every weight +1: every neuron driven
                    "+network.projections.inp_hidden.synapse.value=1.0"]


def fit(cfg, run_dir, caplog) -> tuple[dict, list[str], Runner]:
    run = Runner(build_experiment(cfg), run_dir, OmegaConf.to_yaml(cfg))
    with caplog.at_level(logging.INFO, logger="snnrun"):
        summary = run.fit()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("activity:")]
    return summary, lines, run


def keys_in(message: str) -> list[str]:
    """The config keys a hint names (``raise network.projections.x.synapse.gain (now 0)``)."""
    return re.findall(r"(?:raise|lower) ([\w.\[\]]+) \(now", message)


def test_silent_hidden_layer_is_reported_once_naming_real_config_keys(tiny_cfg, tmp_path, caplog):
    cfg = tiny_cfg(*SILENT_HIDDEN)
    summary, lines, _ = fit(cfg, tmp_path, caplog)
    hidden = [m for m in lines if m.startswith("activity: population 'hidden'")]
    assert len(hidden) == 1, lines  # reported at first sighting, not again at the end of epochs 1 and 2
    assert "is silent after the first 2 training batches (0 Hz; 100% of its 16 neurons never spiked)" in hidden[0]
    assert "raise network.projections.inp_hidden.synapse.gain (now 0)" in hidden[0]
    keys = keys_in(hidden[0])
    assert {"network.projections.inp_hidden.synapse.gain", "neuron.r"} <= set(keys)
    assert all(OmegaConf.select(cfg, key) is not None for key in keys), keys  # every key named exists
    out = [m for m in lines if m.startswith("activity: population 'out'")]  # judged at the end of epochs
    assert len(out) == 1 and "in training epoch 1" in out[0], lines
    assert "first revive its silent input population 'hidden'" in out[0]
    assert summary["status"] == "completed"
    assert summary["activity"]["hidden"] == {"first_seen_epoch": 1, "first_seen_batch": 2, "status": "silent",
                                             "rate_hz": 0.0, "silent_fraction": 1.0}
    assert json.loads((tmp_path / "summary.json").read_text())["activity"]["out"]["status"] == "silent"


def test_activity_check_stop_exits_2_with_one_line_and_keeps_the_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(*TINY, *SILENT_HIDDEN, "trainer.activity_check=stop", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("snnrun: error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert re.match(r"snnrun: error: trainer.activity_check=stop: population 'hidden' is silent after the first 2 "
                    r"training batches \(0 Hz.*\); try: raise network.projections.inp_hidden.synapse.gain \(now 0\).*; "
                    r"\S*/checkpoints/last.pt holds epoch 0$", errors[0]), errors[0]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["epochs_completed"] == 0
    assert summary["activity"]["hidden"]["status"] == "silent" and summary["error"] in errors[0]
    assert checkpoint.load(run_dir / "checkpoints" / "last.pt")["epoch"] == 0


def test_saturated_population_is_detected_and_recorded(tiny_cfg, tmp_path, caplog):
    summary, lines, run = fit(tiny_cfg(*SATURATED_HIDDEN, "trainer.epochs=1"), tmp_path, caplog)
    hidden = [m for m in lines if m.startswith("activity: population 'hidden'")]
    assert len(hidden) == 1 and "is saturated after the first 2 training batches" in hidden[0], lines
    assert "lower network.projections.inp_hidden.synapse.gain (now 3)" in hidden[0]
    assert "raise neuron.v_th" in hidden[0] and "lower encoder.max_rate" in hidden[0]
    record = summary["activity"]["hidden"]
    assert record["status"] == "saturated" and record["rate_hz"] >= 0.95 * 1000 / run.exp.network.dt


def test_findings_are_reported_once_per_episode_and_stop_raises(tiny_cfg, caplog):
    exp = build_experiment(tiny_cfg())
    caplog.clear()  # the build's own log lines (the calibration's) are not the check's
    check = ActivityCheck(exp, mode="warn")
    assert check.early == ["hidden"]  # the trained readout is judged at the end of epochs only
    rates = {1: 0.0, 2: 0.0, 3: 12.0, 4: 0.0}
    with caplog.at_level(logging.INFO, logger="snnrun"):
        for epoch, hz in rates.items():
            check.after_epoch(epoch, {"train/rate/hidden": hz, "train/rate/out": 5.0})
    said = [r.getMessage() for r in caplog.records]
    assert [m.split(" (")[0] for m in said] == ["activity: population 'hidden' is silent in training epoch 1",
                                                "activity: population 'hidden' recovered in training epoch 3",
                                                "activity: population 'hidden' is silent in training epoch 4"]
    assert check.summary() == {"hidden": {"first_seen_epoch": 1, "status": "silent", "rate_hz": 0.0}}
    resumed = ActivityCheck(exp, mode="warn")
    resumed.load_state_dict(check.state_dict())  # kept in checkpoints: a resumed run does not say it again
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="snnrun"):
        resumed.after_epoch(5, {"train/rate/hidden": 0.0, "train/rate/out": 5.0})
    assert not caplog.records
    strict = ActivityCheck(exp, mode="stop")
    with pytest.raises(ActivityError, match=r"^trainer.activity_check=stop: population 'out' is saturated in "
                                            r"training epoch 1 \(990 Hz: a spike on 99% of the steps"):
        strict.after_epoch(1, {"train/rate/hidden": 20.0, "train/rate/out": 990.0})
    with pytest.raises(ConfigError, match=r"trainer.activity_check: 'loud' is not one of warn, stop, off"):
        ActivityCheck(exp, mode="loud")


def test_activity_check_key_is_validated():
    with pytest.raises(ConfigError, match=r"trainer.activity_check: 'loud' is not allowed; choose one of warn, stop, "
                                          r"off"):
        build_experiment(compose_config(TINY + ["trainer.activity_check=loud"]))


def test_default_experiment_reports_no_activity_problem(tmp_path, caplog):
    cfg = compose_config(["device=cpu", "trainer.epochs=1", "trainer.progress=false", "plots=off"])
    summary, lines, _ = fit(cfg, tmp_path, caplog)
    assert lines == [] and summary["activity"] == {}


# --- firing-rate regulariser -----------------------------------------------------------------------
def test_rate_regulariser_pulls_the_hidden_rate_to_its_target(tiny_cfg, tmp_path, caplog):
    # from the same initial weights, training alone takes the hidden layer from about 20 Hz to about 200 Hz
    target = 20.0
    plain, _, _ = fit(tiny_cfg("trainer.epochs=3"), tmp_path / "plain", caplog)
    reg, _, _ = fit(tiny_cfg("trainer.epochs=3", "learner.rate_reg.weight=1e-4",
                             f"learner.rate_reg.target_hz={{hidden: {target}}}"), tmp_path / "reg", caplog)
    free, held = plain["final"]["train/rate/hidden"], reg["final"]["train/rate/hidden"]
    assert abs(held - target) < 0.5 * abs(free - target), (free, held)
    rows = [json.loads(line) for line in (tmp_path / "reg" / "metrics.jsonl").read_text().splitlines()]
    penalties = [r["train/rate_reg_loss"] for r in rows if r["split"] == "train"]
    assert len(penalties) == 3 and all(math.isfinite(p) and p > 0 for p in penalties)
    assert "train/rate_reg_loss" in (tmp_path / "reg" / "metrics.csv").read_text().splitlines()[0]
    assert "train/rate_reg_loss" not in (tmp_path / "plain" / "metrics.csv").read_text().splitlines()[0]


@pytest.mark.parametrize("per", ["neuron", "population"])
def test_rate_regulariser_gradient_is_finite_and_the_fused_scan_gives_the_reference_one(tiny_cfg, per):
    exp = build_experiment(tiny_cfg("learner.rate_reg.weight=1e-3", "learner.rate_reg.target_hz=40",
                                    f"learner.rate_reg.per={per}"))
    learner, weight = exp.learners[0], exp.network.projections["inp_hidden"].stages[0].weight
    assert list(learner.rate_reg.targets) == ["hidden"]  # one number: every hidden population
    x = exp.data.x_train[:16]
    torch.manual_seed(0)
    spikes_in = exp.encoder(x)
    grads = []
    for fused in (True, False):
        lif_scan.set_enabled(fused)
        try:
            exp.network.reset()
            out = exp.network(spikes_in)
            assert out.spikes["hidden"].requires_grad
            penalty = learner.penalty(out)
            weight.grad = None
            penalty.backward()
        finally:
            lif_scan.set_enabled(True)
        assert torch.isfinite(penalty) and penalty > 0
        grads.append(weight.grad.clone())
    assert torch.isfinite(grads[0]).all() and grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-7)


def test_rate_regulariser_config_errors(tiny_cfg):
    with pytest.raises(ConfigError, match=r"learner.rate_reg.target_hz.hiden: no spiking population 'hiden' "
                                          r"\(did you mean `hidden`\?\); valid: hidden, out"):
        build_experiment(tiny_cfg("learner.rate_reg.weight=1e-3", "learner.rate_reg.target_hz={hiden: 20}"))
    with pytest.raises(ConfigError, match=r"learner.rate_reg.target_hz: name a target rate per population"):
        build_experiment(tiny_cfg("learner.rate_reg.weight=1e-3"))
    with pytest.raises(ConfigError, match=r"learner.rate_reg.target_hz.hidden: expected a rate >= 0 in Hz"):
        build_experiment(tiny_cfg("learner.rate_reg.weight=1e-3", "learner.rate_reg.target_hz={hidden: -1}"))
    with pytest.raises(ConfigError, match=r"learner.rate_reg.per: 'layer' is not allowed"):
        build_experiment(tiny_cfg("learner.rate_reg.per=layer"))


def test_hints_for_calibrated_weights_name_init_rate_not_the_gain(tiny_cfg):
    plain = ActivityCheck(build_experiment(tiny_cfg("network.init_rate=null")), mode="warn").hints("hidden", "silent")
    assert "raise network.projections.inp_hidden.synapse.gain (now 3)" in plain
    assert any(h.startswith("set network.init_rate=20 (rescales the initial weights") for h in plain), plain
    calibrated = ActivityCheck(build_experiment(tiny_cfg("network.init_rate=20")), mode="warn").hints("hidden", "silent")
    assert "raise network.init_rate (now 20 Hz)" in calibrated
    assert not any("synapse.gain" in h for h in calibrated), calibrated
