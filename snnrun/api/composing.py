"""Composing a config as ``snnrun OVERRIDES`` does: the overrides and config folders checked first,
Hydra initialised only while composing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence, Union

from omegaconf import DictConfig

from ..errors import ConfigError

PathLike = Union[str, "os.PathLike[str]"]


def compose_config(overrides: Sequence[str], config_dir: PathLike | Sequence[PathLike] | None) -> DictConfig:
    """:func:`snnrun.api.compose`."""
    overrides = check_overrides(overrides)
    dirs = config_dirs(config_dir)
    from ..configs import CONFIG_DIR
    from ..hydra_policy import check_group_overrides

    search = [CONFIG_DIR, *dirs]
    check_group_overrides(overrides, search)  # `trainer=[1,2]`: one line with the group's choices
    check_group_options(overrides, search)  # `neuron=nope`: likewise
    from ..config_files import install_file_check

    install_file_check()  # every config file read: strict YAML, no duplicate keys, no allow_targets
    from hydra import compose as hydra_compose
    from hydra import version
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.errors import ConfigCompositionException, HydraException
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    backup = get_gh_backup()
    try:
        version.setbase("1.3")
        search_path = create_config_search_path(str(CONFIG_DIR))
        for folder in dirs:  # as `snnrun --config-dir DIR` adds them
            search_path.prepend(provider="command-line", path=f"file://{folder}", anchor=SearchPathQuery(provider="schema"))
        Hydra.create_main_hydra2(task_name="snnrun", config_search_path=search_path)
        return hydra_compose(config_name="config", overrides=overrides)
    except ConfigCompositionException as err:
        from ..targets import unknown_override

        raise ConfigError(unknown_override(err) or f"compose: {first_line(err)}") from None
    except HydraException as err:
        raise ConfigError(f"compose: {first_line(err)}") from None
    finally:
        restore_gh_from_backup(backup)  # Hydra's global state as it was (not initialised, usually)


def first_line(err: BaseException) -> str:
    """The first line of ``err``'s message (its type's name when it has none)."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def check_overrides(overrides: Sequence[str]) -> list[str]:
    """The ``key=value`` overrides checked (no command-line options, no ``hydra.*``); ``allow_targets=``
    written ``++allow_targets=`` as on the command line."""
    if isinstance(overrides, (str, bytes)) or not isinstance(overrides, Sequence):
        raise ConfigError(f"overrides: expected a list of key=value strings such as ['neuron=alif'], got "
                          f"{overrides!r}")
    out = []
    for item in overrides:
        if not isinstance(item, str):
            raise ConfigError(f"overrides: expected key=value strings, got {item!r}")
        if item.startswith("-"):
            raise ConfigError(f"overrides: `{item}` is an option of the snnrun command, not a config override; the "
                              f"Python API takes key=value overrides (for a sweep, call run() once per value)")
        key = item.lstrip("+~").split("=", 1)[0].strip()
        if key == "hydra" or key.startswith(("hydra.", "hydra/")):
            raise ConfigError(f"overrides: `{item}`: Hydra settings do not apply to the Python API (no Hydra job "
                              f"runs); give run(..., run_dir=...) for the run directory")
        from ..targets import _is_allow_targets

        out.append(f"++{item.lstrip('+')}" if _is_allow_targets(item) else item)  # as on the command line
    return out


def config_dirs(config_dir: PathLike | Sequence[PathLike] | None) -> list[str]:
    """``config_dir`` (one folder or several) as absolute paths of existing directories."""
    if config_dir is None:
        return []
    items = [config_dir] if isinstance(config_dir, (str, os.PathLike)) else list(config_dir)
    dirs = []
    for item in items:
        if not isinstance(item, (str, os.PathLike)) or not Path(item).is_dir():
            raise ConfigError(f"config_dir: {item!r} is not a directory")
        dirs.append(os.path.abspath(item))
    return dirs


def check_group_options(overrides: list[str], search: list) -> None:
    """``group=option`` names an option file of that group, else one line with the choices."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from ..schema import suggest

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as err:
        raise ConfigError(f"overrides: {first_line(err)}") from None
    for override in parsed:
        folders = [Path(d) / override.key_or_group for d in search if (Path(d) / override.key_or_group).is_dir()]
        if not folders or override.is_delete():
            continue
        if override.is_sweep_override():
            raise ConfigError(f"{override.key_or_group}: `{override.input_line}` is a sweep, which is for the command "
                              f"line (snnrun -m); call run() once per option")
        value = override.value()
        choices = sorted({p.stem for folder in folders for p in folder.glob("*.yaml")})
        for name in value if isinstance(value, list) else [value]:
            if isinstance(name, str) and name not in choices:
                raise ConfigError(f"{override.key_or_group}: no option {name!r}{suggest(name, choices)}; choices: "
                                  f"{', '.join(choices)}")
