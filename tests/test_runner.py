"""The epoch loop end to end, in process: run directory contents, seeds, resume."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from omegaconf import OmegaConf

from snnrun import checkpoint
from snnrun.build import build_experiment
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
