"""Tasks: what a run does with its config (``task: train`` by default).

A task is a function ``run(cfg, run_dir, resume) -> summary`` registered with
the top-level config keys it owns (e.g. ``clamp`` for ``current_clamp``), so
the config check accepts them. The summary dict is written to
``summary.json`` by the task and printed by the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig, OmegaConf

from .errors import ConfigError
from .schema import suggest


@dataclass
class Task:
    name: str
    run: Callable[[DictConfig, Path, bool], dict]
    config_keys: tuple[str, ...] = ()


TASKS: dict[str, Task] = {}


def register_task(name: str, config_keys: tuple[str, ...] = ()):
    def decorate(fn):
        TASKS[name] = Task(name, fn, tuple(config_keys))
        return fn
    return decorate


def task_config_keys() -> tuple[str, ...]:
    _load_builtin_tasks()
    return tuple(k for t in TASKS.values() for k in t.config_keys)


def get_task(name: str) -> Task:
    _load_builtin_tasks()
    if name not in TASKS:
        raise ConfigError(f"task: unknown task '{name}'{suggest(str(name), TASKS)}; valid: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def _load_builtin_tasks() -> None:
    """Import the modules that register tasks (kept lazy: they import torch)."""
    import importlib

    for module in BUILTIN_TASK_MODULES:
        importlib.import_module(module)


#: modules whose import registers a task; extend when adding a task module.
BUILTIN_TASK_MODULES = ["snnrun.tasks", "snnrun.clamp", "snnrun.learning.window", "snnrun.learning.diehl_cook", "snnrun.learning.xor"]


@register_task("train")
def train(cfg: DictConfig, run_dir: Path, resume: bool = False) -> dict:
    """Build the experiment and fit it: epochs of training and evaluation."""
    from .build import build_experiment
    from .distributed import local_device
    from .runner import Runner

    exp = build_experiment(cfg, device=local_device(cfg))  # torchrun on CUDA: this rank's cuda:LOCAL_RANK
    runner = Runner(exp, run_dir, OmegaConf.to_yaml(cfg))
    return runner.fit(resume=resume)
