"""`snnrun resume`: what a resume may change, more epochs, forks, the saved config and its record."""

from __future__ import annotations

import csv
import json
import math
import shutil

import pytest
import yaml
from omegaconf import OmegaConf

from snnrun.build import build_experiment
from snnrun.errors import SnnrunError
from snnrun.resume import allowed, config_changes, initial_config, load_saved_config, plan
from snnrun.runner import Runner

from conftest import TINY, run_cli

ALLOWED = "allowed on resume: trainer.epochs, trainer.stop_after, trainer.progress, trainer.threads, logger.*, plots.*, device"


def lrs(run_dir) -> dict[int, float]:
    """The learning rate of each epoch's training row in ``metrics.csv``."""
    with open(run_dir / "metrics.csv") as f:
        return {int(r["epoch"]): float(r["lr"]) for r in csv.DictReader(f) if r["split"] == "train"}


def one_line_error(proc) -> str:
    assert proc.returncode == 2, (proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("snnrun: error:")]
    assert len(lines) == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    """A finished 2-epoch tiny run (cosine schedule over trainer.epochs), copied by each test."""
    base = tmp_path_factory.mktemp("source")
    run_dir = base / "run"
    proc = run_cli(*TINY, f"hydra.run.dir={run_dir}", cwd=base)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return run_dir


@pytest.fixture
def run(two_epochs, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(two_epochs, run_dir, ignore=shutil.ignore_patterns(".lock"))
    return run_dir


def test_changes_to_the_model_or_optimisation_are_refused_in_one_line(run, tmp_path):
    saved = (run / ".hydra" / "config.yaml").read_bytes()
    metrics = (run / "metrics.csv").read_bytes()
    proc = run_cli("resume", str(run), "optimizer.lr=0.01", "neuron.name=if", "trainer.epochs=3", cwd=tmp_path)
    assert one_line_error(proc) == (
        f"snnrun: error: resume: optimizer.lr, neuron.name would change the run; {ALLOWED}; to change the model or "
        f"optimisation start a new run from this one's state with: snnrun resume {run} --into NEW_DIR optimizer.lr=0.01 "
        f"neuron.name=if trainer.epochs=3")
    group = one_line_error(run_cli("resume", str(run), "neuron=if", cwd=tmp_path))
    assert group.startswith("snnrun: error: resume: neuron would change the run; allowed on resume:")
    hidden = one_line_error(run_cli("resume", str(run), "network.populations.hidden.shape=32", cwd=tmp_path))
    assert hidden.startswith("snnrun: error: resume: network.populations.hidden.shape would change the run;")
    # nothing was run or written
    assert (run / ".hydra" / "config.yaml").read_bytes() == saved and (run / "metrics.csv").read_bytes() == metrics


def test_a_damaged_saved_config_is_one_line_naming_the_file(run, tmp_path):
    path = run / ".hydra" / "config.yaml"
    cases = {b"trainer: {epochs: [2,\n": f"{path} is damaged: not valid YAML (",
             b"seed: 0\n\xff\xfe: 1\n": f"{path} is damaged: not UTF-8 (byte 0xff at offset 8)",
             b"- 1\n- 2\n": f"{path} is damaged: not a config mapping (a list)"}
    for content, message in cases.items():
        path.write_bytes(content)
        line = one_line_error(run_cli("resume", str(run), cwd=tmp_path))
        assert line.startswith(f"snnrun: error: resume: {message}"), line
    path.write_bytes(b"")
    with pytest.raises(SnnrunError, match="not a config mapping"):
        load_saved_config(path)


def test_more_epochs_follow_the_schedule_of_the_longer_run_and_reproduce(run, tmp_path, tiny_cfg):
    """trainer.epochs 2 -> 4 under `scheduler=cosine` (T_max: ${trainer.epochs}): epochs 3-4 train at the rates
    a run planned for 4 epochs has at epochs 3-4 (not at the old schedule's 0); the saved config says 4; the
    resume is recorded; reproduce replays the run as it ran (2 epochs, then resumed to 4) exactly."""
    before = lrs(run)
    proc = run_cli("resume", str(run), "trainer.epochs=4", "logger.sinks=[csv]", "trainer.progress=false",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "completed 4/4 epochs" in proc.stdout
    fresh = Runner(build_experiment(tiny_cfg("trainer.epochs=4")), tmp_path / "fresh",
                   OmegaConf.to_yaml(tiny_cfg("trainer.epochs=4"))).fit()
    assert fresh["status"] == "completed"
    after, planned = lrs(run), lrs(tmp_path / "fresh")
    assert {e: after[e] for e in (1, 2)} == before == {1: 0.05, 2: pytest.approx(0.025)}
    assert after[3] == planned[3] and after[4] == planned[4]  # what a 4-epoch run has at epochs 3 and 4
    assert after[3] == pytest.approx(0.05 * (1 + math.cos(math.pi * 2 / 4)) / 2)
    assert after[4] == pytest.approx(0.05 * (1 + math.cos(math.pi * 3 / 4)) / 2) and after[4] > 0
    saved = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    assert saved["trainer"]["epochs"] == 4 and saved["logger"]["sinks"] == ["csv"]
    assert saved["scheduler"]["T_max"] == "${trainer.epochs}" and saved["trainer"]["progress"] is False  # as run
    summary = json.loads((run / "summary.json").read_text())
    assert summary["resumes"] == [{"epoch": 2, "overrides": ["trainer.epochs=4", "logger.sinks=[csv]",
                                                             "trainer.progress=false"],
                                   "changes": {"trainer.epochs": {"from": 2, "to": 4},
                                               "logger.sinks": {"from": ["csv", "jsonl"], "to": ["csv"]}}}]
    again = run_cli("reproduce", str(run), cwd=tmp_path, timeout=240)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "snnrun: replaying its resume at epoch 2: logger.sinks=[\"csv\"] trainer.epochs=4\n" in again.stdout
    assert "DIFFERS" not in again.stdout and "snnrun: reproduced (tolerance 0)" in again.stdout
    replayed = run.with_name("run-reproduced")
    assert yaml.safe_load((replayed / ".hydra" / "config.yaml").read_text())["trainer"]["epochs"] == 4
    assert lrs(replayed) == after


def test_fewer_epochs_than_trained_is_refused(run, tmp_path):
    line = one_line_error(run_cli("resume", str(run), "trainer.epochs=1", cwd=tmp_path))
    assert line == (f"snnrun: error: resume: trainer.epochs=1 is fewer than the 2 epochs {run}/checkpoints/last.pt "
                    f"holds; set trainer.epochs to 2 or more")
    assert yaml.safe_load((run / ".hydra" / "config.yaml").read_text())["trainer"]["epochs"] == 2


def test_a_fork_starts_a_new_run_directory_from_the_last_state(run, tmp_path):
    source_files = {p: p.read_bytes() for p in (run / ".hydra").iterdir()} | {
        run / "metrics.csv": (run / "metrics.csv").read_bytes(), run / "summary.json": (run / "summary.json").read_bytes()}
    fork = tmp_path / "fork"
    proc = run_cli("resume", str(run), "--into", str(fork), "optimizer.lr=0.01", "trainer.epochs=4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "completed 4/4 epochs" in proc.stdout
    saved = yaml.safe_load((fork / ".hydra" / "config.yaml").read_text())
    assert saved["optimizer"]["lr"] == 0.01 and saved["trainer"]["epochs"] == 4
    assert yaml.safe_load((fork / ".hydra" / "overrides.yaml").read_text()) == ["optimizer.lr=0.01", "trainer.epochs=4"]
    summary = json.loads((fork / "summary.json").read_text())
    assert summary["forked_from"] == {"run_dir": str(run), "epoch": 2, "checkpoint": "last.pt",
                                      "overrides": ["optimizer.lr=0.01", "trainer.epochs=4"],
                                      "changes": {"optimizer.lr": {"from": 0.05, "to": 0.01},
                                                  "trainer.epochs": {"from": 2, "to": 4}}}
    # the fork counts on from epoch 2; its optimizer starts fresh (another lr) and its schedule is the new config's
    assert sorted(lrs(fork)) == [3, 4]
    assert lrs(fork)[3] == pytest.approx(0.01 * (1 + math.cos(math.pi * 2 / 4)) / 2)
    assert lrs(fork)[4] == pytest.approx(0.01 * (1 + math.cos(math.pi * 3 / 4)) / 2)
    assert (fork / "checkpoints" / "best.pt").is_file() and summary["best"]["epoch"] in (3, 4)
    assert {p: p.read_bytes() for p in source_files} == source_files  # the source run is untouched
    # a fork did not start from scratch: reproduce says which run to reproduce instead
    line = one_line_error(run_cli("reproduce", str(fork), cwd=tmp_path))
    assert line.startswith(f"snnrun: error: reproduce: {fork} is a fork of {run} at epoch 2 (snnrun resume --into)")
    # a fork into an existing run directory is refused
    again = one_line_error(run_cli("resume", str(run), "--into", str(fork), cwd=tmp_path))
    assert again == f"snnrun: error: resume: --into {fork} is already a run directory; choose a new directory"


def test_a_fork_whose_model_changed_shape_is_one_line_and_leaves_nothing(run, tmp_path):
    fork = tmp_path / "wider"
    proc = run_cli("resume", str(run), "--into", str(fork), "network.populations.hidden.shape=32", cwd=tmp_path)
    assert one_line_error(proc) == (
        f"snnrun: error: resume: the model parameter projections.inp_hidden.stages.0.weight has shape [16, 20] in "
        f"{run}/checkpoints/last.pt but [32, 20] in this config (the model changed: its weights cannot be carried "
        f"over; start a new run)")
    assert not fork.exists()


# --- in process: the rules, without the CLI --------------------------------------------------------------------
def test_config_changes_and_the_allowed_keys():
    old = {"trainer": {"epochs": 2, "stop_after": 1, "progress": None}, "optimizer": {"lr": 0.05},
           "scheduler": {"T_max": "${trainer.epochs}"}, "logger": {"sinks": ["csv"]}}
    new = {"trainer": {"epochs": 4, "stop_after": None, "progress": True}, "optimizer": {"lr": 0.05},
           "scheduler": {"T_max": "${trainer.epochs}"}, "logger": {"sinks": ["csv", "jsonl"]}, "device": "cpu"}
    assert config_changes(old, new) == {"trainer.epochs": {"from": 2, "to": 4},
                                        "logger.sinks": {"from": ["csv"], "to": ["csv", "jsonl"]},
                                        "device": {"to": "cpu"}}  # stop_after and progress: one invocation's
    assert all(allowed(k) for k in ("trainer.epochs", "logger.sinks", "plots.dpi", "device", "trainer.stop_after"))
    assert not any(allowed(k) for k in ("optimizer.lr", "trainer.eval_every", "monitors.enabled", "seed",
                                        "trainer.epochs_x", "devices"))
    cfg = initial_config(OmegaConf.create(new), [{"epoch": 2, "changes": config_changes(old, new)}])
    assert cfg.trainer.epochs == 2 and list(cfg.logger.sinks) == ["csv"] and "device" not in cfg


def test_plan_parses_into_and_refuses_a_fork_onto_itself(run):
    job = plan([str(run), "--into", str(run.with_name("elsewhere")), "optimizer.lr=0.01"])
    assert job.fork and job.run_dir == run.with_name("elsewhere") and job.cfg.optimizer.lr == 0.01
    with pytest.raises(SnnrunError, match="is the run directory itself"):
        plan([str(run), f"--into={run}"])
    with pytest.raises(SnnrunError, match="--into needs a new run directory"):
        plan([str(run), "--into"])
    switched = plan([str(run), "--into", str(run.with_name("sgd")), "optimizer=sgd", "optimizer.lr=0.2"])
    assert switched.cfg.optimizer.name == "SGD" and switched.cfg.optimizer.lr == 0.2  # a group's option, then keys
    assert plan([str(run), "logger=tensorboard"]).cfg.logger.sinks[-1] == "tensorboard"  # allowed in place
    with pytest.raises(SnnrunError, match="no option 'sgdd' in config group optimizer; choices: adam, adamw, sgd"):
        plan([str(run), "--into", str(run.with_name("x")), "optimizer=sgdd"])
    with pytest.raises(SnnrunError, match="hydra.run.dir=elsewhere: Hydra settings do not apply to resume"):
        plan([str(run), "hydra.run.dir=elsewhere"])
