"""`snnrun -m`: every job runs, failures leave their error, the sweep summary is written."""

from __future__ import annotations

import csv
import json

from tests.conftest import TINY, run_cli


def test_sweep_summary_with_failed_jobs_and_seed_statistics(tmp_path):
    sweep = tmp_path / "sweep"
    base = [o for o in TINY if not o.startswith(("trainer.epochs", "network.duration"))]
    out = run_cli("-m", *base, "trainer.epochs=1", "network.duration=4", "neuron.tau_m=10,-5", "seed=0,1",
                  f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(open(sweep / "sweep_summary.csv")))
    assert [r["job"] for r in rows] == ["0", "1", "2", "3"]
    assert [(r["neuron.tau_m"], r["seed"], r["status"]) for r in rows] == [
        ("10", "0", "completed"), ("10", "1", "completed"), ("-5", "0", "failed"), ("-5", "1", "failed")]
    for r in rows[:2]:
        assert 0.0 <= float(r["test/accuracy"]) <= 1.0 and float(r["wall_s"]) > 0
        # the "best" column is the monitored metric: validation accuracy, never a test metric
        summary = json.loads((sweep / r["job"] / "summary.json").read_text())
        assert summary["monitor"] == "val/accuracy" and float(r["best val/accuracy"]) == summary["best"]["val/accuracy"]
        assert not any(k.startswith("best test/") for k in r)
    assert (sweep / "2" / "error.txt").read_text().startswith("neuron.tau_m")
    assert "neuron.tau_m" in rows[2]["error"]
    groups = list(csv.DictReader(open(sweep / "sweep_summary_seeds.csv")))
    assert [(g["neuron.tau_m"], g["seeds"], g["failed"]) for g in groups] == [("10", "2", "0"), ("-5", "2", "2")]
    accs = [float(r["test/accuracy"]) for r in rows[:2]]
    assert abs(float(groups[0]["test/accuracy mean"]) - sum(accs) / 2) < 1e-9
    assert abs(float(groups[0]["test/accuracy std"]) - abs(accs[0] - accs[1]) / 2 ** 0.5) < 1e-9
    assert "mean ± std over seeds" in out.stdout and "2 failed" in out.stdout


def test_auto_progress_bars_off_under_parallel_launchers():
    from omegaconf import OmegaConf

    from snnrun.sweep import BASIC_LAUNCHER, prepare_job

    def hydra_cfg(target: str):
        from hydra.types import RunMode
        return OmegaConf.create({"launcher": {"_target_": target}, "mode": RunMode.MULTIRUN})

    for target, expected in ((BASIC_LAUNCHER, None),
                             ("hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", False)):
        cfg = OmegaConf.create({"trainer": {"progress": None}})
        OmegaConf.set_struct(cfg, True)
        prepare_job(cfg, hydra_cfg(target))
        assert cfg.trainer.progress is expected
    cfg = OmegaConf.create({"trainer": {"progress": True}})
    prepare_job(cfg, hydra_cfg("x.Launcher"))
    assert cfg.trainer.progress is True  # an explicit choice is kept


def test_task_returns_monitored_metric_or_the_listed_objectives(monkeypatch):
    from snnrun.sweep import objective

    summary = {"monitor": "val/accuracy", "best": {"val/accuracy": 0.9, "test/accuracy": 0.7, "epoch": 3},
               "final": {"val/accuracy": 0.8, "val/rate/hidden": 12.5, "test/accuracy": 0.95}}
    monkeypatch.delenv("SNNRUN_OBJECTIVES", raising=False)
    assert objective(summary) == 0.9
    monkeypatch.setenv("SNNRUN_OBJECTIVES", "val/accuracy, val/rate/hidden")
    assert objective(summary) == [0.9, 12.5]


def test_sweep_objectives_on_the_test_set_need_select_on_test(monkeypatch):
    import pytest

    from snnrun.build import build_experiment
    from snnrun.errors import ConfigError
    from snnrun.validate import validate_config
    from tests.conftest import compose_config

    monkeypatch.setenv("SNNRUN_OBJECTIVES", "val/accuracy,test/rate/hidden")
    cfg = compose_config([*TINY, "monitors=off"])
    for check in (validate_config, build_experiment):
        with pytest.raises(ConfigError, match=r"^trainer.select_on_test: SNNRUN_OBJECTIVES .* lists test/rate/hidden"):
            check(cfg)
    build_experiment(compose_config([*TINY, "monitors=off", "trainer.select_on_test=true"]))
    monkeypatch.setenv("SNNRUN_OBJECTIVES", "val/accuracy,val/rate/hidden")
    build_experiment(cfg)


def test_hparams_search_configs_compose_with_the_optuna_sweeper():
    import pytest

    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="optional extra `optuna` not installed")
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module="snnrun.configs", version_base="1.3"):
            cfg = compose(config_name="config", overrides=["hparams_search=optuna_rate"], return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")
    assert list(cfg.hydra.sweeper.direction) == ["maximize", "minimize"]
    assert cfg.hydra.sweeper.sampler._target_.endswith("NSGAIISampler")
    assert cfg.hydra.job.env_set.SNNRUN_OBJECTIVES == "val/accuracy,val/rate/hidden"
    assert cfg.trainer.monitor == "val/accuracy" and not cfg.trainer.select_on_test
    assert set(cfg.hydra.sweeper.params) == {"neuron.tau_m", "learner.surrogate.alpha", "encoder.max_rate", "optimizer.lr"}


def _launcher_sweep(tmp_path, launcher_args):
    sweep = tmp_path / "sweep"
    base = [o for o in TINY if not o.startswith(("trainer.epochs", "network.duration", "trainer.progress"))]
    out = run_cli("-m", *launcher_args, *base, "trainer.epochs=1", "network.duration=4", "monitors=off",
                  "neuron.tau_m=10,-5", f"hydra.sweep.dir={sweep}", cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = list(csv.DictReader(open(sweep / "sweep_summary.csv")))
    assert [(r["job"], r["neuron.tau_m"], r["status"]) for r in rows] == [("0", "10", "completed"), ("1", "-5", "failed")]
    assert 0.0 <= float(rows[0]["test/accuracy"]) <= 1.0
    assert (sweep / "1" / "error.txt").read_text().startswith("neuron.tau_m")
    assert "epoch 1/" in (sweep / "0" / "snnrun.log").read_text()  # each job logs into its own directory
    return sweep, out


def test_sweep_through_the_submitit_local_launcher(tmp_path):
    import pytest

    pytest.importorskip("hydra_plugins.hydra_submitit_launcher",
                        reason="optional extra `launchers` (hydra-submitit-launcher) not installed")
    sweep, _ = _launcher_sweep(tmp_path, ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5"])
    assert list((sweep / ".submitit").glob("*/*_result.pkl"))  # submitit ran the jobs and kept their results


def test_sweep_through_the_joblib_launcher(tmp_path):
    import pytest

    pytest.importorskip("hydra_plugins.hydra_joblib_launcher",
                        reason="optional extra `launchers` (hydra-joblib-launcher) not installed")
    sweep, out = _launcher_sweep(tmp_path, ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"])
    assert "Joblib" in out.stdout + out.stderr
    import os

    from snnrun.threads import usable_cores

    threads = json.loads((sweep / "0" / "summary.json").read_text())["threads"]
    if not os.environ.get("OMP_NUM_THREADS"):  # trainer.threads=auto gives each of the 2 jobs its share
        assert threads["count"] <= max(1, usable_cores() // 2)
        # joblib's loky workers get OMP_NUM_THREADS = cores // n_jobs, which auto honours; else auto divides
        assert threads["chosen_by"] == "OMP_NUM_THREADS" or \
            threads["chosen_by"].startswith("auto: min(cores / 2 parallel jobs ")
