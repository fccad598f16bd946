"""The `snnrun` command as a user runs it (subprocesses)."""

from __future__ import annotations

import json

import yaml

from conftest import TINY, run_cli


def test_run_writes_a_complete_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(*TINY, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"run directory {run_dir}" in proc.stdout
    assert "completed 2/2 epochs" in proc.stdout
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml", ".hydra/hydra.yaml", "snnrun.log", "metrics.csv",
                 "metrics.jsonl", "checkpoints/last.pt", "checkpoints/best.pt", "summary.json"):
        assert (run_dir / name).is_file(), name
    saved = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert saved["data"]["name"] == "synthetic" and saved["trainer"]["epochs"] == 2
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"


def test_default_run_dirs_are_unique_and_relative_to_cwd(tmp_path):
    for _ in range(2):
        assert run_cli(*TINY, "trainer.epochs=1", cwd=tmp_path).returncode == 0
    runs = sorted((tmp_path / "outputs").glob("*/*"))
    assert len(runs) == 2 and runs[0] != runs[1]


def test_hydra_flags_work_from_any_directory(tmp_path):
    proc = run_cli("--cfg", "job", "neuron.tau_m=10", "optimizer.name=AdamW", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["neuron"]["tau_m"] == 10 and cfg["optimizer"]["name"] == "AdamW"
    assert cfg["network"]["populations"]["hidden"]["shape"] == 256
    assert not (tmp_path / "outputs").exists()
    helped = run_cli("--help", cwd=tmp_path)
    assert helped.returncode == 0 and "neuron:" in helped.stdout  # Hydra's groups, after snnrun's sub-commands
    from snnrun.cli import COMMANDS
    for command in COMMANDS:  # each sub-command listed with one line, and each answers --help
        assert f"  snnrun {command} " in helped.stdout, command
        usage = run_cli(command, "--help", cwd=tmp_path)
        assert usage.returncode == 0 and usage.stdout.startswith(f"usage: snnrun {command}"), (command, usage.stderr)
    info = run_cli("--info", "defaults", cwd=tmp_path)
    assert info.returncode == 0 and "neuron/lif" in info.stdout


def test_user_config_dir_adds_an_experiment(tmp_path):
    (tmp_path / "mine" / "experiment").mkdir(parents=True)
    (tmp_path / "mine" / "experiment" / "small.yaml").write_text(
        "# @package _global_\ntrainer:\n  epochs: 1\nneuron:\n  tau_m: 7.0\n")
    proc = run_cli("--config-dir", str(tmp_path / "mine"), "experiment=small", "--cfg", "job", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["trainer"]["epochs"] == 1 and cfg["neuron"]["tau_m"] == 7.0


def test_user_errors_are_one_line_with_exit_code_2(tmp_path):
    cases = {
        ("+neuron.tau_mm=5",): "snnrun: error: neuron.tau_mm: unknown key (did you mean `tau_m`?)",
        ("neuron.tau_mm=5",): "snnrun: error: neuron.tau_mm: unknown key (did you mean `tau_m`?); valid keys: name, v_th, v_rest,",
        ("trainer.epoch=5",): "snnrun: error: trainer.epoch: unknown key (did you mean `epochs`?)",
        ("device=cuda:7",): "snnrun: error: device: 'cuda:7' requested but",
        ("encoder.name=poison",): "snnrun: error: encoder.name: unknown encoder 'poison' (did you mean `poisson`?)",
    }
    for args, message in cases.items():
        proc = run_cli(*TINY, *args, f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_unknown_group_option_lists_the_choices(tmp_path):
    proc = run_cli("neuron=lfi", cwd=tmp_path)
    assert proc.returncode != 0
    assert "lif" in proc.stderr and "Traceback" not in proc.stderr


def test_full_error_shows_the_traceback(tmp_path):
    proc = run_cli(*TINY, "+neuron.tau_mm=5", f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path,
                   env={"HYDRA_FULL_ERROR": "1"})
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "tau_mm" in proc.stderr


def test_resume_continues_in_the_same_directory(tmp_path):
    run_dir = tmp_path / "run"
    first = run_cli(*TINY, "trainer.epochs=3", "trainer.stop_after=1", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert first.returncode == 0 and "stopped 1/3 epochs" in first.stdout
    assert f"resume with: snnrun resume {run_dir}" in first.stdout
    config_before = (run_dir / ".hydra" / "config.yaml").read_text()
    second = run_cli("resume", str(run_dir), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "completed 3/3 epochs" in second.stdout
    assert (run_dir / ".hydra" / "config.yaml").read_text() == config_before
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 3
    missing = run_cli("resume", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert missing.returncode == 2 and "is not a run directory" in missing.stderr
    # trainer.stop_after limits one invocation: reproduce re-runs the whole run (3 epochs) and matches it
    again = run_cli("reproduce", str(run_dir), cwd=tmp_path, timeout=240)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "completed 3/3 epochs" in again.stdout and "snnrun: reproduced (tolerance 0)" in again.stdout


def test_list_prints_parameters_with_units(tmp_path):
    proc = run_cli("list", "neuron", cwd=tmp_path)
    assert proc.returncode == 0
    assert "lif" in proc.stdout and "tau_m: float = 20.0 [ms]" in proc.stdout
    groups = run_cli("list", cwd=tmp_path)
    assert "surrogate:" in groups.stdout and "AdamW" in groups.stdout
    bad = run_cli("list", "nuron", cwd=tmp_path)
    assert bad.returncode == 2 and "did you mean `neuron`?" in bad.stderr
