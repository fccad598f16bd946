"""The modules a caller allows and the configs the API takes: copied, their ``hydra`` section
dropped, and an ``allow_targets`` list honoured only when the caller passes the same modules."""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from omegaconf import DictConfig, OmegaConf, open_dict

from ..errors import ConfigError, SnnrunError
from .composing import first_line


def module_names(allow_targets: Sequence[str], key: str = "allow_targets") -> tuple[str, ...]:
    """``allow_targets`` checked to be module names, in order and without repeats."""
    if isinstance(allow_targets, (str, bytes)) or not isinstance(allow_targets, (Sequence, set, frozenset)):
        raise ConfigError(f"{key}: expected a list of module names such as ['mypkg.models'], got {allow_targets!r}")
    for item in allow_targets:
        if not isinstance(item, str) or not item or any(not p.isidentifier() for p in item.split(".")):
            raise ConfigError(f"{key}: expected module names such as mypkg.models, got {item!r}")
    return tuple(dict.fromkeys(allow_targets))


@contextlib.contextmanager
def trusting(modules: tuple[str, ...]) -> Iterator[None]:
    """Within the block, ``modules`` count as allowed by the caller (what ``snnrun allow_targets=[...]``
    does for the command line; :mod:`snnrun.targets`); afterwards as before."""
    from .. import targets

    added = [m for m in modules if m not in targets._command_line]
    targets._command_line.update(added)
    try:
        yield
    finally:
        targets._command_line.difference_update(added)


def as_config(config: DictConfig | Mapping[str, Any], key: str = "config") -> DictConfig:
    """A private DictConfig copy of ``config`` without a ``hydra`` section (it would not apply)."""
    if isinstance(config, DictConfig):
        cfg = copy.deepcopy(config)
    elif isinstance(config, Mapping):
        try:
            cfg = OmegaConf.create(copy.deepcopy(dict(config)))
        except Exception as err:  # noqa: BLE001 - OmegaConf's errors for values it cannot hold
            raise ConfigError(f"{key}: {first_line(err)}") from None
    else:
        raise ConfigError(f"{key}: expected a config (DictConfig or dict) or a list of overrides, got "
                          f"{type(config).__name__}")
    if "hydra" in cfg:
        with open_dict(cfg):
            del cfg["hydra"]
    return cfg


def trust_config(cfg: DictConfig, modules: tuple[str, ...], where: str, how: str) -> None:
    """An ``allow_targets`` list in ``cfg`` must be covered by ``modules`` (the caller's argument);
    ``cfg.allow_targets`` becomes ``modules`` (so the policy checks see them)."""
    value = OmegaConf.to_container(cfg, resolve=False).get("allow_targets")
    if value is not None:
        listed = [str(m) for m in value] if isinstance(value, list) else None
        if listed is None or not set(listed) <= set(modules):
            shown = repr(listed) if listed else "['MODULE']"
            raise ConfigError(f"{where}allow_targets: {value!r} is honoured only from the caller, never from a config; "
                              f"if you trust these modules, pass {how}(..., allow_targets={shown})")
    with open_dict(cfg):
        if modules:
            cfg.allow_targets = list(modules)
        elif "allow_targets" in cfg:
            del cfg["allow_targets"]


def saved_config(path: Path, modules: tuple[str, ...]) -> DictConfig:
    """A run's saved config: strict YAML, a mapping; its ``hydra`` section dropped (with a warning,
    as ``snnrun resume`` does) and its ``allow_targets`` honoured only if the caller allows them."""
    from ..config_files import check_config_file, display_path
    from ..hydra_policy import drop_saved_hydra

    check_config_file(path, refuse_allow_targets=False)  # invalid YAML, duplicate keys: one line naming them
    try:
        cfg = OmegaConf.load(path)
    except Exception as err:  # noqa: BLE001 - YAML and OmegaConf errors of several types
        raise SnnrunError(f"load_run: cannot read {display_path(path)} ({first_line(err)})") from None
    if not isinstance(cfg, DictConfig) or not len(cfg):
        raise SnnrunError(f"load_run: {display_path(path)} is not a config mapping")
    cfg = drop_saved_hydra(cfg, path)
    trust_config(cfg, modules, f"{display_path(path)}: ", "load_run")
    return cfg
