"""Run faults: NaN/Inf, SIGINT/SIGTERM, SIGKILL at random points, unwritable or full output."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import TINY, run_cli
from snnrun import checkpoint, loggers
from snnrun.build import build_experiment
from snnrun.errors import NumericalError, SnnrunError
from snnrun.faults import all_finite, find_nonfinite
from snnrun.runner import Runner


def runner(cfg, run_dir):
    return Runner(build_experiment(cfg), run_dir, OmegaConf.to_yaml(cfg))


def weight(exp, name):
    return exp.network.projections[name].stages[0].weight


# --- NaN / Inf ---------------------------------------------------------------------------------
def poison_after_step(run, step, projection, index=None):
    """Make ``run``'s optimizer write NaN into ``projection``'s weight once ``run.step`` reaches ``step``."""
    original = run.exp.optimizer.step

    def poisoned(*args, **kwargs):
        original(*args, **kwargs)
        if run.step == step:
            with torch.no_grad():
                if index is None:
                    weight(run.exp, projection).fill_(float("nan"))
                else:
                    weight(run.exp, projection)[index] = float("nan")

    run.exp.optimizer.step = poisoned


def test_nan_weight_stops_after_the_epoch_naming_the_projection(tiny_cfg, tmp_path):
    run = runner(tiny_cfg("trainer.epochs=3"), tmp_path)
    poison_after_step(run, 3, "inp_hidden", (0, 0))
    with pytest.raises(NumericalError, match=r"non-finite values in projection inp_hidden stage 0.weight "
                                             # the last batch's state: 230 training samples (26 held out for
                                             # validation) leave 6 in it, x 16 hidden neurons
                                             r"\(\d+ of 320 values nan\), population hidden state v \(\d+ of 96 values nan\) "
                                             r"in epoch 1 \(after training, step 8\); "
                                             r"the run stopped, last good checkpoint .*last.pt \(epoch 0\) is kept"):
        run.fit()
    saved = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    assert saved["epoch"] == 0 and all(torch.isfinite(v).all() for v in saved["model"].values() if v.is_floating_point())
    assert NumericalError.exit_code == 3


def test_nan_loss_is_caught_in_its_batch(tiny_cfg, tmp_path):
    cfg = tiny_cfg("decoder=final_step_voltage", "+network.populations.out.neuron={name: leaky, tau_m: 5.0}")
    run = runner(cfg, tmp_path)
    with torch.no_grad():
        weight(run.exp, "hidden_out")[1, 2] = float("inf")  # before fit: the epoch-0 checkpoint holds it too
    with pytest.raises(NumericalError, match=r"in the train loss \(nan\) in epoch 1 \(train, batch 1/8, step 0\); "
                                             r"first non-finite value: projection hidden_out stage 0.weight "
                                             r"\(1 of 64 values inf\)"):
        run.fit()


def test_nan_in_a_later_epoch_keeps_the_previous_checkpoint(tiny_cfg, tmp_path):
    run = runner(tiny_cfg("trainer.epochs=4"), tmp_path)
    poison_after_step(run, 12, "hidden_out")  # in epoch 2 (8 batches per epoch)
    with pytest.raises(NumericalError, match=r"projection hidden_out .* in epoch 2 .*last.pt \(epoch 1\) is kept"):
        run.fit()
    state, used = checkpoint.load_latest(tmp_path / "checkpoints")
    assert used.name == "last.pt" and state["epoch"] == 1
    assert torch.isfinite(state["model"]["projections.hidden_out.stages.0.weight"]).all()
    assert [json.loads(line)["epoch"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 1, 1]


def test_detect_anomaly_names_the_backward_function(tiny_cfg, tmp_path):
    cfg = tiny_cfg("decoder=final_step_voltage", "+network.populations.out.neuron={name: leaky, tau_m: 5.0}",
                   "trainer.detect_anomaly=true")
    run = runner(cfg, tmp_path)
    with torch.no_grad():  # hidden neuron 0 never spikes, so the forward stays finite; its NaN
        weight(run.exp, "inp_hidden")[0, :] = -10.0  # outgoing weight reaches only the backward
        weight(run.exp, "hidden_out")[0, 0] = float("nan")
    with pytest.warns(UserWarning, match="Error detected in"), \
            pytest.raises(NumericalError, match=r"a gradient \(autograd anomaly: Function '\w+' returned nan values"):
        run.fit()


def test_find_nonfinite_names_a_neuron_state(tiny_cfg):
    exp = build_experiment(tiny_cfg("encoder=direct"))
    exp.network.reset()
    x = torch.zeros(2, *exp.data.input_shape)  # 2 samples x 20 features
    x[0, 3] = float("nan")
    exp.network(exp.encoder(x))
    assert find_nonfinite(exp.network).startswith("population hidden state v (16 of 32 values nan)")
    assert find_nonfinite(exp.network, x).startswith("the input batch (1 of 40 values nan), population hidden state v")
    exp.network.reset()
    assert find_nonfinite(exp.network) is None


def test_finite_screen_and_overflowing_norms():
    assert all_finite([torch.ones(3), torch.ones(2, dtype=torch.float64), torch.zeros(0), torch.ones(2, dtype=torch.int64)])
    assert not all_finite([torch.ones(3), torch.tensor([1.0, float("nan")], dtype=torch.float64)])
    assert not all_finite([torch.tensor([float("-inf"), 0.0])])
    assert not all_finite([torch.tensor([3e38, 3e38])])  # finite values whose norm overflows ...


def test_find_nonfinite_checks_each_value_when_the_screen_overflows(tiny_cfg):
    exp = build_experiment(tiny_cfg())
    weight = next(iter(exp.network.projections.values())).stages[0].weight
    with torch.no_grad():
        weight.fill_(3e38)
    assert find_nonfinite(exp.network) is None  # ... are not reported: the element check decides
    with torch.no_grad():
        weight[0, 1] = float("inf")
    assert find_nonfinite(exp.network).endswith("stage 0.weight (1 of %d values inf)" % weight.numel())


# --- signals -------------------------------------------------------------------------------------
def start(args, cwd, resume=False):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    cmd = [sys.executable, "-m", "snnrun", *(["resume"] if resume else []), *args]
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rows(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def wait_for_rows(proc, path, n, timeout=90.0):
    deadline = time.monotonic() + timeout
    while rows(path) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.02)


SLOW = [*TINY, "trainer.epochs=40", "monitors=off"]


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_saves_and_says_how_to_resume(tmp_path, sig, code):
    run_dir = tmp_path / "run"
    proc = start([*SLOW, f"hydra.run.dir={run_dir}"], tmp_path)
    wait_for_rows(proc, run_dir / "metrics.jsonl", 4)  # into epoch 2 (train, val, test rows per epoch)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert f"interrupted by {sig.name}" in out and f"resume with: snnrun resume {run_dir}" in out
    assert "Traceback" not in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["signal"] == sig.name
    last = checkpoint.load(run_dir / "checkpoints" / "last.pt")
    assert last["epoch"] == summary["epochs_completed"] >= 1
    done = run_cli("resume", str(run_dir), "trainer.epochs=" + str(last["epoch"] + 1), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    epochs = [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [e for e in range(1, last["epoch"] + 2) for _ in ("train", "val", "test")]


def test_sigkill_at_five_random_points_then_resume_equals_an_uninterrupted_run(tiny_cfg, tmp_path):
    """SIGKILL at 5 seeded random moments (after k new metric rows plus a random delay); each time
    `snnrun resume` continues. The final metrics equal an uninterrupted in-process run and the
    metric files hold every (epoch, split) row exactly once."""
    extra = ["trainer.epochs=10", "monitors=off"]
    run_dir = tmp_path / "killed"
    rng = random.Random(8)
    kills = 0
    proc = start([*TINY, *extra, f"hydra.run.dir={run_dir}"], tmp_path)
    while kills < 5:
        wait_for_rows(proc, run_dir / "metrics.jsonl", min(rows(run_dir / "metrics.jsonl") + rng.randint(1, 2), 19))
        time.sleep(rng.uniform(0.0, 0.3))
        if proc.poll() is not None:
            break
        proc.kill()
        proc.wait()
        kills += 1
        proc = start([str(run_dir)], tmp_path, resume=True)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert kills == 5
    reference = runner(tiny_cfg(*extra), tmp_path / "reference").fit()
    resumed = json.loads((run_dir / "summary.json").read_text())
    assert resumed["status"] == "completed"
    for key, value in reference["final"].items():
        assert resumed["final"][key] == pytest.approx(value, rel=0, abs=1e-9), key
    expected = [(e, s) for e in range(1, 11) for s in ("train", "val", "test")]
    jsonl = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["split"]) for r in jsonl] == expected
    table = list(csv.DictReader(open(run_dir / "metrics.csv")))
    assert [(int(r["epoch"]), r["split"]) for r in table] == expected


# --- output directory ------------------------------------------------------------------------------
def test_output_under_a_file_is_an_error_before_training(tiny_cfg, tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(SnnrunError, match=r"output directory .*afile/run/checkpoints is not writable \(Not a directory\)"):
        runner(tiny_cfg(), tmp_path / "afile" / "run").fit()
    proc = run_cli(*TINY, f"hydra.run.dir={tmp_path / 'afile' / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"snnrun: error: hydra.run.dir: cannot create the output directory "
                                   f"{tmp_path / 'afile' / 'run'}: {tmp_path / 'afile'} is a file, not a directory")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="running as root: file permissions do not stop root from writing")
def test_read_only_output_directory(tiny_cfg, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(SnnrunError, match="is not writable"):
            runner(tiny_cfg(), locked / "run").fit()
        proc = run_cli(*TINY, f"hydra.run.dir={locked / 'run'}", cwd=tmp_path)
        assert proc.returncode == 2 and f"{locked} is not writable" in proc.stderr
    finally:
        locked.chmod(0o700)


def test_full_disk_at_the_first_failed_write_keeps_the_last_good_checkpoint(tiny_cfg, tmp_path, monkeypatch):
    log = loggers.CSVSink.log
    calls = []

    def failing_log(self, row):
        calls.append(row["epoch"])
        if row["epoch"] == 2:
            raise OSError(28, "No space left on device")
        log(self, row)

    monkeypatch.setattr(loggers.CSVSink, "log", failing_log)
    with pytest.raises(SnnrunError, match=r"cannot write metrics to .*metrics.csv: No space left on device; "
                                          r"the last good checkpoint is kept"):
        runner(tiny_cfg("trainer.epochs=3"), tmp_path).fit()
    assert checkpoint.load_latest(tmp_path / "checkpoints")[0]["epoch"] == 1


def run_cli_with(prelude: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``snnrun ARGS`` in a subprocess that first runs ``prelude`` (a resource limit, a patched write)."""
    code = f"{prelude}\nfrom snnrun.cli import main\nmain({list(args)!r})\n"
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env={**env, "PYTHONUNBUFFERED": "1"},
                          capture_output=True, text=True, timeout=180)


QUICK = [*TINY, "trainer.epochs=1", "trainer.limit_train_batches=2", "trainer.limit_test_batches=1"]


@pytest.mark.skipif(os.name != "posix", reason="RLIMIT_FSIZE is POSIX")
def test_full_disk_at_start_is_one_line_and_leaves_no_truncated_config(tmp_path):
    """A file size limit of 512 bytes (RLIMIT_FSIZE, SIGXFSZ ignored: writes past it fail with EFBIG, as
    writes on a full disk fail with ENOSPC) stops Hydra's `.hydra/config.yaml` part-way: one line naming
    the file, exit 2, and no `.hydra` file, truncated or not, is left."""
    run_dir = tmp_path / "run"
    prelude = ("import resource, signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
               "resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))")
    proc = run_cli_with(prelude, *QUICK, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip() == f"snnrun: error: no space left writing {run_dir}/.hydra/config.yaml (File too large)"
    assert not (run_dir / ".hydra").exists()
    assert not list(run_dir.rglob("*.yaml")) and not list(run_dir.rglob("*.tmp*"))


@pytest.mark.skipif(os.name != "posix", reason="RLIMIT_FSIZE is POSIX")
def test_full_disk_in_another_task_is_one_line(tmp_path):
    """The current-clamp task's monitor file hits the limit (5000 steps of 50 neurons): one line, exit 2."""
    run_dir = tmp_path / "run"
    prelude = ("import resource, signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
               "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))")
    proc = run_cli_with(prelude, "experiment=current_clamp", "clamp.duration=5000", "clamp.checkpoint_every=5000",
                        "network.dt=1.0",
                        f"clamp.current=[{','.join(str(0.1 * k) for k in range(50))}]", f"hydra.run.dir={run_dir}",
                        cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().startswith(f"snnrun: error: no space left writing {run_dir}")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_summary_json_is_the_last_file_a_run_writes(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(*[o for o in QUICK if o != "plots=off"], f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = run_dir / "summary.json"
    assert json.loads(summary.read_text())["status"] == "completed"
    later = [p for p in run_dir.rglob("*") if p.is_file() and p.name not in ("snnrun.log", ".lock")
             and p.stat().st_mtime_ns > summary.stat().st_mtime_ns]
    assert later == []
    assert (run_dir / "monitors" / "sample.npz").exists() and (run_dir / "confusion_matrix.csv").exists()


def test_full_disk_at_the_end_never_leaves_a_completed_summary(tmp_path):
    """The monitors' sample file fails part-way (ENOSPC) after training: one line naming it, exit 2, no
    partial sample file, and summary.json says failed (the run did not write everything)."""
    run_dir = tmp_path / "run"
    prelude = ("import errno, numpy\n"
               "def full(path, **arrays):\n"
               "    open(path, 'wb').write(b'PK-partial')\n"
               "    raise OSError(errno.ENOSPC, 'No space left on device')\n"
               "numpy.savez_compressed = full")
    proc = run_cli_with(prelude, *QUICK, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    sample = run_dir / "monitors" / "sample.npz"
    message = f"no space left writing {sample} (No space left on device)"
    assert proc.stderr.strip() == f"snnrun: error: {message}"
    assert not sample.exists() and [p.name for p in (run_dir / "monitors").iterdir() if p.is_file()] == []
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["status"], summary["error"]) == ("failed", message)
    assert checkpoint.load_latest(run_dir / "checkpoints")[0]["epoch"] == 1  # the trained state is kept
