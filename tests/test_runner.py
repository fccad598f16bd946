"""The epoch loop end to end, in process: run directory contents, seeds, resume."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from omegaconf import OmegaConf

from snnrun import checkpoint
from snnrun.build import build_experiment
from snnrun.errors import SnnrunError
from snnrun.runner import Runner


def fit(cfg, run_dir, resume=False):
    exp = build_experiment(cfg)
    return Runner(exp, run_dir, OmegaConf.to_yaml(cfg)).fit(resume=resume), exp


def test_run_directory_contents(tiny_cfg, tmp_path):
    summary, exp = fit(tiny_cfg(), tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [(r["epoch"], r["split"]) for r in rows] == [(e, s) for e in ("1", "2") for s in ("train", "val", "test")]
    for column in ("step", "train/loss", "train/accuracy", "val/loss", "val/accuracy", "test/loss", "test/accuracy",
                   "lr", "train/rate/hidden", "val/rate/out", "test/rate/out", "samples_per_s", "wall_time"):
        assert column in rows[0]
    assert float(rows[5]["test/accuracy"]) == pytest.approx(summary["final"]["test/accuracy"])
    # synthetic: 256 samples, 26 held out for validation (data.val_fraction: 0.1), batch 32
    assert len(exp.data.x_train) == 230 and int(rows[3]["step"]) == 2 * len(range(0, 230, 32))
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 6 and json.loads(lines[1])["split"] == "val" and json.loads(lines[2])["split"] == "test"
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["status"] == "completed" and saved["epochs_completed"] == 2 and saved["seed"] == 0
    assert saved["device"] == "cpu" and saved["wall_time_s"] > 0
    assert set(saved["versions"]) >= {"python", "torch", "snnrun", "git_commit"}
    # best.pt is selected on the validation split (trainer.monitor: auto), never on the test set
    assert saved["monitor"] == "val/accuracy" and saved["selection"]["split"] == "val"
    val = [float(r["val/accuracy"]) for r in rows if r["split"] == "val"]
    assert saved["best"]["val/accuracy"] == max(val) and saved["best"]["epoch"] == val.index(max(val)) + 1
    last = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    assert last["epoch"] == 2 and last["step"] == int(rows[3]["step"])
    assert set(last) >= {"model", "optimizer", "scheduler", "learners", "rng", "config_yaml", "decoder"}
    assert "neuron:" in last["config_yaml"]
    best = checkpoint.load(tmp_path / "checkpoints" / "best.pt")
    assert best["epoch"] == saved["best"]["epoch"]
    torch.testing.assert_close(last["model"]["projections.inp_hidden.stages.0.weight"],
                               exp.network.projections["inp_hidden"].stages[0].weight.detach())


def test_training_learns(tiny_cfg, tmp_path):
    summary, _ = fit(tiny_cfg("trainer.epochs=4", "network.duration=10"), tmp_path)
    assert summary["final"]["test/accuracy"] > 0.8  # 4 well-separated classes; chance is 0.25


def test_same_seed_repeats_exactly_and_other_seed_differs(tiny_cfg, tmp_path):
    a, _ = fit(tiny_cfg("seed=3"), tmp_path / "a")
    b, _ = fit(tiny_cfg("seed=3"), tmp_path / "b")
    c, _ = fit(tiny_cfg("seed=4"), tmp_path / "c")
    assert a["final"] == b["final"]
    assert a["final"]["train/rate/hidden"] != c["final"]["train/rate/hidden"]


def test_resume_matches_uninterrupted_run(tiny_cfg, tmp_path):
    full, full_exp = fit(tiny_cfg("trainer.epochs=3"), tmp_path / "full")
    part, _ = fit(tiny_cfg("trainer.epochs=3", "trainer.stop_after=1"), tmp_path / "part")
    assert part["status"] == "stopped" and part["epochs_completed"] == 1
    resumed, resumed_exp = fit(tiny_cfg("trainer.epochs=3"), tmp_path / "part", resume=True)
    assert resumed["status"] == "completed"
    for key, value in full["final"].items():
        assert resumed["final"][key] == pytest.approx(value, abs=1e-6), key
    for (name, a), (_, b) in zip(full_exp.network.state_dict().items(), resumed_exp.network.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    rows = list(csv.DictReader(open(tmp_path / "part" / "metrics.csv")))
    assert [(r["epoch"], r["split"]) for r in rows] == [(str(e), s) for e in (1, 2, 3) for s in ("train", "val", "test")]


def test_resume_drops_rows_written_after_the_checkpoint(tiny_cfg, tmp_path):
    fit(tiny_cfg("trainer.epochs=2", "trainer.stop_after=1"), tmp_path)
    with open(tmp_path / "metrics.jsonl", "a") as f:  # a row from an epoch that never checkpointed
        f.write(json.dumps({"epoch": 2, "split": "train"}) + "\n")
    fit(tiny_cfg("trainer.epochs=2"), tmp_path, resume=True)
    epochs = [json.loads(line)["epoch"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 1, 1, 2, 2, 2]  # train, val, test rows of each epoch


def test_voltage_decoder_and_step_scheduler(tiny_cfg, tmp_path):
    cfg = tiny_cfg("decoder=final_step_voltage", "+network.populations.out.neuron={name: leaky, tau_m: 5.0}",
                   "scheduler=cosine", "scheduler.interval=step", "scheduler.T_max=16")
    summary, exp = fit(cfg, tmp_path)
    assert exp.network.populations["out"].neuron.registry_name == "leaky"
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert float(rows[3]["lr"]) < float(rows[0]["lr"])  # the schedule stepped within the first epoch
    assert summary["final"]["test/accuracy"] > 0.25


def test_resume_under_the_run_lock_removes_stale_temporary_checkpoint_files(tiny_cfg, tmp_path):
    import os
    import subprocess
    import sys

    from snnrun.runlock import lock_run_dir, unlock_run_dir

    fit(tiny_cfg("trainer.epochs=2", "trainer.stop_after=1"), tmp_path)
    ckpt = tmp_path / "checkpoints"
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    stale = [ckpt / f".last.pt.tmp-{proc.pid}", ckpt / f".prev.pt.tmp-{os.getppid()}"]  # dead writer, live PID
    for path in stale:
        path.write_bytes(b"a write killed midway")
    assert lock_run_dir(tmp_path)
    try:
        summary, _ = fit(tiny_cfg("trainer.epochs=2"), tmp_path, resume=True)
    finally:
        unlock_run_dir(tmp_path)
    assert summary["status"] == "completed" and not any(p.exists() for p in stale)
    assert sorted(p.name for p in ckpt.iterdir() if p.name.startswith(".")) == []


def test_resume_with_an_unverified_last_checkpoint(tiny_cfg, tmp_path, caplog):
    fit(tiny_cfg("trainer.epochs=3", "trainer.stop_after=2"), tmp_path)
    ckpt = tmp_path / "checkpoints"
    (ckpt / "last.pt.sha256").unlink()
    exp = build_experiment(tiny_cfg("trainer.epochs=3", "trainer.stop_after=0"))
    with caplog.at_level("WARNING", logger="snnrun"):
        summary = Runner(exp, tmp_path, "").fit(resume=True)  # falls back to prev.pt (epoch 1)
    assert summary["epochs_completed"] == 1 and "last.pt is unverified" in caplog.text
    (ckpt / "prev.pt.sha256").unlink()
    (ckpt / "last.pt.sha256").unlink(missing_ok=True)
    with pytest.raises(checkpoint.UnverifiedCheckpoint, match="--trust-unverified"):
        Runner(build_experiment(tiny_cfg("trainer.epochs=3")), tmp_path, "").fit(resume=True)
    summary = Runner(build_experiment(tiny_cfg("trainer.epochs=3")), tmp_path, "").fit(resume=True,
                                                                                       trust_unverified=True)
    assert summary["status"] == "completed" and summary["epochs_completed"] == 3


def test_resume_carries_optimizer_and_scheduler_state_only_when_compatible(tiny_cfg, tmp_path):
    """A fork (or resume) loads the optimizer state only when the optimizer is configured as it was,
    the scheduler state only when the schedule is the same too; otherwise the scheduler the config
    builds is advanced to the checkpoint's epoch, so the learning rate is that of the new config there."""
    from snnrun.optim import configured_lr
    from snnrun.resume import ResumeRequest

    source = tmp_path / "source"
    fit(tiny_cfg(), source)
    saved = checkpoint.load(source / "checkpoints" / "last.pt")

    def fork(name, *overrides):
        cfg = tiny_cfg(*overrides)
        runner = Runner(build_experiment(cfg), tmp_path / name, OmegaConf.to_yaml(cfg))
        return runner, runner.fit(resume=ResumeRequest(source=source))

    same, summary = fork("same")  # nothing changed (and nothing left to train): everything carried over
    assert same.carried == {"optimizer": True, "scheduler": True} and summary["epochs_completed"] == 2
    assert summary["forked_from"]["changes"] == {} and summary["forked_from"]["epoch"] == 2
    for key, value in saved["optimizer"]["state"][0].items():
        torch.testing.assert_close(same.exp.optimizer.state_dict()["state"][0][key], value, rtol=0, atol=0)
    assert same.exp.optimizer.param_groups[0]["lr"] == saved["optimizer"]["param_groups"][0]["lr"]
    longer, _ = fork("longer", "trainer.epochs=2", "trainer.stop_after=0")  # same run, stopped before training
    assert longer.carried["optimizer"] and longer.carried["scheduler"]
    lower, _ = fork("lower", "optimizer.lr=0.01", "trainer.epochs=4", "trainer.stop_after=0")
    assert lower.carried == {"optimizer": False, "scheduler": False, "advanced": True}
    assert lower.exp.optimizer.state_dict()["state"] == {}  # fresh moments
    assert configured_lr(lower.exp.optimizer) == pytest.approx(0.01 * 0.5)  # cosine over 4 epochs, at 2
    constant, _ = fork("constant", "scheduler=none", "trainer.epochs=4", "trainer.stop_after=0")
    assert constant.carried["optimizer"] and constant.exp.scheduler is None
    assert configured_lr(constant.exp.optimizer) == pytest.approx(0.05)  # not the old schedule's last rate
    with pytest.raises(SnnrunError, match=r"the model parameter projections.inp_hidden.stages.0.weight has shape "
                                          r"\[16, 20\] in .*last.pt but \[8, 20\] in this config"):
        fork("narrower", "network.populations.hidden.shape=8")


def test_resume_records_each_resume_and_refuses_fewer_epochs(tiny_cfg, tmp_path):
    fit(tiny_cfg("trainer.epochs=3", "trainer.stop_after=2"), tmp_path)
    with pytest.raises(SnnrunError, match="trainer.epochs=1 is fewer than the 2 epochs"):
        fit(tiny_cfg("trainer.epochs=1"), tmp_path, resume=True)
    fit(tiny_cfg("trainer.epochs=4", "trainer.stop_after=1"), tmp_path, resume=True)
    summary, _ = fit(tiny_cfg("trainer.epochs=4"), tmp_path, resume=True)
    assert summary["epochs_completed"] == 4
    assert summary["resumes"] == [{"epoch": 2, "overrides": [], "changes": {"trainer.epochs": {"from": 3, "to": 4}}},
                                  {"epoch": 3, "overrides": [], "changes": {}}]  # stop_after: one invocation's
    assert checkpoint.load(tmp_path / "checkpoints" / "last.pt")["history"] == summary["resumes"]


def test_the_epoch_log_line_fits_100_columns(tiny_cfg, tmp_path):
    from snnrun.runner import epoch_line

    metrics = {"train/loss": 0.0739, "train/accuracy": 0.983, "train/rate/hidden": 74.8, "train/synops/total": 129985.1,
               "val/loss": 0.1161, "val/accuracy": 0.9722, "test/loss": 0.1317, "test/accuracy": 0.9583,
               "test/energy_nj": 116.6, "lr": 0.00123, "samples_per_s": 5210.0}
    line = epoch_line(14, 30, metrics)
    assert line == "epoch 14/30  loss/acc  train 0.0739/0.983  val 0.1161/0.972  test 0.1317/0.958  lr 0.00123"
    assert len(line) <= 100
    assert epoch_line(1, 2, {"train/loss": float("nan")}) == "epoch 1/2  loss/acc  train nan/-"
    fit(tiny_cfg(), tmp_path)  # the run's own log lines (written by the logging set-up of the CLI) use it
