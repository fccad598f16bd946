"""`snnrun compare`: one table over run and sweep directories."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from snnrun.compare import compare_table
from tests.conftest import run_cli


def fake_run(path: Path, tau: float, seed: int, acc: float | None, status: str = "completed") -> Path:
    (path / ".hydra").mkdir(parents=True)
    (path / ".hydra" / "config.yaml").write_text(
        f"seed: {seed}\nneuron:\n  name: lif\n  tau_m: {tau}\noptimizer:\n  name: Adam\n  lr: 0.001\n")
    if acc is not None:
        summary = {"status": status, "final": {"test/accuracy": acc, "test/loss": 1.0 - acc, "epoch": 3},
                   "best": {"test/accuracy": acc + 0.01, "epoch": 2}, "monitor": "test/accuracy",
                   "wall_time_s": 12.5}
        (path / "summary.json").write_text(json.dumps(summary))
    return path


def test_table_has_differing_keys_metrics_status_and_wall(tmp_path):
    a = fake_run(tmp_path / "a", 10.0, 0, 0.9)
    sweep = tmp_path / "sweep"
    fake_run(sweep / "0", 20.0, 0, 0.8)
    fake_run(sweep / "1", 20.0, 1, 0.7, status="stopped")
    failed = fake_run(sweep / "10", 50.0, 1, None)
    (failed / "error.txt").write_text("neuron.tau_m: boom\n")
    header, rows = compare_table([a, sweep])
    assert header[:3] == ["run", "seed", "neuron.tau_m"]  # optimizer.* and neuron.name are equal: not shown
    assert "optimizer.lr" not in header and "neuron.name" not in header
    assert header[-2:] == ["status", "wall_s"]
    assert [Path(r[0]).name for r in rows] == ["a", "0", "1", "10"]  # numeric job order
    col = {h: i for i, h in enumerate(header)}
    assert [r[col["neuron.tau_m"]] for r in rows] == [10.0, 20.0, 20.0, 50.0]
    assert rows[0][col["final test/accuracy"]] == 0.9
    assert abs(rows[1][col["best test/accuracy"]] - 0.81) < 1e-12
    assert [r[col["status"]] for r in rows] == ["completed", "completed", "stopped", "failed"]
    assert rows[0][col["wall_s"]] == 12.5 and rows[3][col["final test/accuracy"]] == ""


def test_cli_prints_table_and_writes_csv(tmp_path):
    fake_run(tmp_path / "x", 10.0, 0, 0.5)
    fake_run(tmp_path / "y", 30.0, 0, 0.75)
    out = run_cli("compare", str(tmp_path / "x"), str(tmp_path / "y"), "--csv", str(tmp_path / "t.csv"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].split()[:2] == ["run", "tau_m"]  # the shortest unique suffix of neuron.tau_m
    assert lines[3].split()[1:3] == ["30", "0.75"]
    rows = list(csv.reader(open(tmp_path / "t.csv")))
    assert rows[0][1] == "neuron.tau_m" and rows[2][1] == "30.0" and rows[2][-2] == "completed"
    missing = run_cli("compare", str(tmp_path / "nothing_here"), cwd=tmp_path)
    assert missing.returncode == 2 and "is not a directory" in missing.stderr


def test_printed_table_fits_the_width_and_keeps_every_column(tmp_path):
    """Many differing keys and metrics: blocks of <= 100 columns, each led by the run column; CSV whole."""
    runs = []
    for i in range(3):
        run = fake_run(tmp_path / "sweep" / str(i), 10.0 + i, i, 0.5 + i / 10)
        summary = json.loads((run / "summary.json").read_text())
        summary["final"].update({f"train/population_{k}_rate_hz": 1.5 * k + i for k in range(12)})
        (run / "summary.json").write_text(json.dumps(summary))
        config = (run / ".hydra" / "config.yaml").read_text()
        (run / ".hydra" / "config.yaml").write_text(config + f"network:\n  note: {'x' * 60}{i}\n")
        runs.append(run)
    out = run_cli("compare", str(tmp_path / "sweep"), "--csv", str(tmp_path / "all.csv"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(map(len, lines)) <= 100
    blocks = out.stdout.strip().split("\n\n")
    assert len(blocks) >= 3 and all(b.startswith("run") for b in blocks)
    assert all([line.split()[0] for line in b.splitlines()[2:]] == ["0", "1", "2"] for b in blocks)
    for k in range(12):
        assert f"train/population_{k}_rate_hz" in out.stdout
    assert "x" * 31 + "…" in out.stdout  # a long value is cut on screen ...
    rows = list(csv.reader(open(tmp_path / "all.csv")))
    assert "x" * 60 + "2" in rows[3]  # ... and whole in the CSV
    narrow = run_cli("compare", str(tmp_path / "sweep"), "--width", "60", cwd=tmp_path)
    assert max(map(len, narrow.stdout.splitlines())) <= 60
    bad = run_cli("compare", str(tmp_path / "sweep"), "--width", "x", cwd=tmp_path)
    assert bad.returncode == 2 and "--width" in bad.stderr
