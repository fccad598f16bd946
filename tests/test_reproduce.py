"""`snnrun reproduce`: a saved tiny run re-runs to exactly the same final metrics on CPU."""

from __future__ import annotations

import json

import pytest

from snnrun.errors import SnnrunError
from snnrun.reproduce import metric_rows, reproduce, version_warnings, world_size_warning

from tests.conftest import TINY, run_cli


def test_reproduce_tiny_run_exactly_and_detects_a_difference(tmp_path):
    run = tmp_path / "run"
    first = run_cli(*[o for o in TINY if not o.startswith("trainer.epochs")], "trainer.epochs=1",
                    f"hydra.run.dir={run}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    out = run_cli("reproduce", str(run), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    again = tmp_path / "run-reproduced"
    saved = json.loads((run / "summary.json").read_text())["final"]
    new = json.loads((again / "summary.json").read_text())["final"]
    assert new["test/accuracy"] == saved["test/accuracy"] and new["train/loss"] == saved["train/loss"]
    assert "test/accuracy" in out.stdout and "DIFFERS" not in out.stdout and "reproduced (tolerance 0)" in out.stdout
    recorded = json.loads((run / "summary.json").read_text())["threads"]["count"]
    assert json.loads((again / "summary.json").read_text())["threads"] == {"count": recorded,
                                                                         "chosen_by": "trainer.threads"}


def test_differences_and_version_changes_are_reported():
    rows, ok = metric_rows({"test/accuracy": 0.5, "train/loss": 1.0, "wall_time": 3.0},
                           {"test/accuracy": 0.5, "train/loss": 1.0 + 1e-9, "wall_time": 9.0}, tol=0.0)
    assert not ok and ("train/loss", 1.0, 1.0 + 1e-9, "DIFFERS") in rows
    assert ("wall_time", 3.0, 9.0, "(timing)") in rows
    assert metric_rows({"train/loss": 1.0}, {"train/loss": 1.0 + 1e-9}, tol=1e-6)[1]
    warnings = version_warnings({"torch": "0.0.1", "python": "3.11.0", "snnrun": "0.1.0", "git_commit": "abc"},
                                {"torch": "2.13.0", "python": "3.11.0", "snnrun": "0.1.0", "git_commit": "abc"})
    assert warnings == ["torch differs: saved 0.0.1, now 2.13.0"]
    assert world_size_warning({"world_size": 1}) is None and world_size_warning({}) is None
    assert world_size_warning({"world_size": 2}).startswith("the run was trained by 2 processes (torchrun)")


def test_reproduce_refuses_an_unfinished_run(tmp_path):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(SnnrunError, match="has no summary.json"):
        reproduce(tmp_path)


def test_machine_warnings_name_cpu_and_kernel_differences():
    from snnrun.reproduce import machine_warnings

    saved = {"cpu": {"model": "A", "features": "aaa"},
             "kernels": {"bernoulli": {"build": "compiled", "ran": "compiled"},
                         "lif_scan": {"build": "compiled", "ran": "compiled"},
                         "diehl_cook": {"build": "not loaded", "ran": "unused"}}}
    here = {"cpu": {"model": "B", "features": "bbb"},
            "kernels": {"bernoulli": {"build": "failed", "ran": "reference", "reason": "error: x"},
                        "lif_scan": {"build": "compiled", "ran": "compiled"},
                        "diehl_cook": {"build": "compiled", "ran": "unused"}}}
    built = machine_warnings(saved, here)
    assert built == ["CPU differs: saved A (features aaa), here B (features bbb)",
                     "kernel bernoulli build: saved compiled, here failed (error: x)"]
    assert machine_warnings(saved, here, "re-run", field="ran") == ["kernel bernoulli ran: saved compiled, re-run reference"]
    assert machine_warnings(saved, saved) == [] and machine_warnings(saved, saved, field="ran") == []
    assert machine_warnings({}, here) == ["the saved run does not record its CPU and compiled kernels"]


def test_reproduce_compares_a_task_runs_results(tmp_path):
    """A protocol task has no epochs' ``final``: its numeric summary fields are compared (a re-run is
    never 'reproduced' for want of anything to compare)."""
    from snnrun.reproduce import results

    run = tmp_path / "window"
    first = run_cli("experiment=stdp_window", "protocol.dt_step=25", "protocol.pairings=2", "plots=off",
                    f"hydra.run.dir={run}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    saved = json.loads((run / "summary.json").read_text())
    assert {"max_dw", "min_dw", "points"} <= set(results(saved)) and "seed" not in results(saved)
    out = run_cli("reproduce", str(run), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "max_dw" in out.stdout and "DIFFERS" not in out.stdout and "reproduced (tolerance 0)" in out.stdout
    saved["max_dw"] *= 1.5  # a tampered result is caught
    (run / "summary.json").write_text(json.dumps(saved))
    out = run_cli("reproduce", str(run), "--out", str(tmp_path / "again"), cwd=tmp_path)
    assert "max_dw" in out.stdout and "DIFFERS" in out.stdout and "NOT reproduced" in out.stdout


def test_a_rerun_takes_the_recorded_thread_count():
    """A convolution's sums may round differently on another thread count: reproduce re-runs with
    the count the run recorded, unless its command line sets one."""
    from snnrun.reproduce import same_threads

    saved = {"threads": {"count": 1, "chosen_by": "auto: min(cores 2, idle cores 1, work size 4)"}}
    assert same_threads(saved, []) == ["trainer.threads=1"]
    assert same_threads(saved, ["trainer.threads=2"]) == [] and same_threads({}, []) == []
