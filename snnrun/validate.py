"""``snnrun validate [overrides]``: the run's build as a dry run.

The config is composed with Hydra's compose API like a run composes it (the package's config
tree, ``--config-dir DIR`` searched first, ``--config-name NAME``), with its ``hydra`` section:
that section is checked as a run checks it (``_target_`` policy, ``env_set`` allow-list, logging
handlers, output paths inside the run directory). Then the task's own build runs as a dry run
(:func:`snnrun.tasks.Task.check`): for ``train`` that is :func:`snnrun.build.build_experiment` with
``dry_run=True`` plus the monitors' and plots' checks against the built network — the data are
loaded for their shapes and classes, every module is built, no compiled kernel is built and nothing
is written. There is no second implementation of the checks, so ``validate`` accepts a config
exactly when a run's build does (``tests/test_validate.py`` checks this over the shipped
experiments and mutations of them).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, open_dict

from .errors import ConfigError, SnnrunError


def compose(overrides: list[str], config_dir: str | None = None, config_name: str = "config") -> DictConfig:
    """Compose like ``snnrun`` does: the same config search path (Hydra's, the packaged configs, then
    ``config_dir`` as ``--config-dir`` adds it, so a primary config there is found by ``config_name``),
    each config file checked as a run checks it (:mod:`snnrun.config_files`)."""
    from hydra import compose as hydra_compose, version
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from .config_files import install_file_check
    from .configs import CONFIG_DIR
    from .hydra_policy import check_group_overrides
    from .targets import trust_command_line

    overrides = trust_command_line(list(overrides))  # `allow_targets=[...]` is honoured from here only
    install_file_check()  # the config files as a run reads them: strict YAML, no duplicate keys, no allow_targets
    check_group_overrides(overrides, [CONFIG_DIR] + ([config_dir] if config_dir else []))
    if config_dir is not None and not Path(config_dir).is_dir():
        raise ConfigError(f"--config-dir: {config_dir} is not a directory")
    GlobalHydra.instance().clear()
    try:
        version.setbase("1.3")
        search_path = create_config_search_path("pkg://snnrun.configs")
        if config_dir is not None:  # where and how Hydra's --config-dir adds it
            search_path.prepend(provider="command-line", path=f"file://{Path(config_dir).resolve()}",
                                anchor=SearchPathQuery(provider="schema"))
        Hydra.create_main_hydra2(task_name="snnrun", config_search_path=search_path)
        return hydra_compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
        raise ConfigError(" ".join(lines[:2])) from None
    finally:
        GlobalHydra.instance().clear()


def validate_config(cfg: DictConfig) -> list[str]:
    """Raise an :class:`SnnrunError` for the first problem; return notes on what was not checked."""
    from .hydra_policy import check_hydra
    from .targets import check_targets
    from .tasks import get_task

    if "hydra" in cfg:
        check_targets(cfg)  # the hydra section as a run checks it (the rest again in the build)
        check_hydra(cfg)
        cfg = cfg.copy()
        with open_dict(cfg):
            del cfg["hydra"]  # the job's config, as Hydra hands it to the task
    task = cfg.get("task", "train")
    return get_task(task).check(cfg)


USAGE = ("usage: snnrun validate [--config-dir DIR] [--config-name NAME] [key=value ...]\n\nCompose the config and "
         "run its build as a dry run: every component built and checked (the data loaded for their shapes), the "
         "hydra section checked, nothing trained or written.")


def main(args: list[str]) -> int:
    if args and args[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    args = list(args)
    options = {"--config-dir": None, "--config-name": "config"}
    for flag in list(options):
        for i, arg in enumerate(args):
            if arg == flag or arg.startswith(flag + "="):
                if "=" in arg:
                    options[flag] = arg.split("=", 1)[1]
                    del args[i]
                elif i + 1 < len(args):
                    options[flag] = args[i + 1]
                    del args[i:i + 2]
                else:
                    raise SnnrunError(f"validate: {flag} needs a value")
                break
    for short, flag in (("-cd", "--config-dir"), ("-cn", "--config-name")):
        if short in args:
            i = args.index(short)
            options[flag] = args[i + 1]
            del args[i:i + 2]
    cfg = compose(args, options["--config-dir"], options["--config-name"])
    notes = validate_config(cfg)
    for note in notes:
        print(f"snnrun: note: {note}")
    print("snnrun: config is valid")
    return 0
