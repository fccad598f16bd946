"""The experiment spec: a composed config parsed once into typed parts.

:func:`parse_spec` is the only reader of the raw config tree. It checks the top-level keys and the
``_target_`` policy, resolves interpolations, and parses every group into its schema: the data set,
encoder, network (populations, neuron models, synapse stages), decoder, learners, trainer, logger,
monitors and plots. Everything after it (:func:`snnrun.build.build_experiment`, the runner, the
monitors, the activity check, the tasks) takes the resulting :class:`ExperimentSpec`. Nothing here
builds a module, loads data or draws a random number.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import ConfigError
from .registry import Component
from .schema import param, parse_params, suggest
from .topology import NetworkSpec

TOP_LEVEL_KEYS = ("data", "encoder", "network", "neuron", "decoder", "learner", "learners", "optimizer", "scheduler",
                  "logger", "trainer", "seed", "device", "name", "tags", "hydra", "task", "monitors", "plots",
                  "allow_targets")
#: groups that must be mappings when present, and the ones every experiment has
GROUPS = ("data", "encoder", "network", "neuron", "decoder", "learner", "learners", "optimizer", "scheduler",
          "logger", "trainer", "monitors", "plots")
REQUIRED = ("data", "network", "learner", "trainer")


@dataclass
class TrainerParams:
    """The training loop: epochs, evaluation and the metric that selects checkpoints/best.pt."""

    epochs: int = param(30, ge=1, help="passes over the training set")
    progress: bool | None = param(None, help="tqdm bars: true, false, or null (auto: only on a terminal)")
    monitor: str = param("auto", help="metric that selects best.pt, drives ReduceLROnPlateau and is a sweep's "
                                      "objective; auto: val/accuracy (needs data.val_fraction > 0). test/* metrics "
                                      "are refused unless select_on_test is true")
    mode: str = param("max", choices=("max", "min"), help="whether the monitored metric should grow or shrink")
    limit_train_batches: int | None = param(None, help="stop each training epoch after N batches")
    limit_test_batches: int | None = param(None, help="evaluate on at most N batches")
    stop_after: int | None = param(None, help="stop cleanly after N epochs in this invocation (resume later)")
    eval_every: int = param(1, ge=1, help="evaluate every N epochs (and after the last)")
    detect_anomaly: bool = param(False, help="torch.autograd anomaly mode: name the backward op that made NaN (slow)")
    precision: str = param("fp32", choices=("fp32", "bf16"),
                           help="bf16: autocast the forward (synaptic products in bfloat16, neuron state in float32)")
    select_on_test: bool = param(False, help="allow a test/* monitor: best.pt and sweeps then select on the test "
                                             "set, which makes its scores optimistic (no longer held-out estimates)")
    activity_check: str = param("warn", choices=("warn", "stop", "off"),
                                help="silent or saturated populations after the first training batches and every "
                                     "epoch: warn (once, naming the config keys to try), stop (end the run, exit "
                                     "code 2; checkpoints kept) or off (snnrun/activity.py)")
    threads: int | str = param("auto", help="intra-op CPU threads: auto (from the free cores, a parallel launcher's "
                                            "share and the network's size: snnrun/threads.py) or a number")


@dataclass
class LoggerParams:
    """Metric sinks written to the run directory."""

    sinks: list = param(["csv", "jsonl"], help="metric sinks: csv, jsonl, tensorboard, mlflow, wandb")


@dataclass(frozen=True)
class ExperimentSpec:
    """Every group of an experiment's config, typed. ``config`` is the resolved config (plain
    containers) it was parsed from, kept for the run's records; ``sections`` holds the top-level
    keys a task owns (``clamp``, ``protocol``, ``diehl_cook``, ``xor``), each parsed with the schema
    the task declares (its module's ``SECTIONS``)."""

    config: dict
    task: str
    seed: int
    device: Any
    data: Component
    encoder: Component
    network: NetworkSpec
    neuron: Component | None
    decoder: Component
    learners: tuple  # of snnrun.learning.local.LearnerSpec, `learner` first
    optimizer: dict
    scheduler: dict | None
    trainer: TrainerParams
    logger: LoggerParams
    monitors: Any  # snnrun.monitors.MonitorsParams
    spike_metrics: Any  # snnrun.spike_metrics.SpikeMetricsParams
    probes: dict  # name -> snnrun.monitors.ProbeParams
    plots: Any  # snnrun.plots.PlotsParams
    sections: dict = field(default_factory=dict)


def to_container(cfg: DictConfig | Mapping) -> dict:
    """Resolve interpolations, turning OmegaConf errors into one-line config errors."""
    if not isinstance(cfg, DictConfig):
        return dict(cfg)
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", "") or ""
        msg = str(err).splitlines()[0]
        raise ConfigError(f"{key}: {msg}" if key else msg) from None


def check_top_level(cfg: Mapping) -> None:
    from .tasks import task_config_keys

    valid = TOP_LEVEL_KEYS + task_config_keys()
    for key in cfg:
        if key not in valid:
            raise ConfigError(f"{key}: unknown top-level key{suggest(key, valid)}; "
                              f"valid keys: {', '.join(k for k in valid if k != 'hydra')}")
        try:
            cfg.get(key)  # an interpolation that cannot resolve (`seed: ${nowhere}`) is a config error
        except OmegaConfBaseException as err:
            raise ConfigError(f"{key}: {str(err).splitlines()[0]}") from None
    for key in GROUPS:
        node = cfg.get(key)
        if node is None and key in REQUIRED:
            raise ConfigError(f"{key}: missing")
        if node is not None and not isinstance(node, (Mapping, DictConfig)):
            raise ConfigError(f"{key}: expected a mapping (a config group such as `{key}: {{name: ...}}`), got {node!r}")


def check_seed(seed: Any) -> int:
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"seed: expected an integer, got {seed!r}")
    if not 0 <= seed < 2 ** 63:  # torch.manual_seed and the per-epoch seeds need a 64-bit seed
        raise ConfigError(f"seed: {seed} is out of range; it must be an integer in [0, 2**63 - 1]")
    return seed


def prepare(cfg: DictConfig | Mapping) -> tuple[DictConfig | dict, int]:
    """A private copy of the job's config without ``hydra``, its top-level keys and ``_target_``
    nodes checked (allowed ones become ``name:`` nodes), and its seed. Returns (config, seed);
    nothing is seeded here (:func:`snnrun.build.build_experiment` seeds before drawing anything)."""
    if isinstance(cfg, DictConfig):
        cfg = cfg.copy()
        OmegaConf.set_struct(cfg, False)
        if "hydra" in cfg:
            del cfg["hydra"]
    else:
        cfg = copy.deepcopy(dict(cfg))
    check_top_level(cfg)
    from .targets import check_targets, resolve_targets
    check_targets(cfg)  # `_target_` outside the registries / torch.optim is refused before anything runs
    resolve_targets(cfg)  # allowed `_target_` nodes become `name:` nodes
    return cfg, check_seed(cfg.get("seed", 0))


def _mapping(node: Any, key: str) -> dict:
    if node is None:
        return {}
    if not isinstance(node, Mapping):
        raise ConfigError(f"{key}: expected a mapping, got {node!r}")
    return dict(node)


def parse_spec(cfg: DictConfig | Mapping) -> ExperimentSpec:
    """Parse the composed config ``cfg`` (with or without its ``hydra`` section) into an
    :class:`ExperimentSpec`; the first problem is a :class:`~snnrun.errors.ConfigError` naming its key."""
    from .data import DATASETS
    from .decoders import DECODERS
    from .encoders import ENCODERS
    from .learning.local import parse_learners
    from .monitors import MonitorsParams
    from .probes import ProbeParams
    from .neurons import NEURONS
    from .plots import PlotsParams
    from .spike_metrics import SpikeMetricsParams
    from .tasks import get_task
    from .topology import parse_network

    cfg, seed = prepare(cfg)
    config = to_container(cfg)
    trainer = parse_params(TrainerParams, config.get("trainer"), "trainer")
    if trainer.threads != "auto" and not (isinstance(trainer.threads, int) and trainer.threads >= 1):
        raise ConfigError(f"trainer.threads: expected auto or a number of threads >= 1, got {trainer.threads!r}")
    task = get_task(config.get("task", "train"))
    neuron = config.get("neuron")
    monitors = parse_params(MonitorsParams, config.get("monitors") or {}, "monitors")
    probes = {}
    for name, node in (monitors.probes or {}).items():
        key = f"monitors.probes.{name}"
        if not isinstance(node, Mapping):
            raise ConfigError(f"{key}: expected a mapping with target, vars, split, samples, epochs")
        probes[name] = parse_params(ProbeParams, node, key)
    return ExperimentSpec(
        config=config, task=task.name, seed=seed, device=config.get("device", "auto"),
        data=DATASETS.component(config["data"], "data"),
        encoder=ENCODERS.component(config.get("encoder") or {"name": "direct"}, "encoder"),
        network=parse_network(config["network"], neuron),
        neuron=NEURONS.component(neuron, "neuron") if isinstance(neuron, Mapping) and "name" in neuron else None,
        decoder=DECODERS.component(config.get("decoder") or {"name": "spike_counts"}, "decoder"),
        learners=tuple(parse_learners(config)),
        optimizer=_mapping(config.get("optimizer"), "optimizer") or {"name": "Adam"},
        scheduler=_mapping(config.get("scheduler"), "scheduler") or None,
        trainer=trainer,
        logger=parse_params(LoggerParams, config.get("logger") or {}, "logger"),
        monitors=monitors,
        spike_metrics=parse_params(SpikeMetricsParams, monitors.metrics or {}, "monitors.metrics"),
        probes=probes,
        plots=parse_params(PlotsParams, config.get("plots") or {}, "plots"),
        sections={key: parse_params(schema, config.get(key) or {}, key) for key, schema in task.sections().items()})
