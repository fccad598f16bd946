"""Tasks: what a run does with its config (``task: train`` by default).

A task is a registered component like the others: a module in this package with

- ``SECTIONS``: the top-level config keys it owns and their schemas (``{"clamp": ClampParams}``
  for ``current_clamp``), which :func:`snnrun.spec.parse_spec` parses into ``spec.sections``; the
  keys are also given when the task is registered, so the top-level check knows them without
  importing the task;
- ``check(cfg) -> list[str]``: the task's build, run as a dry run (no simulation, nothing
  written): ``snnrun validate`` calls it, so it accepts a config exactly when the run's build does;
  it returns notes on what it could not check;
- ``run(cfg, run_dir, resume) -> dict``: build (the same code as ``check``) and run; returns the
  summary that is written to ``summary.json``.

This module only names the tasks (their modules are imported when a task is used), so the
build can ask for every task's keys without importing the tasks themselves; :func:`execute` runs
one into a run directory (for ``snnrun`` and :func:`snnrun.api.run`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from ..errors import ConfigError
from ..schema import suggest


@dataclass(frozen=True)
class Task:
    """A registered task: its name, its module (``check``, ``run``) and its config keys."""

    name: str
    module: str
    config_keys: tuple[str, ...] = ()

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)

    def sections(self) -> dict[str, type]:
        """The top-level config keys the task owns and the schema of each (its module's ``SECTIONS``)."""
        return dict(self.load().SECTIONS)

    def check(self, cfg) -> list[str]:
        return self.load().check(cfg)

    def run(self, cfg, run_dir, resume: bool = False) -> dict:
        return self.load().run(cfg, run_dir, resume)


TASKS: dict[str, Task] = {}


def register_task(name: str, module: str, config_keys: tuple[str, ...] = ()) -> Task:
    """Register a task module (e.g. a plug-in's ``mypackage.tasks.protocol``) under ``name``."""
    TASKS[name] = Task(name, module, tuple(config_keys))
    return TASKS[name]


for _name, _keys in (("train", ()), ("current_clamp", ("clamp",)), ("stdp_window", ("protocol",)),
                     ("diehl_cook", ("diehl_cook",)), ("rstdp_xor", ("xor",))):
    register_task(_name, f"{__name__}.{_name}", _keys)


def task_config_keys() -> tuple[str, ...]:
    """Every registered task's top-level config keys."""
    return tuple(k for task in TASKS.values() for k in task.config_keys)


def get_task(name) -> Task:
    if not isinstance(name, str) or name not in TASKS:
        raise ConfigError(f"task: unknown task {name!r}{suggest(str(name), TASKS)}; valid: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def execute(cfg, run_dir, resume=False) -> dict:
    """Run ``cfg.task`` (default ``train``) into ``run_dir`` and return its summary: what ``snnrun``
    and :func:`snnrun.api.run` do once the run directory is set up. Under ``torchrun`` the process
    joins its group first and the run directory is rank 0's. A full disk is a one-line
    :class:`~snnrun.errors.SnnrunError`. Every task draws its figures before it writes
    ``summary.json`` (the runner's or :class:`snnrun.services.RunServices`'s last file). Prints
    nothing and never exits the process."""
    from pathlib import Path

    from .. import distributed
    from ..errors import SnnrunError

    run_dir = distributed.setup(cfg, Path(run_dir))  # torchrun: join the process group, take rank 0's run dir
    task = cfg.get("task", "train")
    try:
        summary = get_task(task).run(cfg, run_dir, resume)
    except OSError as err:  # a full disk in any task: one line, not a traceback
        import errno

        if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        raise SnnrunError(f"no space left writing {err.filename or run_dir} ({err.strerror}); free some space, "
                          f"then resume or re-run") from None
    finally:
        distributed.teardown()
    return summary
