"""The ``snnrun`` command.

``snnrun [overrides]`` runs an experiment through Hydra (``-m`` sweeps, ``--cfg``,
``--info``, ``--help`` as in any Hydra app). Sub-commands are dispatched before
Hydra sees the arguments: ``snnrun resume RUN_DIR``, ``snnrun list [GROUP]``, ``snnrun plot RUN_DIR``.
Torch is imported lazily so ``--help`` and shell completion stay fast.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from .errors import SnnrunError

log = logging.getLogger("snnrun")


def _full_error() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def fail(err: SnnrunError) -> None:
    """Print a user error as one line and exit with its code (2)."""
    if _full_error():
        raise err
    print(f"snnrun: error: {err}", file=sys.stderr)
    sys.exit(err.exit_code)


def run_task(cfg: DictConfig, run_dir: Path, resume: bool = False) -> dict:
    """Run ``cfg.task`` (default ``train``) into ``run_dir`` (:func:`snnrun.tasks.execute`) and print its summary."""
    from . import distributed
    from .tasks import execute

    summary = execute(cfg, run_dir, resume)
    if distributed.is_main():
        _print_summary(summary)
    if summary.get("status") == "interrupted":  # SIGINT/SIGTERM: exit as the signal would (130/143), no traceback
        import signal
        sys.exit(128 + signal.Signals[summary["signal"]].value)
    return summary


def _print_summary(summary: dict) -> None:
    if "final" not in summary:
        if summary.get("message"):
            print(f"snnrun: {summary['message']}")
        print(f"snnrun: {summary.get('status', 'done')}; run directory {summary.get('run_dir')}")
        return
    final, best = summary["final"], summary["best"]
    parts = [f"{k} {v:.4f}" for k, v in final.items() if k.endswith(("accuracy", "loss")) and isinstance(v, float)]
    monitor = summary["monitor"]
    if monitor in best:
        parts.append(f"best {monitor} {best[monitor]:.4f} at epoch {best['epoch']}")
    print(f"snnrun: {summary['status']} {summary['epochs_completed']}/{summary['epochs']} epochs in "
          f"{summary['wall_time_s']:.1f} s on {summary['device']}: {', '.join(parts)}")
    print(f"snnrun: run directory {summary['run_dir']}")
    if summary["status"] == "stopped":
        print(f"snnrun: resume with: snnrun resume {summary['run_dir']}")
    if summary["status"] == "interrupted":
        print(f"snnrun: interrupted by {summary.get('signal')}; checkpoints/last.pt holds epoch "
              f"{summary['epochs_completed']}; resume with: snnrun resume {summary['run_dir']}")


@hydra.main(version_base="1.3", config_path="configs", config_name="config")
def hydra_main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    from .sweep import prepare_job, write_job_error
    prepare_job(cfg, hydra_cfg)
    try:  # held already when Hydra's run_job started this job in this process (snnrun/targets.py)
        taken = _lock(run_dir)
    except SnnrunError as err:  # another process writes this directory: nothing is written into it
        fail(err)
    try:
        summary = run_task(cfg, run_dir)
    except SnnrunError as err:
        if hydra_cfg.mode.name == "MULTIRUN" and not _full_error():
            write_job_error(run_dir, err, with_traceback=False)
            print(f"snnrun: error in job {hydra_cfg.job.num}: {err}", file=sys.stderr)
            return None
        fail(err)
    except Exception as err:  # noqa: BLE001 - a bug in one sweep job: keep its traceback, run the others
        if hydra_cfg.mode.name != "MULTIRUN" or _full_error():
            raise
        write_job_error(run_dir, err, with_traceback=True)
        print(f"snnrun: job {hydra_cfg.job.num} failed ({type(err).__name__}: {err}); "
              f"traceback in {run_dir / 'traceback.txt'}", file=sys.stderr)
        return None
    finally:
        if taken:
            from .runlock import unlock_run_dir
            unlock_run_dir(run_dir)
    from .sweep import objective
    return objective(summary)


def resume(args: list[str]) -> None:
    """``snnrun resume RUN_DIR [--into NEW_DIR] [--trust-unverified] [key=value ...]``: continue a run from
    its ``last.pt``, or fork it into ``NEW_DIR`` (what may change: snnrun/resume.py)."""
    from .checkpoint import take_trust_flag
    from .resume import USAGE, plan
    args = take_trust_flag(args)  # --trust-unverified: also resume from a checkpoint without a valid .sha256
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return
    try:
        job = plan(args)  # the saved config, the overrides checked against what a resume may change
    except SnnrunError as err:
        fail(err)
    try:
        _lock(job.run_dir)  # one writer per run directory: a second run or resume of it is refused
    except SnnrunError as err:
        fail(err)
    from .distributed import is_main
    if is_main():  # under torchrun only rank 0 writes the log
        _setup_logging(job.run_dir)
    try:
        run_task(job.cfg, job.run_dir, resume=job.request())
    except SnnrunError as err:
        job.abandon()  # a fork that failed before its state loaded leaves no directory behind
        fail(err)


def _lock(run_dir: Path) -> bool:
    """Take ``run_dir``'s writer lock (snnrun/runlock.py) unless this process holds it; rank 0 only.
    True if it was taken here."""
    from .distributed import is_main
    from .runlock import lock_run_dir

    return is_main() and lock_run_dir(run_dir)


def _setup_logging(run_dir: Path) -> None:
    handler = logging.FileHandler(run_dir / "snnrun.log")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(logging.Formatter("[%(asctime)s][%(levelname)s] - %(message)s"))
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    root.addHandler(console)


def list_components(args: list[str]) -> None:
    """``snnrun list [GROUP]``: registered components with their parameters, defaults and units."""
    if args and args[0] in ("-h", "--help"):
        print("usage: snnrun list [GROUP]\n\nRegistered components of GROUP (all groups without one), each with "
              "its parameters, defaults, units and help.")
        return
    from .catalog import print_catalog

    try:
        print_catalog(args[0] if args else None)
    except SnnrunError as err:
        fail(err)


def plot(args: list[str]) -> None:
    """``snnrun plot RUN_DIR``: draw a run's (or a sweep's) figures from its files (snnrun/plots/)."""
    from .plots import main as plot_main

    try:
        plot_main(args)
    except SnnrunError as err:
        fail(err)


def _module_command(module: str):
    """A sub-command whose ``main(args)`` lives in ``snnrun.<module>`` (reproduce, compare, validate,
    doctor); a non-zero int it returns is the exit code."""
    def command(args: list[str]) -> None:
        import importlib

        try:
            code = importlib.import_module(f"snnrun.{module}").main(args)
        except SnnrunError as err:
            fail(err)
        if code:
            sys.exit(code)
    return command


COMMANDS = {"resume": resume, "list": list_components, "plot": plot, "reproduce": _module_command("reproduce"),
            "compare": _module_command("compare"), "validate": _module_command("validate"),
            "doctor": _module_command("doctor"), "export": _module_command("export")}


def _config_dirs(argv: list[str]) -> list[str]:
    """The ``--config-dir`` / ``-cd`` folders named on the command line."""
    dirs = []
    for i, arg in enumerate(argv):
        if arg.startswith("--config-dir="):
            dirs.append(arg.split("=", 1)[1])
        elif arg in ("--config-dir", "-cd") and i + 1 < len(argv):
            dirs.append(argv[i + 1])
    return dirs


SUBCOMMANDS = """snnrun: spiking-neural-network experiments from a config.

  snnrun [key=value ...] [group=name ...]   run an experiment (-m: sweep; --cfg job: print the config)
  snnrun validate [key=value ...]           build the config as a dry run: same checks as a run, nothing trained
  snnrun resume RUN_DIR [--into NEW] [...]  continue a run from its last checkpoint (or fork it into NEW)
  snnrun reproduce RUN_DIR [--tol X]        re-run a saved run and compare its final metrics
  snnrun compare RUN_DIR ...                the runs' configs and final metrics side by side
  snnrun plot RUN_DIR                       draw a run's (or a sweep's) figures from its files
  snnrun export RUN_DIR --format nir        a trained network as NIR, a torch.export program or safetensors
  snnrun list [GROUP]                       components, their parameters, defaults and units
  snnrun doctor [--no-build]                versions, CPU, compiler, and each compiled kernel's path

Each sub-command takes --help. Hydra's own options follow.
"""


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(SUBCOMMANDS)
    from .targets import trust_command_line
    if argv and argv[0] in COMMANDS:
        trust_command_line(argv[1:])  # `allow_targets=[...]` counts only here, never from a config (snnrun/targets.py)
        COMMANDS[argv[0]](argv[1:])
        return
    argv = trust_command_line(argv)  # and `allow_targets=[m]` works without a `+`
    from .distributed import hydra_argv
    try:
        argv = hydra_argv(argv)  # torchrun ranks > 0: no run dir, .hydra/ or log of their own
    except SnnrunError as err:
        fail(err)
    sys.argv = [sys.argv[0]] + argv
    from .configs import CONFIG_DIR
    from .hydra_policy import check_group_overrides
    try:  # `scheduler=nan`: one line with the group's choices (Hydra stops with a traceback)
        check_group_overrides([a for a in argv if "=" in a and not a.startswith("-")], [CONFIG_DIR, *_config_dirs(argv)])
    except SnnrunError as err:
        fail(err)
    from .targets import install_hydra_guard
    inspecting = ("--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help", "--shell-completion", "-sc")
    # `_target_` policy and a creatable output directory, checked as Hydra composes (snnrun/targets.py)
    install_hydra_guard(fail, check_output=not any(a.split("=")[0] in inspecting for a in argv),
                        multirun=any(a in ("-m", "--multirun") for a in argv))
    hydra_main()


if __name__ == "__main__":
    main()
