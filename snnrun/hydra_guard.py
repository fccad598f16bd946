"""Hooks in Hydra's config loading and job start that check each config before Hydra uses it.

:func:`snnrun.targets.install_hydra_guard` installs them for the command line: every composed
config is checked (the ``_target_`` policy of :mod:`snnrun.targets`) before Hydra configures
logging, instantiates callbacks or creates a run directory; each job's final paths are checked and
its run directory locked before Hydra writes into it; Hydra's ``.hydra`` files are written atomically.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from .errors import ConfigError


def unknown_override(err: Exception) -> str | None:
    """One line for Hydra's "Could not override 'a.b'" (a key not in the config), else None."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    from .schema import suggest

    cause = err.__cause__
    parent = getattr(cause, "parent_node", None)
    if not isinstance(cause, (ConfigAttributeError, ConfigKeyError)) or not isinstance(parent, DictConfig):
        return None
    valid = [str(k) for k in parent.keys() if k != "hydra"]
    return f"{cause.full_key}: unknown key{suggest(cause.key, valid)}; valid keys: {', '.join(valid)}"


def install(on_error, check: Callable[[DictConfig], None], check_output: bool = True,
            multirun: bool = False) -> None:
    """Check every config Hydra composes (run, sweep, each sweep job) with ``check`` before Hydra
    uses it, and guard each job's start (:func:`_guard_run_job`); what the command line installs
    with :func:`snnrun.targets.install_hydra_guard`, which documents ``on_error``, ``check_output``
    and ``multirun``."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    from .config_files import install_file_check

    install_file_check()  # every config file Hydra reads: strict YAML, no duplicate keys, no allow_targets
    current = ConfigLoaderImpl.load_configuration
    original = getattr(current, "snnrun_original", current)
    pending = {"output": check_output}
    expected = "MULTIRUN" if multirun else "RUN"

    def load_configuration(self, *args, **kwargs):
        from hydra.errors import ConfigCompositionException

        from .errors import SnnrunError
        from .faults import check_output_parent

        try:
            cfg = original(self, *args, **kwargs)
        except ConfigCompositionException as err:
            message = unknown_override(err)
            if message is None:
                raise
            on_error(ConfigError(message))
        except SnnrunError as err:  # a config file with invalid YAML, a duplicate key, allow_targets
            on_error(err)

        try:
            check(cfg)
            mode = kwargs.get("run_mode", args[2] if len(args) > 2 else None)
            if getattr(mode, "name", "") == expected and pending.pop("output", False):
                key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
                try:
                    directory = OmegaConf.select(cfg, key)
                except Exception:  # noqa: BLE001 - a directory that needs the running job to resolve
                    directory = None
                if directory:
                    check_output_parent(directory, key)
        except SnnrunError as err:
            on_error(err)
        return cfg

    load_configuration.snnrun_original = original
    ConfigLoaderImpl.load_configuration = load_configuration
    _guard_run_job(on_error)


def uninstall_hydra_guard() -> None:
    """Undo :func:`install` (:func:`snnrun.targets.install_hydra_guard`), for code that runs the CLI
    in-process, such as tests."""
    import sys

    import hydra.core.utils as hydra_utils
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    from .config_files import install_file_check

    install_file_check()  # every config file Hydra reads: strict YAML, no duplicate keys, no allow_targets
    current = ConfigLoaderImpl.load_configuration
    ConfigLoaderImpl.load_configuration = getattr(current, "snnrun_original", current)
    guarded = hydra_utils.run_job
    original = getattr(guarded, "snnrun_original", None)
    if original is not None:
        for name, module in list(sys.modules.items()):
            if name.startswith(("hydra.", "hydra_plugins.")) and vars(module).get("run_job") is guarded:
                module.run_job = original


_saved: list = []  # the .hydra files the current job wrote (removed again if a later one fails)


def _save_config(cfg: Any, filename: str, output_dir) -> None:
    """Hydra's ``hydra.core.utils._save_config`` (``.hydra/config.yaml``, ``hydra.yaml``,
    ``overrides.yaml``), written atomically: a full disk leaves no truncated file, and the error
    names the file (``no space left writing RUN_DIR/.hydra/config.yaml``)."""
    from .faults import write_error, write_text_atomic

    path = Path(output_dir) / filename
    try:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_error(output_dir, err) from None
    write_text_atomic(path, OmegaConf.to_yaml(cfg))
    _saved.append(path)


def _guard_run_job(on_error) -> None:
    """Wrap Hydra's ``run_job`` (every in-process launcher starts a job through it): before Hydra
    creates the job's run directory, configures job logging, writes ``.hydra`` or applies
    ``env_set``, check the job's final paths (:func:`snnrun.hydra_policy.check_job`) and take the
    run directory's lock (:mod:`snnrun.runlock`); release it when the job ends. Hydra's ``.hydra``
    files are written atomically (:func:`_save_config`); if one cannot be written (a full disk),
    those already written by this job are removed and the refusal is one line."""
    import sys

    import hydra.core.utils as hydra_utils

    current = hydra_utils.run_job
    original = getattr(current, "snnrun_original", current)
    hydra_utils._save_config = _save_config  # run_job calls it by this module-level name

    def run_job(task_function, config, job_dir_key, job_subdir_key, *args, **kwargs):
        from . import distributed
        from .errors import SnnrunError
        from .hydra_policy import check_job, job_output_dir
        from .runlock import lock_run_dir, unlock_run_dir

        locked = None
        try:
            output_dir, sweep_dir = job_output_dir(config, job_dir_key, job_subdir_key)
            check_job(config, output_dir, sweep_dir)
            if distributed.is_main():  # torchrun ranks > 0 write nothing (snnrun/distributed.py)
                lock_run_dir(output_dir)
                locked = output_dir
        except SnnrunError as err:
            on_error(err)
        _saved.clear()
        try:
            return original(task_function, config, job_dir_key, job_subdir_key, *args, **kwargs)
        except SnnrunError as err:  # writing .hydra failed (the task had not started): leave no part of it
            for path in reversed(_saved):
                with contextlib.suppress(OSError):
                    path.unlink()
            subdir = OmegaConf.select(config, "hydra.output_subdir")
            if subdir is not None:
                with contextlib.suppress(OSError):
                    (Path(output_dir) / str(subdir)).rmdir()  # only when empty
            on_error(err)
        finally:
            if locked is not None:
                unlock_run_dir(locked)

    run_job.snnrun_original = original
    hydra_utils.run_job = run_job
    # modules that imported the name before (Hydra's run, the basic launcher, launcher plugins loaded so far)
    for name, module in list(sys.modules.items()):
        if name.startswith(("hydra.", "hydra_plugins.")) and vars(module).get("run_job") is original:
            module.run_job = run_job
