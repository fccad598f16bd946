"""``_target_`` in a config: refused unless the user allows its module; never an arbitrary call.

A config chosen by someone else must not run code. Hydra instantiates ``_target_`` nodes of
``hydra.callbacks`` (before the task starts) and Python's ``logging.config`` builds the
``class``/``()`` factories of ``hydra.job_logging``/``hydra.hydra_logging``; snnrun itself builds
components by registry name. So every such entry of the composed config is checked first:

- outside ``hydra``: a ``_target_`` must name a registered snnrun component class or a
  ``torch.optim`` / ``torch.optim.lr_scheduler`` class; the node is then built like the same node
  with ``name:`` (``{_target_: torch.optim.SGD, lr: 0.1}`` = ``{name: SGD, lr: 0.1}``);
- ``hydra.callbacks``: a Hydra ``Callback`` class from snnrun (``snnrun.sweep.SweepSummary``);
- ``hydra.launcher`` / ``hydra.sweeper``: Hydra plugin classes (``hydra_plugins``, Hydra's core
  plugins, ``optuna.samplers``); Hydra itself also refuses other launcher/sweeper classes;
- logging (``hydra.job_logging`` / ``hydra.hydra_logging``): a fixed list of ``logging`` handler
  and formatter classes, no ``()`` factories; with ``hydra.job.env_set`` and the output paths this
  is checked by :mod:`snnrun.hydra_policy` (called from :func:`check_targets`), whatever
  ``allow_targets`` says.

Anything else only when its module (or a parent package) is listed in ``allow_targets`` **on the
command line** (``snnrun allow_targets=[mypkg.models] ...``; :func:`trust_command_line`). A config
file, an experiment or a saved run's config cannot widen the policy it is checked against: a
composed ``allow_targets`` that the command line did not give is refused (:func:`allowed_modules`),
and a config file that sets it is refused as Hydra reads it (:mod:`snnrun.config_files`). Such a
module is imported (it may register components with snnrun's registries); under ``hydra`` its
objects are then used as Hydra uses them. A target is
resolved to the object it names and that object's own module is checked too, so
``snnrun.cli.os.system`` is refused like ``os.system``. The CLI runs the check inside Hydra's
config loading (:func:`install_hydra_guard`), before Hydra configures logging, instantiates
callbacks or creates the run directory; ``build_experiment`` and ``snnrun validate`` run it again.
When a job starts, the guard checks the job's final paths again and takes the run directory's
lock (:mod:`snnrun.runlock`) before Hydra creates the directory or writes anything into it.
"""

from __future__ import annotations

import inspect
import os
from typing import Any, Mapping

from omegaconf import DictConfig, ListConfig, OmegaConf

from . import hydra_guard
from .errors import ConfigError
from .hydra_guard import uninstall_hydra_guard, unknown_override
from .target_lookup import HINT, component_name, locate, resolve_value, walk, within

__all__ = ["BUILTIN", "PLUGINS", "HINT", "ENV", "command_line_modules", "trust_command_line", "allowed_modules",
           "check_saved_allow_targets", "check_targets", "resolve_targets", "component_name", "unknown_override",
           "install_hydra_guard", "uninstall_hydra_guard"]

BUILTIN = ("snnrun", "torch.optim")
PLUGINS = ("hydra_plugins", "hydra._internal.core_plugins", "optuna.samplers")
#: modules the command line of this process allowed (``allow_targets=[...]``); see trust_command_line
_command_line: set[str] = set()
#: how that allowance reaches the processes a launcher (joblib, submitit) runs sweep jobs in; a config
#: cannot set it (``hydra.job.env_set`` takes only ``hydra_policy.ALLOWED_ENV``)
ENV = "SNNRUN_COMMAND_LINE_ALLOW_TARGETS"


def _trusted() -> set[str]:
    return _command_line | {m for m in os.environ.get(ENV, "").split(",") if m}


def _is_allow_targets(arg: str) -> bool:
    return arg.lstrip("+").split("=", 1)[0].strip() == "allow_targets" and "=" in arg


def command_line_modules(args: list[str]) -> set[str]:
    """The module names of the ``allow_targets=[...]`` (``+``/``++``) overrides among ``args``, with
    Hydra's override grammar; a sweep (``allow_targets=[a],[b]``) gives all of its lists."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep
    from hydra.errors import HydraException

    modules: set[str] = set()
    for arg in args:
        if not _is_allow_targets(arg):
            continue
        try:
            value = OverridesParser.create().parse_override(arg).value()
        except HydraException:
            continue  # Hydra reports the malformed override itself
        for item in value.list if isinstance(value, ChoiceSweep) else [value]:
            if isinstance(item, list):
                modules.update(m for m in item if isinstance(m, str))
    return modules


def trust_command_line(args: list[str]) -> list[str]:
    """Record the modules that ``args`` (this process's command line) allow with ``allow_targets=[...]``
    and return ``args`` with that override written ``++allow_targets=...`` (added or replaced, so
    ``allow_targets=``, ``+allow_targets=`` and ``++allow_targets=`` all work)."""
    _command_line.update(command_line_modules(args))
    if _command_line:
        os.environ[ENV] = ",".join(sorted(_trusted()))
    return [f"++{arg.lstrip('+')}" if _is_allow_targets(arg) and not arg.startswith("-") else arg for arg in args]


def allowed_modules(cfg: Mapping | DictConfig) -> tuple[str, ...]:
    """The config's ``allow_targets`` list (module names), which the command line must have given:
    a list that a config file, an experiment or a saved run's config put there is refused."""
    value = cfg.get("allow_targets") if isinstance(cfg, (Mapping, DictConfig)) else None
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, (list, tuple, ListConfig)):
        raise ConfigError(f"allow_targets: expected a list of module names, got {value!r}")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item or any(not part.isidentifier() for part in item.split(".")):
            raise ConfigError(f"allow_targets[{i}]: expected a module name such as mypkg.models, got {item!r}")
    untrusted = [m for m in value if m not in _trusted()]
    if untrusted:
        shown = "[" + ",".join(value) + "]"
        raise ConfigError(f"allow_targets: {shown} was not given on the command line (a config file or a saved run's "
                          f"config sets it); allow_targets is honoured only on the command line: if you trust "
                          f"these modules, pass it there: snnrun allow_targets={shown} ...")
    return tuple(value)


def check_saved_allow_targets(path, args: list[str], command: str) -> None:
    """A saved run's config (``RUN/.hydra/config.yaml``) that sets ``allow_targets``: refused unless
    ``args`` (the command line of ``command``, e.g. ``snnrun reproduce RUN``) allow the same modules.
    Invalid YAML and duplicate keys are refused too (:mod:`snnrun.config_files`)."""
    from .config_files import check_config_file, display_path

    check_config_file(path, refuse_allow_targets=False)
    try:
        cfg = OmegaConf.load(path)
    except Exception:  # noqa: BLE001 - the caller reports a config it cannot read
        return
    value = OmegaConf.to_container(cfg, resolve=False).get("allow_targets") if isinstance(cfg, DictConfig) else None
    if value is None:
        return
    modules = [str(m) for m in value] if isinstance(value, list) else None  # an interpolation is refused too
    if modules is None or not set(modules) <= command_line_modules(list(args)):
        shown = "[" + ",".join(modules) + "]" if modules else "[MODULE]"
        raise ConfigError(f"{display_path(path)}: allow_targets {shown} is honoured only on the command line, never "
                          f"from a saved run's config; if you trust these modules, pass it there: {command} "
                          f"allow_targets={shown}")


def check_targets(cfg: DictConfig | Mapping) -> None:
    """Refuse every ``_target_`` / logging factory the policy above does not allow (ConfigError)."""
    user = allowed_modules(cfg)
    from hydra.experimental.callback import Callback

    for path, key, where in walk(cfg, ""):
        full = f"{path}.{key}" if path else key
        in_hydra = full.startswith("hydra.")
        if key == "_target_":
            target = resolve_value(where, full)
            if full.startswith(("hydra.launcher.", "hydra.sweeper.")):
                locate(target, full, PLUGINS + user, "Hydra launchers and sweepers take plugin classes")
            elif in_hydra:
                obj = locate(target, full, BUILTIN + user, "only snnrun's Hydra callbacks")
                if not within(obj.__module__, user) and not (inspect.isclass(obj) and issubclass(obj, Callback)):
                    raise ConfigError(f"{full}: `{target}` is not a Hydra callback class; {HINT}")
            else:
                obj = locate(target, full, BUILTIN + user,
                             "snnrun components, torch.optim and torch.optim.lr_scheduler classes")
                if component_name(obj) is None:
                    raise ConfigError(f"{full}: `{target}` is not a registered snnrun component or a torch.optim "
                                      f"class; snnrun builds components by name and calls nothing else")
    if isinstance(cfg, DictConfig):
        from .hydra_policy import check_hydra

        check_hydra(cfg)  # env_set, logging handlers and formatters, output paths (snnrun/hydra_policy.py)


def resolve_targets(cfg: DictConfig | dict) -> None:
    """In place: every allowed component node ``{_target_: X, ...}`` becomes ``{name: <X's name>, ...}``."""
    def visit(node: Any, path: str) -> None:
        if isinstance(node, (DictConfig, dict)):
            if "_target_" in node:
                if node.get("name") is not None:
                    raise ConfigError(f"{path}: give either `name` or `_target_`, not both")
                key = f"{path}._target_" if path else "_target_"
                target = resolve_value((node, "_target_"), key)
                name = component_name(locate(target, key, BUILTIN + allowed_modules(cfg), "snnrun components"))
                if name is None:
                    raise ConfigError(f"{key}: `{target}` is not a registered snnrun component or a torch.optim "
                                      f"class; snnrun builds components by name and calls nothing else")
                del node["_target_"]
                node["name"] = name
            for key in list(node.keys()):
                if key != "hydra":  # children unresolved: only `_target_` values are resolved
                    child = node._get_node(key) if isinstance(node, DictConfig) else node[key]
                    visit(child, f"{path}.{key}" if path else str(key))
        elif isinstance(node, (ListConfig, list)):
            for i in range(len(node)):
                visit(node._get_node(i) if isinstance(node, ListConfig) else node[i], f"{path}[{i}]")

    visit(cfg, "")


def install_hydra_guard(on_error, check_output: bool = True, multirun: bool = False) -> None:
    """Check every config Hydra composes (run, sweep, each sweep job) before Hydra uses it.

    With ``check_output``, the first composed config's output directory (``hydra.run.dir``, or
    ``hydra.sweep.dir`` for ``-m``) must be creatable (snnrun/faults.py). Refusals print one
    ``snnrun: error:`` line and exit with code 2 (``SystemExit`` passes through Hydra's error
    handler), before logging, callbacks or run directories exist: ``on_error(err)`` is the CLI's
    handler of an :class:`~snnrun.errors.SnnrunError` (library code never exits the process itself).
    """
    hydra_guard.install(on_error, check_targets, check_output, multirun)
