"""A config controls the experiment, not the process (snnrun/hydra_policy.py, snnrun/runlock.py).

Each attack goes through the real CLI (a subprocess, as a user runs it) and must be refused in one
line naming the key, with exit code 2, no traceback, and nothing written outside the run
directory (the marker a payload would create stays absent). Checks that need no process run
in-process on a config composed by Hydra.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf, open_dict

from conftest import ROOT, TINY, run_cli
from snnrun.errors import ConfigError, SnnrunError
from snnrun.hydra_policy import ALLOWED_ENV, check_hydra
from snnrun.runlock import LOCK_NAME, RunDirBusy, lock_run_dir, unlock_run_dir

#: a run of well under a second; compiled kernels off where a run is only set-up (no builds in tests)
QUICK = [*TINY, "trainer.epochs=1", "trainer.limit_train_batches=2", "trainer.limit_test_batches=1", "monitors=off"]
NO_KERNELS = {"SNNRUN_KERNELS": "0"}


@pytest.fixture
def compose_hydra():
    """Compose snnrun's config with Hydra's own section (as the CLI does) and ``TINY + overrides``."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    def compose_(overrides):
        GlobalHydra.instance().clear()
        try:
            with initialize_config_module(config_module="snnrun.configs", version_base="1.3"):
                return compose(config_name="config", overrides=[*TINY, *overrides], return_hydra_config=True)
        finally:
            GlobalHydra.instance().clear()
    return compose_


def assert_refused(proc, key: str, *fragments: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"snnrun: error: {key}: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in proc.stderr


def experiment(tmp_path: Path, name: str, body: dict) -> list[str]:
    """A downloaded experiment (``--config-dir``) holding ``body``; the arguments that select it."""
    folder = tmp_path / "downloaded" / "experiment"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text("# @package _global_\n" + OmegaConf.to_yaml(body))
    return ["--config-dir", str(tmp_path / "downloaded"), f"experiment={name}"]


@pytest.fixture
def compiler_trap(tmp_path):
    """A 'compiler' that leaves a marker, and the empty cache folders that would force a build with it."""
    marker = tmp_path / "compiler-ran"
    script = tmp_path / "cxx.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    script.chmod(0o755)
    for name in ("extensions", "kernels"):
        (tmp_path / name).mkdir()
    return {"CXX": str(script), "TORCH_EXTENSIONS_DIR": str(tmp_path / "extensions"),
            "SNNRUN_KERNEL_CACHE": str(tmp_path / "kernels")}, marker


def assert_untouched(tmp_path: Path, marker: Path) -> None:
    assert not marker.exists()
    assert not any((tmp_path / "extensions").iterdir()) and not any((tmp_path / "kernels").iterdir())


# --- environment variables -----------------------------------------------------------------------
def test_the_kernel_builder_would_use_a_configured_compiler(compiler_trap, monkeypatch):
    """Control: the C++ compiler snnrun's kernel builder calls is ``$CXX``, so ``env_set.CXX`` would choose it."""
    from snnrun.kernels import compiler

    env, _ = compiler_trap
    monkeypatch.setenv("CXX", env["CXX"])
    assert compiler() == env["CXX"]


def test_env_set_from_a_downloaded_experiment_is_refused(tmp_path, compiler_trap):
    env, marker = compiler_trap
    args = experiment(tmp_path, "evil", {"hydra": {"job": {"env_set": env}}})
    proc = run_cli(*args, *QUICK, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert_refused(proc, "hydra.job.env_set.CXX", "a config may not set this environment variable",
                   "allowed: OMP_NUM_THREADS, MKL_NUM_THREADS")
    assert_untouched(tmp_path, marker)
    assert not (tmp_path / "run").exists()


def test_env_set_from_the_command_line_is_refused(tmp_path, compiler_trap):
    env, marker = compiler_trap
    overrides = [f"+hydra.job.env_set.{name}={value}" for name, value in reversed(env.items())]
    proc = run_cli(*QUICK, *overrides, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert_refused(proc, "hydra.job.env_set.SNNRUN_KERNEL_CACHE", "a config may not set this environment variable")
    assert_untouched(tmp_path, marker)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["CXX", "CC", "TORCH_EXTENSIONS_DIR", "SNNRUN_KERNEL_CACHE", "LD_PRELOAD",
                                  "LD_LIBRARY_PATH", "PATH", "PYTHONPATH", "HOME", "MAX_JOBS"])
def test_only_allowed_environment_variables(compose_hydra, name):
    cfg = compose_hydra([f"+hydra.job.env_set.{name}=x"])
    with pytest.raises(ConfigError, match=rf"^hydra.job.env_set.{name}: a config may not set this environment"):
        check_hydra(cfg)


def test_allowed_environment_variables_pass(compose_hydra):
    check_hydra(compose_hydra([f"+hydra.job.env_set.{name}=1" for name in ALLOWED_ENV]))


def test_an_allowed_variable_reaches_the_job(tmp_path):
    """OMP_NUM_THREADS from ``env_set`` is in the job's environment: a trusted callback (allowed by the
    user on the command line) records it when the job starts, inside Hydra's env_set."""
    (tmp_path / "envcb.py").write_text(textwrap.dedent(f"""
        import os, pathlib
        from hydra.experimental.callback import Callback

        class Record(Callback):
            def on_job_start(self, config, **kwargs):
                pathlib.Path({str(tmp_path / 'seen')!r}).write_text(os.environ.get("OMP_NUM_THREADS", "unset"))
    """))
    run_dir = tmp_path / "run"
    proc = run_cli(*QUICK, f"hydra.run.dir={run_dir}", "+hydra.job.env_set.OMP_NUM_THREADS=1",
                   "+hydra.callbacks.record._target_=envcb.Record", "+allow_targets=[envcb]", cwd=tmp_path,
                   env={"PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "2", **NO_KERNELS})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "seen").read_text() == "1"
    assert yaml.safe_load((run_dir / ".hydra" / "hydra.yaml").read_text())["hydra"]["job"]["env_set"] == \
        {"OMP_NUM_THREADS": "1"}


# --- logging -------------------------------------------------------------------------------------
def bashrc_payload(tmp_path: Path, marker: Path) -> dict:
    """Hydra job logging that appends ``touch MARKER # <log message>`` to a shell start-up file."""
    return {"formatters": {"shell": {"format": f"touch {marker} # %(message)s"}},
            "handlers": {"file": {"class": "logging.FileHandler", "filename": str(tmp_path / "home" / ".bashrc"),
                                  "formatter": "shell"}}}


@pytest.mark.parametrize("section", ["job_logging", "hydra_logging"])
def test_a_log_file_outside_the_run_directory_is_refused(tmp_path, section):
    (tmp_path / "home").mkdir()
    bashrc = tmp_path / "home" / ".bashrc"
    bashrc.write_text("# mine\n")
    payload = bashrc_payload(tmp_path, tmp_path / "pwned")
    if section == "hydra_logging":
        payload["root"] = {"handlers": ["file"], "level": "INFO"}
    args = experiment(tmp_path, "evil", {"hydra": {section: payload}})
    proc = run_cli(*args, *QUICK, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    if section == "job_logging":
        assert_refused(proc, "hydra.job_logging.handlers.file.filename", "is outside the run directory")
    else:
        assert_refused(proc, "hydra.hydra_logging.handlers.file.class", "`logging.FileHandler` is not allowed",
                       "may not write files")
    assert bashrc.read_text() == "# mine\n" and not (tmp_path / "pwned").exists()
    assert not (tmp_path / "run").exists()


def test_logging_factories_are_refused_through_the_cli(tmp_path):
    """``()`` factories from the logging package itself (``logging.config.fileConfig`` evaluates the
    ``args`` of an .ini file) passed the old module-prefix check."""
    ini = tmp_path / "evil.ini"
    ini.write_text(f"[loggers]\nkeys=root\n[handlers]\nkeys=h\n[formatters]\nkeys=\n[logger_root]\nhandlers=h\n"
                   f"[handler_h]\nclass=StreamHandler\nargs=(__import__('os').system('touch {tmp_path / 'pwned'}'),)\n")
    args = experiment(tmp_path, "evil", {"hydra": {"job_logging": {"formatters": {"simple": {
        "()": "logging.config.fileConfig", "fname": str(ini)}}}}})
    proc = run_cli(*args, *QUICK, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert_refused(proc, "hydra.job_logging.formatters.simple.()", "`logging.config.fileConfig` is not allowed")
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "run").exists()


def _set(key: str, value):
    def mutate(cfg):
        OmegaConf.update(cfg, key, value, force_add=True)
    return mutate


def _set_property(cfg):
    cfg.hydra.job_logging.handlers.file["."] = {"baseFilename": "/tmp/elsewhere.log"}


JOB = "hydra.job_logging"


@pytest.mark.parametrize("mutate,key,fragment", [
    (_set(f"{JOB}.handlers.console.class", "logging.handlers.SocketHandler"), f"{JOB}.handlers.console.class",
     "`logging.handlers.SocketHandler` is not allowed"),
    (_set(f"{JOB}.handlers.console.class", "logging.config.fileConfig"), f"{JOB}.handlers.console.class",
     "`logging.config.fileConfig` is not allowed"),
    (_set(f"{JOB}.handlers.file.()", "logging.FileHandler"), f"{JOB}.handlers.file.()", "custom factories"),
    (_set_property, f"{JOB}.handlers.file..", "custom handler properties are not allowed"),
    (_set(f"{JOB}.handlers.file.maxBytes", 5), f"{JOB}.handlers.file.maxBytes",
     "not an argument of logging.FileHandler"),
    (_set(f"{JOB}.formatters.simple.class", "logging.BufferingFormatter"), f"{JOB}.formatters.simple.class",
     "formatters are logging.Formatter"),
    (_set(f"{JOB}.formatters.simple.()", "builtins.exec"), f"{JOB}.formatters.simple.()",
     "`builtins.exec` is not allowed"),
    (_set(f"{JOB}.filters", {"f": {"()": "logging.config.listen"}}), f"{JOB}.filters.f", "only logger-name filters"),
    (_set(f"{JOB}.handlers.console.stream", "cfg://handlers.file.filename"), f"{JOB}.handlers.console.stream",
     "no cfg:// references"),
    (_set(f"{JOB}.handlers.console.stream", "ext://os.environ"), f"{JOB}.handlers.console.stream",
     "`ext://os.environ` is not allowed"),
    (_set(f"{JOB}.handlers.file.filename", "relative.log"), f"{JOB}.handlers.file.filename",
     "relative to the working directory"),
    (_set(f"{JOB}.handlers.file.filename", "${hydra.runtime.output_dir}/../up.log"), f"{JOB}.handlers.file.filename",
     "is outside the run directory"),
    (_set(f"{JOB}.handlers.file.filename", "${hydra.run.dir}/../up.log"), f"{JOB}.handlers.file.filename",
     "is outside the run directory"),
    (_set("hydra.hydra_logging.handlers.console.class", "logging.handlers.RotatingFileHandler"),
     "hydra.hydra_logging.handlers.console.class", "may not write files"),
    (_set("hydra.output_subdir", "/tmp/elsewhere"), "hydra.output_subdir", "is outside the run directory"),
    (_set("hydra.output_subdir", "a/../../b"), "hydra.output_subdir", "is outside the run directory"),
    (_set("hydra.sweep.subdir", "../${hydra.job.num}"), "hydra.sweep.subdir", "is outside the sweep directory"),
    (_set("hydra.launcher.submitit_folder", "/tmp/submitit"), "hydra.launcher.submitit_folder",
     "is outside the sweep directory"),
])
def test_logging_and_path_policy(compose_hydra, mutate, key, fragment):
    cfg = compose_hydra([])
    OmegaConf.set_struct(cfg, False)
    with open_dict(cfg.hydra):
        mutate(cfg)
    with pytest.raises(ConfigError) as err:
        check_hydra(cfg)
    assert str(err.value).startswith(f"{key}: ") and fragment in str(err.value), str(err.value)


def test_default_and_inside_logging_pass(compose_hydra):
    check_hydra(compose_hydra([]))  # Hydra's default job logging: console + ${hydra.runtime.output_dir}/snnrun.log
    check_hydra(compose_hydra(["hydra/job_logging=stdout", "hydra/hydra_logging=disabled"]))
    check_hydra(compose_hydra(["hydra.job.chdir=true", "hydra.job_logging.handlers.file.filename=train.log",
                               "hydra.output_subdir=meta/hydra"]))
    check_hydra(compose_hydra(["hydra.job_logging.handlers.file.class=logging.handlers.RotatingFileHandler",
                               "+hydra.job_logging.handlers.file.maxBytes=1000000",
                               "+hydra.job_logging.handlers.file.backupCount=2"]))


# --- output paths --------------------------------------------------------------------------------
def test_output_subdir_outside_the_run_directory_is_refused(tmp_path):
    args = experiment(tmp_path, "evil", {"hydra": {"output_subdir": "../../somewhere"}})
    proc = run_cli(*args, *QUICK, f"hydra.run.dir={tmp_path / 'a' / 'run'}", cwd=tmp_path)
    assert_refused(proc, "hydra.output_subdir", "`../../somewhere` is outside the run directory")
    assert not (tmp_path / "somewhere").exists() and not (tmp_path / "a").exists()


def test_links_out_of_an_existing_run_directory_are_refused(tmp_path):
    """A run into an existing directory whose ``.hydra`` or log file is a link to somewhere else."""
    (tmp_path / "home").mkdir()
    bashrc = tmp_path / "home" / ".bashrc"
    bashrc.write_text("# mine\n")
    linked_hydra, linked_log = tmp_path / "r1", tmp_path / "r2"
    linked_hydra.mkdir()
    (linked_hydra / ".hydra").symlink_to(tmp_path / "home")
    linked_log.mkdir()
    (linked_log / "snnrun.log").symlink_to(bashrc)
    proc = run_cli(*QUICK, f"hydra.run.dir={linked_hydra}", cwd=tmp_path)
    assert_refused(proc, "hydra.output_subdir", "through a symbolic link")
    proc = run_cli(*QUICK, f"hydra.run.dir={linked_log}", cwd=tmp_path)
    assert_refused(proc, "hydra.job_logging.handlers.file.filename", f"resolves to {bashrc}")
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == [".bashrc"] and bashrc.read_text() == "# mine\n"
    assert sorted(p.name for p in linked_hydra.iterdir()) == [".hydra"]
    assert sorted(p.name for p in linked_log.iterdir()) == ["snnrun.log"]


def test_a_sweep_job_outside_the_sweep_directory_is_refused(tmp_path):
    proc = run_cli("-m", *QUICK, "seed=0,1", f"hydra.sweep.dir={tmp_path / 's' / 'sweep'}",
                   "hydra.sweep.subdir=../../job${hydra.job.num}", cwd=tmp_path)
    assert_refused(proc, "hydra.sweep.subdir", "is outside the sweep directory")
    assert not list(tmp_path.glob("job*")) and not (tmp_path / "s").exists()


# --- saved runs: reproduce and resume --------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished tiny run (checkpoints, summary.json) to copy: crafted and locked run directories."""
    base = tmp_path_factory.mktemp("finished")
    run_dir = base / "run"
    proc = run_cli(*QUICK, f"hydra.run.dir={run_dir}", cwd=base, env=NO_KERNELS)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return run_dir


def crafted_copy(finished_run: Path, tmp_path: Path, hydra_section: dict) -> Path:
    run_dir = tmp_path / "downloaded-run"
    shutil.copytree(finished_run, run_dir, ignore=shutil.ignore_patterns(LOCK_NAME))
    saved = run_dir / ".hydra" / "config.yaml"
    saved.write_text(saved.read_text() + OmegaConf.to_yaml({"hydra": hydra_section}))
    return run_dir


def test_reproduce_and_resume_ignore_a_saved_hydra_section(finished_run, tmp_path, compiler_trap):
    env, marker = compiler_trap
    (tmp_path / "home").mkdir()
    bashrc = tmp_path / "home" / ".bashrc"
    bashrc.write_text("# mine\n")
    run_dir = crafted_copy(finished_run, tmp_path, {"job": {"env_set": env},
                                                    "job_logging": bashrc_payload(tmp_path, tmp_path / "pwned"),
                                                    "output_subdir": "../../somewhere"})
    warning = (f"snnrun: warning: {run_dir / '.hydra' / 'config.yaml'} has a `hydra` section; ignored (a saved run's "
               f"Hydra settings")
    out = tmp_path / "reproduced"
    proc = run_cli("reproduce", str(run_dir), "--out", str(out), cwd=tmp_path, env=NO_KERNELS, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert warning in proc.stderr and "Traceback" not in proc.stderr
    assert (out / ".hydra" / "config.yaml").is_file() and "hydra" not in yaml.safe_load(
        (out / ".hydra" / "config.yaml").read_text())
    proc = run_cli("resume", str(run_dir), "trainer.epochs=2", cwd=tmp_path, env=NO_KERNELS)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert warning in proc.stderr and "completed 2/2 epochs" in proc.stdout
    assert_untouched(tmp_path, marker)
    assert bashrc.read_text() == "# mine\n" and not (tmp_path / "pwned").exists()
    assert not (tmp_path / "somewhere").exists() and not (tmp_path.parent / "somewhere").exists()


def test_resume_refuses_a_log_file_linked_out_of_the_run_directory(finished_run, tmp_path):
    (tmp_path / "home").mkdir()
    bashrc = tmp_path / "home" / ".bashrc"
    bashrc.write_text("# mine\n")
    run_dir = tmp_path / "downloaded-run"
    shutil.copytree(finished_run, run_dir, ignore=shutil.ignore_patterns(LOCK_NAME, "snnrun.log"))
    (run_dir / "snnrun.log").symlink_to(bashrc)
    proc = run_cli("resume", str(run_dir), "trainer.epochs=2", cwd=tmp_path, env=NO_KERNELS)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == (f"snnrun: error: {run_dir / 'snnrun.log'} is a symbolic link to {bashrc}, outside "
                                   f"the run directory; snnrun does not write through it (remove the link)")
    assert bashrc.read_text() == "# mine\n"


# --- one writer per run directory -------------------------------------------------------------------
HOLD = ("import sys, time; from snnrun.runlock import lock_run_dir; lock_run_dir(sys.argv[1]); "
        "print('locked', flush=True); time.sleep(120)")


def hold_lock(run_dir: Path) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True,
                             cwd=ROOT)
    assert child.stdout.readline().strip() == "locked"
    return child


def test_a_second_writer_is_refused_and_a_killed_holder_does_not_block(finished_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir, ignore=shutil.ignore_patterns(LOCK_NAME))
    before = {p: p.read_bytes() for p in (run_dir / ".hydra").iterdir()}
    metrics = (run_dir / "metrics.csv").read_text()
    child = hold_lock(run_dir)
    try:
        busy = f"{run_dir} is in use by another snnrun process (PID {child.pid})"
        resumed = run_cli("resume", str(run_dir), "trainer.epochs=2", cwd=tmp_path, env=NO_KERNELS)
        assert resumed.returncode == 2 and resumed.stderr.strip().splitlines() == [
            f"snnrun: error: {busy}; one process writes a run directory at a time: wait for it to end, or stop it"]
        second = run_cli(*QUICK, f"hydra.run.dir={run_dir}", cwd=tmp_path, env=NO_KERNELS)
        assert second.returncode == 2 and len(second.stderr.strip().splitlines()) == 1 and busy in second.stderr
        assert "Traceback" not in resumed.stderr + second.stderr
        # nothing of the first run was touched: not .hydra, not the metrics
        assert {p: p.read_bytes() for p in (run_dir / ".hydra").iterdir()} == before
        assert (run_dir / "metrics.csv").read_text() == metrics
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert (run_dir / LOCK_NAME).read_text().strip() == str(child.pid)  # left behind by the killed holder
    resumed = run_cli("resume", str(run_dir), "trainer.epochs=2", cwd=tmp_path, env=NO_KERNELS)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "completed 2/2 epochs" in resumed.stdout


def test_lock_in_process(tmp_path):
    run_dir = tmp_path / "run"
    lock_run_dir(run_dir)
    try:
        assert (run_dir / LOCK_NAME).read_text().strip() == str(os.getpid())
        lock_run_dir(run_dir)  # held by this process already: nothing happens
        probe = subprocess.run([sys.executable, "-c", "import sys; from snnrun.runlock import lock_run_dir; "
                                "lock_run_dir(sys.argv[1])", str(run_dir)], capture_output=True, text=True, cwd=ROOT)
        assert probe.returncode != 0 and f"RunDirBusy: {run_dir} is in use by another snnrun process " \
            f"(PID {os.getpid()})" in probe.stderr
    finally:
        unlock_run_dir(run_dir)
    start = time.monotonic()
    lock_run_dir(run_dir)  # released: taken again at once
    unlock_run_dir(run_dir)
    assert time.monotonic() - start < 5
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / LOCK_NAME).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(SnnrunError, match="cannot open the run directory's lock file"):
        lock_run_dir(linked)
    assert not (tmp_path / "elsewhere").exists()
    assert issubclass(RunDirBusy, SnnrunError) and RunDirBusy.exit_code == 2
