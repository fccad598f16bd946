"""Config -> Experiment: the one place where components are built from the config tree."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .data import DATASETS, DataSplits
from .decoders import DECODERS, Decoder
from .device import resolve_device
from .encoders import ENCODERS, Encoder
from .calibrate import calibrate
from .encoders.base import check_reads
from .errors import ConfigError, ShapeError
from .learning import LEARNERS, Learner
from .network import Network, build_network
from .optim import build_optimizer, build_scheduler, unit_groups, weight_units
from .reproducibility import seed_everything
from .schema import param, parse_params, suggest
from .surrogate import Heaviside

TOP_LEVEL_KEYS = ("data", "encoder", "network", "neuron", "decoder", "learner", "learners", "optimizer", "scheduler",
                  "logger", "trainer", "seed", "device", "name", "tags", "hydra", "task", "monitors", "plots",
                  "allow_targets")


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


@dataclass
class LoggerParams:
    """Metric sinks written to the run directory."""

    sinks: list = param(["csv", "jsonl"], help="metric sinks: csv, jsonl, tensorboard, mlflow, wandb")


@dataclass
class Experiment:
    config: dict
    data: DataSplits
    data_params: Any
    encoder: Encoder
    network: Network
    decoder: Decoder
    learners: list[Learner]
    optimizer: torch.optim.Optimizer | None
    scheduler: Any
    scheduler_interval: str
    trainer: TrainerParams
    logger: LoggerParams
    device: torch.device
    seed: int


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
    for key in ("data", "encoder", "network", "neuron", "decoder", "learner", "learners", "optimizer", "scheduler",
                "logger", "trainer", "monitors", "plots"):
        node = cfg.get(key)
        if node is None and key in ("data", "network", "learner", "trainer"):
            raise ConfigError(f"{key}: missing")
        if node is not None and not isinstance(node, (Mapping, DictConfig)):
            raise ConfigError(f"{key}: expected a mapping (a config group such as `{key}: {{name: ...}}`), got {node!r}")


def resolve_monitor(trainer: TrainerParams, val_size: int, task: str = "train") -> str:
    """The metric that selects best.pt: ``auto`` is ``val/accuracy``; a ``test/*`` metric needs
    ``trainer.select_on_test``; ``val/*`` needs a validation split. Tasks other than ``train``
    never select a model, so for them nothing is refused (``auto`` stays ``auto`` without a
    validation split)."""
    monitor, split = trainer.monitor, trainer.monitor.split("/")[0]
    if task != "train":
        return "val/accuracy" if monitor == "auto" and val_size else monitor
    if monitor == "auto":
        if not val_size:
            raise ConfigError("trainer.monitor: auto selects on val/accuracy but the data have no validation split "
                              "(data.val_fraction=0); set data.val_fraction > 0 (e.g. 0.1), or monitor a train "
                              "metric (trainer.monitor=train/loss trainer.mode=min), or select on the test set "
                              "explicitly (trainer.monitor=test/accuracy trainer.select_on_test=true)")
        return "val/accuracy"
    if split == "test" and not trainer.select_on_test:
        raise ConfigError(f"trainer.monitor: {monitor} would select best.pt (and sweep results) on the test set; "
                          f"monitor val/* (data.val_fraction > 0) or train/*, or set trainer.select_on_test=true "
                          f"to select on the test set knowingly")
    if split == "val" and not val_size:
        raise ConfigError(f"trainer.monitor: {monitor} needs a validation split; set data.val_fraction > 0 "
                          f"(e.g. 0.1)")
    return monitor


def check_objectives(trainer: TrainerParams) -> None:
    """A sweep's extra objectives (``SNNRUN_OBJECTIVES``) follow the same rule as the monitor."""
    from .sweep import objective_names

    tested = [n for n in objective_names() if n.split("/")[0] == "test"]
    if tested and not trainer.select_on_test:
        raise ConfigError(f"trainer.select_on_test: SNNRUN_OBJECTIVES (hydra.job.env_set) lists {', '.join(tested)}: "
                          f"the sweep would optimise on the test set; use val/* metrics, or set "
                          f"trainer.select_on_test=true to do it knowingly")


def check_readout(network: Network, decoder: Decoder, learners: list[Learner], node: Mapping) -> None:
    """The output population has the size the decoder reads, and a gradient learner has scores
    that carry its gradient (checked before anything runs)."""
    name = node.get("name")
    if len(network.outputs) == 1:
        out = network.outputs[0]
        size = int(torch.Size(network.populations[out].shape).numel())
        need = decoder.output_size()
        if need is not None and size != need:
            per_class = f" ({decoder.num_classes} classes x decoder.neurons_per_class)" \
                if need != decoder.num_classes else f" (one per class: data.num_classes = {need})"
            raise ShapeError(f"network.populations.{out}.shape: the output population has {size} neurons but "
                             f"decoder {name} reads {need}{per_class}; set network.populations.{out}.shape={need} "
                             f"(or null: sized by the decoder)")
    gradient = [lr for lr in learners if lr.gradient]
    if not gradient:
        return
    from .surrogate import SURROGATES

    learner = gradient[0]
    kind = type(learner).registry_name
    if not decoder.differentiable:
        local = [n for n in sorted(LEARNERS.names()) if not LEARNERS.get(n).gradient]
        readouts = [n for n in sorted(DECODERS.names()) if DECODERS.get(n).differentiable]
        raise ConfigError(f"{learner.key}.name: {kind} trains through gradients but decoder {name} "
                          f"assigns labels to neurons and its scores carry none; use a local learner "
                          f"({learner.key}={'|'.join(local)}) or a gradient decoder (decoder={'|'.join(readouts)})")
    surrogate = learner.surrogate() if hasattr(learner, "surrogate") else None
    if isinstance(surrogate, Heaviside) and not decoder.needs_voltage:
        surrogates = [n for n in sorted(SURROGATES.names()) if n != "heaviside"]
        raise ConfigError(f"{learner.key}.surrogate.name: heaviside passes no gradient through a spike and decoder "
                          f"{name} reads spikes, so {kind} would train nothing; choose a surrogate "
                          f"({'|'.join(surrogates)}) or a voltage decoder "
                          f"(decoder={'|'.join(n for n in DECODERS.names() if DECODERS.get(n).needs_voltage)})")


def load_data(cfg: DictConfig | Mapping) -> tuple[DataSplits, Any]:
    node = cfg["data"]
    node = to_container(node) if isinstance(node, DictConfig) else dict(node)
    dataset = DATASETS.build(node, "data")
    dataset.key = "data"
    return dataset.splits(), dataset.params


def prepare(cfg: DictConfig | Mapping) -> tuple[DictConfig | dict, int]:
    """What every task's build does first: a private copy of the job's config without ``hydra``,
    its top-level keys and ``_target_`` nodes checked, and the seed parsed and applied (before
    anything draws random numbers: splits, weight init). Returns (config, seed)."""
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
    seed = cfg.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"seed: expected an integer, got {seed!r}")
    if not 0 <= seed < 2 ** 63:  # torch.manual_seed and the per-epoch seeds need a 64-bit seed
        raise ConfigError(f"seed: {seed} is out of range; it must be an integer in [0, 2**63 - 1]")
    seed_everything(seed)
    return cfg, seed


def protocol_config(cfg: DictConfig | Mapping, key: str, schema: type) -> tuple[dict, Any, int]:
    """The prelude of a protocol task (current_clamp, stdp_window, rstdp_xor): :func:`prepare`, the
    config as a plain dict, and its ``key`` section parsed with ``schema``. Returns (config, params, seed)."""
    cfg, seed = prepare(cfg)
    config = to_container(cfg)
    return config, parse_params(schema, config.get(key) or {}, key), seed


def network_from_node(node: Mapping, default_neuron: Mapping | None, input_shape: tuple[int, ...] | None,
                      spike_fn=None, key: str = "network", output_size: int | None = None) -> Network:
    """The network of a ``network`` node: from a NIR graph when it names one (``from_nir``, the
    optional extra ``nir``), else from its populations and projections (:func:`snnrun.network.build_network`)."""
    if isinstance(node, Mapping) and node.get("from_nir") is not None:
        from .interop.nir import build_from_nir
        return build_from_nir(node, input_shape, spike_fn, key)
    return build_network(node, default_neuron, input_shape, spike_fn, key, output_size=output_size)


def build_components(config: Mapping, input_shape: tuple[int, ...], num_classes: int | None
                     ) -> tuple[Encoder, Network, Decoder, list[Learner]]:
    """The encoder, network, decoder and learners of a resolved config (plain containers, see
    :func:`to_container`) for samples of ``input_shape`` in ``num_classes`` classes, on the CPU;
    the readout checked (:func:`check_readout`). Weights are drawn from torch's global RNG."""
    net_node = config["network"]
    from .network import NetworkParams, time_steps  # local: only the timing fields are needed here
    net_params = parse_params(NetworkParams, net_node, "network")
    steps = time_steps(net_params)
    encoder = ENCODERS.build(config.get("encoder") or {"name": "direct"}, "encoder", dt=net_params.dt, time_steps=steps)

    from .learning.local import build_learners, parse_learners
    specs = parse_learners(config)  # `learner` plus the optional `learners` mapping
    spike_fn = Heaviside()
    for spec in specs:
        if spec.cls.gradient:
            from .surrogate import build_surrogate
            spike_fn = build_surrogate(spec.params.surrogate, f"{spec.key}.surrogate")

    decoder = DECODERS.build(config.get("decoder") or {"name": "spike_counts"}, "decoder",
                             dt=net_params.dt, num_classes=num_classes)
    # an output population of `shape: null` gets the size the decoder reads (any: one neuron per class)
    network = network_from_node(net_node, config.get("neuron"), encoder.output_shape(tuple(input_shape)), spike_fn,
                                output_size=decoder.output_size() or num_classes)
    learners = build_learners(specs, network)
    check_readout(network, decoder, learners, config.get("decoder") or {"name": "spike_counts"})
    return encoder, network, decoder, learners


def build_experiment(cfg: DictConfig | Mapping, device: str | None = None, dry_run: bool = False) -> Experiment:
    """Validate ``cfg`` and build every component, on ``device`` (default: ``cfg.device``).

    ``dry_run`` (``snnrun validate``): the same build, without building the compiled kernels."""
    cfg, seed = prepare(cfg)
    data, data_params = load_data(cfg)
    # Fill the data's shape and class count so `${data.num_classes}` interpolations resolve.
    if isinstance(cfg, DictConfig):
        if cfg.data.get("input_shape") is None:
            cfg.data.input_shape = list(data.input_shape)
        if cfg.data.get("num_classes") is None:
            cfg.data.num_classes = max(data.num_classes, data_params.num_classes or 0)
        elif data.num_classes > cfg.data.num_classes:
            raise ConfigError(f"data.num_classes: declared {cfg.data.num_classes} but labels go up to {data.num_classes - 1}")
    config = to_container(cfg)
    trainer = parse_params(TrainerParams, config.get("trainer"), "trainer")
    task = config.get("task", "train")
    trainer.monitor = resolve_monitor(trainer, data.val_size, task)  # model selection never on test data by default
    if task == "train":
        check_objectives(trainer)
    logger = parse_params(LoggerParams, config.get("logger") or {}, "logger")
    torch_device = resolve_device(device or config.get("device", "auto"))

    num_classes = config["data"].get("num_classes") or data.num_classes
    encoder, network, decoder, learners = build_components(config, data.input_shape, num_classes)
    check_reads(encoder, getattr(data, "values", "unknown"), config["data"].get("name", "?"))
    network.to(torch_device)
    encoder.to(torch_device)
    decoder.to(torch_device)
    from . import kernels
    kernels.reset_usage()  # summary.json records which paths this run took
    if torch_device.type == "cpu" and not dry_run:  # build the compiled fast paths now, not in the first batch
        for name in ("bernoulli", "lif_scan", "spike_linear"):
            kernels.all_kernels()[name].load()

    if not dry_run:
        calibrate(network, encoder, data, data_params.batch_size, torch_device)

    optimizer, scheduler, interval = None, None, "epoch"
    gradient_params = [p for lr in learners if lr.gradient for p in lr.parameters()]
    if any(lr.gradient for lr in learners):
        opt_node = config.get("optimizer") or {"name": "Adam"}
        groups = unit_groups(gradient_params, weight_units(network), str(opt_node.get("name")))
        optimizer = build_optimizer(opt_node, groups)
        scheduler, interval = build_scheduler(config.get("scheduler"), optimizer)
    return Experiment(config=config, data=data, data_params=data_params, encoder=encoder, network=network,
                      decoder=decoder, learners=learners, optimizer=optimizer, scheduler=scheduler,
                      scheduler_interval=interval, trainer=trainer, logger=logger, device=torch_device, seed=seed)
