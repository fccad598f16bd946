"""The Python API: compose, run, load and build experiments without the command line.

::

    import snnrun

    cfg = snnrun.compose(["neuron=alif", "trainer.epochs=5"])  # the config `snnrun neuron=alif ...` runs
    result = snnrun.run(cfg)                                    # a run directory, as the CLI writes it
    loaded = snnrun.load_run(result.run_dir)                    # best.pt, checksum verified
    scores = loaded.model(loaded.data().x_test[:8])             # [8, classes]: a plain torch.nn.Module

The same rules as on the command line apply: a config group is chosen by name, user mistakes
raise :class:`~snnrun.errors.SnnrunError` with one line naming the key, and a config never runs
code: a ``_target_`` outside snnrun's components and ``torch.optim`` is refused unless its module
is passed as the ``allow_targets=`` argument (an ``allow_targets`` list inside a config, an
override or a saved run is never trusted by itself). Checkpoints are loaded only when they match
their ``.sha256`` file and never execute code (``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence, Union

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from .errors import ConfigError, SnnrunError

if TYPE_CHECKING:  # torch is imported on first use: composing a config does not need it
    import torch

    from .data import DataSplits
    from .model import SpikingModel
    from .network import Network

__all__ = ["compose", "run", "load_run", "build_network", "build_model", "Result", "LoadedRun", "SpikingModel",
           "read_metrics"]

PathLike = Union[str, "os.PathLike[str]"]
#: the checkpoints of a run directory ``load_run`` can load by name
CHECKPOINTS = ("best", "last", "prev")
#: files and folders a run writes before its task starts; a run that failed with only these is removed
_SETUP_FILES = {".hydra", ".lock", "snnrun.log"}
#: Hydra's default job-log format (``snnrun.log`` of a CLI run)
_LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


def __getattr__(name: str) -> Any:
    if name == "SpikingModel":  # the model class lives with torch in snnrun.model
        from .model import SpikingModel

        return SpikingModel
    raise AttributeError(f"module 'snnrun.api' has no attribute {name!r}")


# --- results ----------------------------------------------------------------------------------
@dataclass
class LoadedRun:
    """A trained run: ``model`` (a :class:`SpikingModel` in eval mode with the checkpoint's
    weights), its ``config``, ``metrics`` (one dict per row of ``metrics.jsonl``/``.csv``),
    ``summary`` (``summary.json``; empty if the run did not finish) and the ``checkpoint`` file."""

    run_dir: Path
    model: SpikingModel
    config: DictConfig
    metrics: list[dict[str, Any]]
    summary: dict[str, Any]
    checkpoint: Path
    epoch: int | None = None
    _prepared: Any = field(default=None, repr=False)
    _data: Any = field(default=None, repr=False)

    @property
    def network(self) -> Network:
        """The trained network alone (encoded input ``[T, B, *shape]`` -> spikes)."""
        return self.model.network

    def data(self) -> DataSplits:
        """The run's dataset as its config loads it: ``x_train``, ``y_train``, ``x_val``, ``y_val``,
        ``x_test``, ``y_test`` (the same splits and scaling the run had), loaded once."""
        if self._data is None:
            from .build import load_data

            self._data = load_data(self._prepared)[0]
        return self._data

    def __repr__(self) -> str:
        return (f"LoadedRun(run_dir={str(self.run_dir)!r}, checkpoint={self.checkpoint.name!r}, epoch={self.epoch}, "
                f"status={self.summary.get('status')!r})")


@dataclass
class Result:
    """What :func:`run` returns: the ``run_dir``, the ``summary`` (``summary.json``: ``status``,
    ``final`` and ``best`` metrics, ...) and the ``metrics`` rows; :meth:`load` loads the model."""

    run_dir: Path
    summary: dict[str, Any]
    metrics: list[dict[str, Any]]
    allow_targets: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        """``completed``, ``stopped`` (``trainer.stop_after``), ``interrupted`` (Ctrl-C) or the task's."""
        return str(self.summary.get("status", "done"))

    def load(self, checkpoint: str = "best", map_location: Any = "cpu", *, trust_unverified: bool = False
             ) -> LoadedRun:
        """:func:`load_run` of this run (with the modules this run was allowed)."""
        return load_run(self.run_dir, checkpoint, map_location, trust_unverified=trust_unverified,
                        allow_targets=self.allow_targets)

    def __repr__(self) -> str:
        final = self.summary.get("final") or {}
        shown = ", ".join(f"{k}={v:.4f}" for k, v in final.items() if k.endswith("accuracy") and isinstance(v, float))
        return f"Result(run_dir={str(self.run_dir)!r}, status={self.status!r}{', ' + shown if shown else ''})"


# --- compose ----------------------------------------------------------------------------------
def compose(overrides: Sequence[str] = (), config_dir: PathLike | Sequence[PathLike] | None = None) -> DictConfig:
    """The config that ``snnrun OVERRIDES`` runs (without Hydra's own ``hydra`` section).

    ``overrides``: ``key=value`` and ``group=option`` strings as on the command line
    (``["neuron=alif", "trainer.epochs=5"]``). ``config_dir``: folder(s) of your own configs
    searched before the packaged ones, as ``snnrun --config-dir DIR`` (e.g. ``DIR/experiment/x.yaml``
    for ``experiment=x``). Hydra settings (``hydra.*``) and options (``-m``, ``--cfg``) are
    command-line matters and refused. Hydra is initialised only while composing.
    """
    overrides = _overrides(overrides)
    dirs = _config_dirs(config_dir)
    from .configs import CONFIG_DIR
    from .hydra_policy import check_group_overrides

    search = [CONFIG_DIR, *dirs]
    check_group_overrides(overrides, search)  # `trainer=[1,2]`: one line with the group's choices
    _check_group_options(overrides, search)  # `neuron=nope`: likewise
    from .config_files import install_file_check

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
        from .targets import unknown_override

        raise ConfigError(unknown_override(err) or f"compose: {_first_line(err)}") from None
    except HydraException as err:
        raise ConfigError(f"compose: {_first_line(err)}") from None
    finally:
        restore_gh_from_backup(backup)  # Hydra's global state as it was (not initialised, usually)


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _overrides(overrides: Sequence[str]) -> list[str]:
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
        from .targets import _is_allow_targets

        out.append(f"++{item.lstrip('+')}" if _is_allow_targets(item) else item)  # as on the command line
    return out


def _config_dirs(config_dir: PathLike | Sequence[PathLike] | None) -> list[str]:
    if config_dir is None:
        return []
    items = [config_dir] if isinstance(config_dir, (str, os.PathLike)) else list(config_dir)
    dirs = []
    for item in items:
        if not isinstance(item, (str, os.PathLike)) or not Path(item).is_dir():
            raise ConfigError(f"config_dir: {item!r} is not a directory")
        dirs.append(os.path.abspath(item))
    return dirs


def _check_group_options(overrides: list[str], search: list) -> None:
    """``group=option`` names an option file of that group, else one line with the choices."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from .schema import suggest

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as err:
        raise ConfigError(f"overrides: {_first_line(err)}") from None
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


# --- configs and trust --------------------------------------------------------------------------
def _module_names(allow_targets: Sequence[str], key: str = "allow_targets") -> tuple[str, ...]:
    if isinstance(allow_targets, (str, bytes)) or not isinstance(allow_targets, (Sequence, set, frozenset)):
        raise ConfigError(f"{key}: expected a list of module names such as ['mypkg.models'], got {allow_targets!r}")
    for item in allow_targets:
        if not isinstance(item, str) or not item or any(not p.isidentifier() for p in item.split(".")):
            raise ConfigError(f"{key}: expected module names such as mypkg.models, got {item!r}")
    return tuple(dict.fromkeys(allow_targets))


@contextlib.contextmanager
def _trusting(modules: tuple[str, ...]) -> Iterator[None]:
    """Within the block, ``modules`` count as allowed by the caller (what ``snnrun allow_targets=[...]``
    does for the command line; :mod:`snnrun.targets`); afterwards as before."""
    from . import targets

    added = [m for m in modules if m not in targets._command_line]
    targets._command_line.update(added)
    try:
        yield
    finally:
        targets._command_line.difference_update(added)


def _as_config(config: DictConfig | Mapping[str, Any], key: str = "config") -> DictConfig:
    """A private DictConfig copy of ``config`` without a ``hydra`` section (it would not apply)."""
    if isinstance(config, DictConfig):
        cfg = copy.deepcopy(config)
    elif isinstance(config, Mapping):
        try:
            cfg = OmegaConf.create(copy.deepcopy(dict(config)))
        except Exception as err:  # noqa: BLE001 - OmegaConf's errors for values it cannot hold
            raise ConfigError(f"{key}: {_first_line(err)}") from None
    else:
        raise ConfigError(f"{key}: expected a config (DictConfig or dict) or a list of overrides, got "
                          f"{type(config).__name__}")
    if "hydra" in cfg:
        with open_dict(cfg):
            del cfg["hydra"]
    return cfg


def _trust_config(cfg: DictConfig, modules: tuple[str, ...], where: str, how: str) -> None:
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


@contextlib.contextmanager
def _own_rng() -> Iterator[None]:
    """The caller's global RNG states (torch, CUDA if in use, ``random``) are restored after the block."""
    import random

    import torch

    state = random.getstate()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(state)


def _device(device: Any) -> torch.device:
    from .device import resolve_device

    return resolve_device(str(device))  # a torch.device too


# --- run --------------------------------------------------------------------------------------
def run(config: DictConfig | Mapping[str, Any] | Sequence[str], run_dir: PathLike | None = None, *,
        allow_targets: Sequence[str] = (), verbose: bool = True) -> Result:
    """Run an experiment: its task (``train`` by default) into ``run_dir``, as ``snnrun`` does.

    ``config``: a config from :func:`compose` (or a dict of the same shape), or a list of
    overrides to compose. ``run_dir``: a new directory (default: ``outputs/<date>/<time>`` under
    the working directory, as the CLI's); one that already holds a run is refused. It receives
    what a CLI run writes (``.hydra/config.yaml`` so ``snnrun resume``, ``reproduce`` and
    ``compare`` work on it, ``.hydra/overrides.yaml`` when ``config`` is a list of overrides,
    ``snnrun.log``, metrics, checkpoints, ``summary.json``); the run directory's lock is held
    meanwhile. ``allow_targets``: modules whose ``_target_`` classes the config may use (as
    ``snnrun allow_targets=[...]``). ``verbose``: also print the log (epoch lines) to stdout.
    Ctrl-C stops at the next batch: the result then has status ``interrupted`` and the run
    resumes with ``snnrun resume RUN_DIR``.
    """
    modules = _module_names(allow_targets)
    overrides = None
    if isinstance(config, Sequence) and not isinstance(config, (str, bytes, ListConfig)):
        overrides = list(config)
        cfg = compose(overrides)
    else:
        cfg = _as_config(config)
    _trust_config(cfg, modules, "", "run")
    from .distributed import is_main
    from .tasks import execute, get_task

    with _trusting(modules):
        from .build import prepare

        prepare(cfg)  # top-level keys, `_target_` policy and seed, before anything is written
        get_task(cfg.get("task", "train"))
        main = is_main()  # torchrun: only rank 0 writes the run directory (snnrun/distributed.py)
        run_dir = Path(os.path.abspath(run_dir if run_dir is not None else _fresh_run_dir()))
        existed = run_dir.exists()
        from .runlock import lock_run_dir, unlock_run_dir

        taken = main and lock_run_dir(run_dir)  # one writer per run directory
        try:
            if main:
                _check_new(run_dir)
                _write_hydra_dir(run_dir, cfg, overrides)
            try:
                with _run_log(run_dir if main else None, verbose):
                    summary = execute(cfg, run_dir)
            except SnnrunError:
                if main and not existed:
                    _remove_if_unstarted(run_dir)
                raise
        finally:
            if taken:
                unlock_run_dir(run_dir)
    run_dir = Path(summary.get("run_dir") or run_dir)
    return Result(run_dir, summary, read_metrics(run_dir), modules)


def _fresh_run_dir() -> Path:
    """``outputs/<date>/<time with microseconds>``, like the CLI's ``hydra.run.dir``."""
    while True:
        now = datetime.now()
        path = Path("outputs") / now.strftime("%Y-%m-%d") / now.strftime("%H-%M-%S-%f")
        if not path.exists():
            return path


def _check_new(run_dir: Path) -> None:
    held = [n for n in (".hydra/config.yaml", "summary.json", "metrics.csv", "metrics.jsonl", "checkpoints")
            if (run_dir / n).exists()]
    if held:
        raise SnnrunError(f"run_dir: {run_dir} already holds a run ({held[0]}); give a new directory (or none for "
                          f"a fresh one under outputs/), or continue that run with: snnrun resume {run_dir}")


def _write_hydra_dir(run_dir: Path, cfg: DictConfig, overrides: list[str] | None) -> None:
    """``.hydra/config.yaml`` (the config as composed, interpolations kept, as Hydra saves it) and,
    when known, ``.hydra/overrides.yaml``."""
    from .faults import write_error, write_text_atomic

    folder = run_dir / ".hydra"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_error(folder, err) from None
    write_text_atomic(folder / "config.yaml", OmegaConf.to_yaml(cfg))
    if overrides is not None:
        write_text_atomic(folder / "overrides.yaml", OmegaConf.to_yaml(OmegaConf.create(list(overrides))))


def _remove_if_unstarted(run_dir: Path) -> None:
    """A run directory this call created whose task failed before writing anything of its own."""
    with contextlib.suppress(OSError):
        if {p.name for p in run_dir.iterdir()} <= _SETUP_FILES:
            shutil.rmtree(run_dir)


@contextlib.contextmanager
def _run_log(run_dir: Path | None, verbose: bool) -> Iterator[None]:
    """snnrun's log into ``run_dir/snnrun.log`` (and stdout when ``verbose``) for the block, at INFO."""
    logger = logging.getLogger("snnrun")
    handlers: list[logging.Handler] = []
    if run_dir is not None:
        handlers.append(logging.FileHandler(run_dir / "snnrun.log"))
        handlers[-1].setFormatter(logging.Formatter(_LOG_FORMAT))
    if verbose:
        handlers.append(logging.StreamHandler(sys.stdout))
        handlers[-1].setFormatter(logging.Formatter("[snnrun] %(message)s"))
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    for handler in handlers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(level)


def read_metrics(run_dir: PathLike) -> list[dict[str, Any]]:
    """A run's metric rows: ``metrics.jsonl`` (else ``metrics.csv``, numbers parsed; blank -> None),
    one dict per epoch and split; empty when the run wrote neither."""
    run_dir = Path(run_dir)
    jsonl, table = run_dir / "metrics.jsonl", run_dir / "metrics.csv"
    if jsonl.is_file():
        rows = []
        for line in jsonl.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError):  # a line cut short by a killed run
                if line.strip():
                    rows.append(json.loads(line))
        return rows
    if table.is_file():
        with open(table, newline="", encoding="utf-8") as f:
            return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]
    return []


def _number(text: str | None) -> Any:
    if text is None or text == "":
        return None
    for kind in (int, float):
        with contextlib.suppress(ValueError):
            return kind(text)
    return text


def _read_summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "summary.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SnnrunError(f"{path}: not readable JSON ({_first_line(err)})") from None


# --- build ------------------------------------------------------------------------------------
def build_model(config: DictConfig | Mapping[str, Any], device: Any = "cpu", *,
                input_shape: Sequence[int] | None = None, num_classes: int | None = None,
                allow_targets: Sequence[str] = ()) -> SpikingModel:
    """The encoder, network and decoder of an experiment config (as :func:`compose` returns, or a
    dict of the same shape) as one :class:`SpikingModel` on ``device``, with fresh weights.

    The samples' shape and class count come from ``input_shape`` / ``num_classes``, else from
    ``data.input_shape`` / ``data.num_classes`` of the config, else from loading the dataset.
    Weights are drawn as a run draws them, from ``config.seed``; the caller's random state is
    left as it was. ``allow_targets`` as in :func:`run`.
    """
    modules = _module_names(allow_targets)
    cfg = _as_config(config)
    _trust_config(cfg, modules, "", "build_model")
    with _trusting(modules):
        return _build(cfg, _device(device), input_shape, num_classes)[0]


def build_network(config: DictConfig | Mapping[str, Any], device: Any = "cpu", *,
                  neuron: str | Mapping[str, Any] = "lif", surrogate: str | Mapping[str, Any] | None = None,
                  input_shape: Sequence[int] | None = None, num_classes: int | None = None,
                  allow_targets: Sequence[str] = ()) -> Network:
    """A :class:`snnrun.network.Network` (a ``torch.nn.Module``) from a config, with fresh weights.

    ``config`` is either a whole experiment config (it has a ``network`` key: the network of
    :func:`build_model`, built as a run builds it) or the ``network`` section alone as a dict
    (``{"dt": 1.0, "duration": 25.0, "populations": {...}, "projections": {...}}``, the format of
    ``configs/network/*.yaml`` with plain numbers instead of ``${...}``). For a section,
    ``neuron`` is the neuron of populations that name none: an option of the ``neuron`` group
    (``"lif"``, ``"alif"``, ...) or a spec such as ``{"name": "lif", "tau_m": 10.0}``;
    ``surrogate`` the spike function's surrogate gradient (``"atan"`` or ``{"name": "atan",
    "alpha": 2.0}``; default none: spikes pass no gradient); ``input_shape`` gives input
    populations without a ``shape`` theirs and ``num_classes`` the size of a single output population
    without one (``shape: null``, as the shipped networks leave it for the decoder); weights are drawn from torch's global RNG. For a whole
    config these come from the config (``input_shape``/``num_classes`` as in :func:`build_model`).
    The network maps encoded input ``[T, B, *shape]`` to the spikes of every population
    (``net(x).spikes["out"]``; call ``net.reset()`` between batches).
    """
    modules = _module_names(allow_targets)
    if isinstance(config, (DictConfig, Mapping)) and "network" in config:
        return build_model(config, device, input_shape=input_shape, num_classes=num_classes,
                           allow_targets=modules).network
    section = _as_config(config, "config")
    from .build import to_container
    from .build import network_from_node as build

    node = {"network": to_container(OmegaConf.create({"network": section}))["network"],  # errors name network.*
            "neuron": _neuron_spec(neuron)}
    if modules:
        node["allow_targets"] = list(modules)
    with _trusting(modules):
        from .targets import check_targets, resolve_targets

        check_targets(node)  # `_target_` outside the registries is refused, as in a run
        resolve_targets(node)
        _check_input_shape(node["network"], input_shape)
        shape = tuple(int(s) for s in input_shape) if input_shape is not None else None
        spike_fn = None
        if surrogate is not None:
            from .surrogate import build_surrogate

            spike_fn = build_surrogate({"name": surrogate} if isinstance(surrogate, str) else surrogate, "surrogate")
        return build(node["network"], node["neuron"], shape, spike_fn, output_size=num_classes).to(_device(device))


def _neuron_spec(neuron: str | Mapping[str, Any]) -> dict:
    if isinstance(neuron, Mapping):
        return dict(neuron)
    from .configs import CONFIG_DIR

    choices = sorted(p.stem for p in (CONFIG_DIR / "neuron").glob("*.yaml"))
    if not isinstance(neuron, str) or neuron not in choices:
        from .schema import suggest

        raise ConfigError(f"neuron: no option {neuron!r}{suggest(str(neuron), choices)}; choices: {', '.join(choices)}"
                          f" (or a spec such as {{'name': 'lif', 'tau_m': 10.0}})")
    return OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "neuron" / f"{neuron}.yaml"), resolve=True)


def _check_input_shape(node: Mapping, input_shape: Sequence[int] | None) -> None:
    if input_shape is not None:
        if isinstance(input_shape, (str, bytes)) or not all(isinstance(s, int) and s > 0 for s in input_shape):
            raise ConfigError(f"input_shape: expected positive integers such as [64], got {input_shape!r}")
        return
    populations = node.get("populations") or {}
    targets = {str((p or {}).get("to", (p or {}).get("target"))) for p in (node.get("projections") or {}).values()
               if isinstance(p, Mapping)}
    for name, pop in populations.items() if isinstance(populations, Mapping) else ():
        if name not in targets and (not isinstance(pop, Mapping) or pop.get("shape") is None):
            raise ConfigError(f"input_shape: input population '{name}' has no shape (network.populations.{name}.shape"
                              f" is null: taken from the data); pass input_shape=[...] or set its shape")


def _build(cfg: DictConfig, device: torch.device, input_shape: Sequence[int] | None, num_classes: int | None
           ) -> tuple[SpikingModel, DictConfig, Any]:
    """(model, the prepared config with the data's shape filled in, the data splits if loaded), built
    under ``cfg.seed`` without touching the caller's random state."""
    from .build import build_components, load_data, prepare, to_container

    with _own_rng():
        prepared, _ = prepare(cfg)  # checks, `_target_` nodes resolved, seeded as a run is
        data = None
        shape = input_shape if input_shape is not None else OmegaConf.select(prepared, "data.input_shape")
        classes = num_classes if num_classes is not None else OmegaConf.select(prepared, "data.num_classes")
        if shape is None or classes is None:  # as a run does: from the data
            data, _ = load_data(prepared)
            shape = data.input_shape if shape is None else shape
            classes = data.num_classes if classes is None else classes
        with open_dict(prepared):
            prepared.data.input_shape = [int(s) for s in shape]
            prepared.data.num_classes = int(classes)
        config = to_container(prepared)
        encoder, network, decoder, _ = build_components(config, tuple(int(s) for s in shape), int(classes))
    from .model import SpikingModel

    model = SpikingModel(encoder, network, decoder, shape, int(classes)).to(device)
    return model, prepared, data


# --- load -------------------------------------------------------------------------------------
def load_run(path: PathLike, checkpoint: str = "best", map_location: Any = "cpu", *,
             trust_unverified: bool = False, allow_targets: Sequence[str] = ()) -> LoadedRun:
    """Load a run directory's trained model, config, metrics and summary.

    ``path``: a run directory (or one of its ``checkpoints/*.pt`` files). ``checkpoint``:
    ``best`` (selected on ``trainer.monitor``; runs of tasks other than ``train`` may only have
    ``last``), ``last`` or ``prev``. ``map_location``: the device the model is loaded onto. The
    checkpoint must match its ``.sha256`` file, as for ``snnrun resume``; one without a valid
    checksum file is refused unless ``trust_unverified``, and one that differs from its checksum
    always. Loading never executes code (plain tensors only) and needs no Hydra. The model is built
    from the run's ``.hydra/config.yaml`` (the dataset is loaded for the samples' shape unless the
    config states ``data.input_shape`` and ``data.num_classes``); ``allow_targets`` as in :func:`run`
    (a saved config's own ``allow_targets`` is not trusted).
    """
    from . import checkpoint as checkpoints

    modules = _module_names(allow_targets)
    path = Path(path)
    if path.suffix == ".pt" and path.is_file():
        file, run_dir = path, path.parent.parent
    else:
        if checkpoint not in CHECKPOINTS:
            raise ConfigError(f"checkpoint: expected one of {', '.join(CHECKPOINTS)}, got {checkpoint!r}")
        run_dir, file = path, path / "checkpoints" / f"{checkpoint}.pt"
    saved = run_dir / ".hydra" / "config.yaml"
    if not saved.is_file():
        raise SnnrunError(f"load_run: {run_dir} is not a run directory: {saved} is missing")
    if not file.is_file():
        have = sorted(p.stem for p in (run_dir / "checkpoints").glob("*.pt"))
        raise SnnrunError(f"load_run: {file} not found; this run has "
                          + (f"checkpoints {', '.join(have)} (checkpoint='{have[0]}')" if have else "no checkpoints"))
    cfg = _saved_config(saved, modules)
    try:
        state = checkpoints.load(file, map_location=map_location, require_checksum=not trust_unverified)
    except checkpoints.UnverifiedCheckpoint as err:
        raise checkpoints.UnverifiedCheckpoint(f"load_run: {err}; if you trust this file, pass trust_unverified=True "
                                               f"(its bytes are then not checked)", err.why) from None
    if not isinstance(state.get("model"), Mapping):
        raise SnnrunError(f"load_run: {file} holds no model weights")
    import torch

    device = _device(map_location) if isinstance(map_location, (str, torch.device)) else torch.device("cpu")
    with _trusting(modules):
        model, prepared, data = _build(cfg, device, None, None)
    checkpoints.check_fits(model.network.state_dict(), state["model"], "the model", file)
    checkpoints.check_fits(model.decoder.state_dict(), state.get("decoder") or {}, "the decoder", file)
    model.network.load_state_dict(state["model"])
    model.decoder.load_state_dict(state.get("decoder") or {})
    model.eval()
    epoch = state.get("epoch")
    return LoadedRun(run_dir, model, cfg, read_metrics(run_dir), _read_summary(run_dir), file,
                     int(epoch) if isinstance(epoch, int) else None, prepared, data)


def _saved_config(path: Path, modules: tuple[str, ...]) -> DictConfig:
    """A run's saved config: strict YAML, a mapping; its ``hydra`` section dropped (with a warning,
    as ``snnrun resume`` does) and its ``allow_targets`` honoured only if the caller allows them."""
    from .config_files import check_config_file, display_path
    from .hydra_policy import drop_saved_hydra

    check_config_file(path, refuse_allow_targets=False)  # invalid YAML, duplicate keys: one line naming them
    try:
        cfg = OmegaConf.load(path)
    except Exception as err:  # noqa: BLE001 - YAML and OmegaConf errors of several types
        raise SnnrunError(f"load_run: cannot read {display_path(path)} ({_first_line(err)})") from None
    if not isinstance(cfg, DictConfig) or not len(cfg):
        raise SnnrunError(f"load_run: {display_path(path)} is not a config mapping")
    cfg = drop_saved_hydra(cfg, path)
    _trust_config(cfg, modules, f"{display_path(path)}: ", "load_run")
    return cfg
