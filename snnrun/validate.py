"""``snnrun validate [overrides]``: check a composed config without building or running it.

The config is composed with Hydra's compose API from the package's config tree (plus
``--config-dir DIR``, searched first, and ``--config-name NAME``) and checked node by node:
top-level keys, ``trainer``/``logger`` schemas, every registry node (data, encoder, decoder,
learners, each population's neuron and each projection's synapses) with the registries'
``parse()`` (unknown keys with "did you mean", types, ranges), the network graph (populations
named by projections, output population, whole number of time steps), the task, and the
optimizer/scheduler keyword arguments against the ``torch.optim`` class signatures, and the
monitored metric (``trainer.monitor``: ``auto`` needs ``data.val_fraction > 0``, ``test/*`` needs
``trainer.select_on_test``; the data are not loaded, so ``val_fraction > 0`` stands for a
validation split). No data is
loaded and no module is built, except the network's shape check, which runs on torch's ``meta``
device (no memory, no computation) when the input shape is known from the config
(``data.input_shape`` or the input population's ``shape``).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf

from .errors import ConfigError, SnnrunError

PLACEHOLDER_CLASSES = 10  # stands in for `data.num_classes: null` (filled from the data at run time)


def compose(overrides: list[str], config_dir: str | None = None, config_name: str = "config") -> DictConfig:
    """Compose like ``snnrun`` does: the package configs, with ``config_dir`` searched first."""
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from .cli import CONFIG_DIR

    if config_dir is not None:
        overrides = [f"hydra.searchpath=[file://{Path(config_dir).resolve()}]", *overrides]
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException) as err:
        lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
        raise ConfigError(" ".join(lines[:2])) from None
    finally:
        GlobalHydra.instance().clear()


def _check_kwargs(cls, first: str, kwargs: dict, key: str) -> None:
    from .schema import suggest

    signature = inspect.signature(cls)
    names = [n for n in signature.parameters if n not in (first, "self")]
    for name in kwargs:
        if name not in signature.parameters:
            raise ConfigError(f"{key}.{name}: {cls.__name__} has no argument '{name}'{suggest(name, names)}; "
                              f"valid: {', '.join(names)}")
    missing = [n for n, p in signature.parameters.items() if p.default is inspect.Parameter.empty
               and n not in kwargs and n != first and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if missing:
        raise ConfigError(f"{key}: {cls.__name__} needs {', '.join(missing)}")


def check_optim(config: Mapping, uses_gradients: bool) -> None:
    from .optim import optimizer_classes, scheduler_classes
    from .schema import suggest

    if not uses_gradients:
        return
    node = dict(config.get("optimizer") or {"name": "Adam"})
    name = node.pop("name", None)
    classes = optimizer_classes()
    if name not in classes:
        raise ConfigError(f"optimizer.name: unknown optimizer '{name}'{suggest(str(name), classes)}; "
                          f"valid names (torch.optim): {', '.join(sorted(classes))}")
    _check_kwargs(classes[name], "params", node, "optimizer")
    sched = config.get("scheduler")
    if sched is None or sched.get("name") in (None, "none", "None"):
        return
    sched = dict(sched)
    name = sched.pop("name")
    interval = sched.pop("interval", "epoch")
    if interval not in ("epoch", "step"):
        raise ConfigError(f"scheduler.interval: '{interval}' is not one of epoch, step")
    classes = scheduler_classes()
    if name not in classes:
        raise ConfigError(f"scheduler.name: unknown scheduler '{name}'{suggest(str(name), classes)}; "
                          f"valid names (torch.optim.lr_scheduler): {', '.join(sorted(classes))}")
    _check_kwargs(classes[name], "optimizer", sched, "scheduler")


def check_network(config: Mapping, key: str = "network") -> None:
    """Parse the graph and every neuron/synapse node; shape-check on the meta device if possible."""
    from .network import NetworkParams, PopulationParams, ProjectionParams, _neuron_node, time_steps
    from .neurons import NEURONS
    from .schema import parse_params
    from .synapses import SYNAPSES

    node = config["network"]
    params = parse_params(NetworkParams, node, key)
    if not params.populations:
        raise ConfigError(f"{key}.populations: the network has no populations")
    time_steps(params, key)
    targets = set()
    for name, proj in params.projections.items():
        pkey = f"{key}.projections.{name}"
        if not isinstance(proj, Mapping):
            raise ConfigError(f"{pkey}: expected a mapping with from/to/synapse")
        proj = dict(proj)
        for old, new in (("from", "source"), ("to", "target")):
            if old in proj:
                proj[new] = proj.pop(old)
        p = parse_params(ProjectionParams, proj, pkey)
        for end, word in (("source", "from"), ("target", "to")):
            if getattr(p, end) not in params.populations:
                raise ConfigError(f"{pkey}.{word}: no population '{getattr(p, end)}'; "
                                  f"populations: {', '.join(params.populations)}")
        targets.add(p.target)
        specs = p.synapse if isinstance(p.synapse, (list, tuple)) else [p.synapse]
        for i, spec in enumerate(specs):
            SYNAPSES.parse(spec, f"{pkey}.synapse" + (f"[{i}]" if isinstance(p.synapse, (list, tuple)) else ""))
    for name, pop in params.populations.items():
        pkey = f"{key}.populations.{name}"
        pp = parse_params(PopulationParams, pop or {}, pkey)
        if name in targets:
            if pp.shape is None:
                raise ConfigError(f"{pkey}.shape: missing (only input populations take their shape from the data)")
            neuron = _neuron_node(pp.neuron, config.get("neuron"), f"{pkey}.neuron")
            NEURONS.parse(neuron, f"{pkey}.neuron" if pp.neuron is not None else "neuron")
    output = params.output or list(params.populations)[-1]
    for name in [output] if isinstance(output, str) else output:
        if name not in params.populations:
            raise ConfigError(f"{key}.output: no population '{name}'; populations: {', '.join(params.populations)}")


def check_shapes(config: Mapping) -> bool:
    """Build the network on the meta device when the input shape is known; False when skipped."""
    import torch

    from .encoders import ENCODERS
    from .network import NetworkParams, build_network, time_steps
    from .schema import parse_params
    from .surrogate import Heaviside

    input_shape = config["data"].get("input_shape")
    if input_shape is None:
        return False
    net = parse_params(NetworkParams, config["network"], "network")
    encoder_node = config.get("encoder") or {"name": "direct"}
    with torch.device("meta"):
        encoder = ENCODERS.build(encoder_node, "encoder", dt=net.dt, time_steps=time_steps(net))
        build_network(config["network"], config.get("neuron"), encoder.output_shape(tuple(input_shape)), Heaviside())
    return True


def validate_config(cfg: DictConfig) -> list[str]:
    """Raise a :class:`ConfigError` for the first problem; return notes on what was checked."""
    from .build import LoggerParams, TrainerParams, check_objectives, check_top_level, resolve_monitor, to_container
    from .data import DATASETS
    from .decoders import DECODERS
    from .encoders import ENCODERS
    from .learning.local import parse_learners
    from .schema import parse_params
    from .tasks import get_task

    cfg = cfg.copy()
    OmegaConf.set_struct(cfg, False)
    if "hydra" in cfg:
        del cfg["hydra"]
    check_top_level(cfg)
    from .targets import check_targets, resolve_targets
    check_targets(cfg)
    resolve_targets(cfg)
    seed = cfg.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"seed: expected an integer, got {seed!r}")
    task = cfg.get("task", "train")
    get_task(task)
    notes = []
    if cfg.data.get("num_classes") is None:
        cfg.data.num_classes = PLACEHOLDER_CLASSES  # only to resolve ${data.num_classes}; known after loading
        notes.append("data.num_classes is filled from the data at run time (not checked)")
    config = to_container(cfg)
    _, data_params = DATASETS.parse(config["data"], "data")
    if config.get("encoder") is not None:
        ENCODERS.parse(config["encoder"], "encoder")
    if config.get("decoder") is not None:
        DECODERS.parse(config["decoder"], "decoder")
    trainer = parse_params(TrainerParams, config.get("trainer"), "trainer")
    resolve_monitor(trainer, int(getattr(data_params, "val_fraction", 0) > 0), task)
    if task == "train":
        check_objectives(trainer)
    parse_params(LoggerParams, config.get("logger") or {}, "logger")
    specs = parse_learners(config)
    check_network(config)
    check_optim(config, any(s.cls.gradient for s in specs))
    try:
        if not check_shapes(config):
            notes.append("shapes not checked: the input shape comes from the data (set data.input_shape to check)")
    except SnnrunError:
        raise
    except Exception as err:  # noqa: BLE001 - a component that cannot be built on the meta device
        notes.append(f"shapes not checked on the meta device ({type(err).__name__}: {err})")
    return notes


USAGE = ("usage: snnrun validate [--config-dir DIR] [--config-name NAME] [key=value ...]\n\nCompose the config and "
         "check it against the schemas and component signatures without loading data, building or running.")


def main(args: list[str]) -> None:
    if args and args[0] in ("-h", "--help"):
        print(USAGE)
        return
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
