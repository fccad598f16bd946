"""Spec -> Experiment: the one place where components are built (from an :class:`~snnrun.spec.ExperimentSpec`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

import torch
from omegaconf import DictConfig

from .calibrate import calibrate
from .data import DATASETS, DataSplits
from .decoders import DECODERS, Decoder
from .device import resolve_device
from .encoders import Encoder
from .encoders.base import check_reads
from .errors import ConfigError, ShapeError
from .learning import LEARNERS, Learner
from .network import Network, build_network
from .optim import build_optimizer, build_scheduler, unit_groups, weight_units
from .reproducibility import seed_everything
from .spec import LoggerParams, TrainerParams, ExperimentSpec, parse_spec, to_container  # noqa: F401 (re-exported)
from . import spec as _spec
from .surrogate import Heaviside
from .topology import NetworkSpec

@dataclass
class Experiment:
    """An experiment's built components, from its :class:`~snnrun.spec.ExperimentSpec` (``spec``;
    ``config`` is the resolved config it was parsed from)."""

    spec: ExperimentSpec
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


def check_readout(network: Network, decoder: Decoder, learners: list[Learner], name: str) -> None:
    """The output population has the size the decoder ``name`` reads, and a gradient learner has
    scores that carry its gradient (checked before anything runs)."""
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


def prepare(cfg: DictConfig | Mapping) -> tuple[DictConfig | dict, int]:
    """What every build does first: :func:`snnrun.spec.prepare` (a checked private copy of the
    config, and its seed), then the seed applied before anything draws random numbers (splits,
    weight init). Returns (config, seed)."""
    cfg, seed = _spec.prepare(cfg)
    seed_everything(seed)
    return cfg, seed


def load_data(cfg: DictConfig | Mapping) -> tuple[DataSplits, Any]:
    """The data splits of ``cfg.data`` (read before the rest of the config is parsed: interpolations
    such as ``${data.num_classes}`` resolve to what the data declare) and the data set's params."""
    node = cfg["data"]
    node = to_container(node) if isinstance(node, DictConfig) else dict(node)
    dataset = DATASETS.build(node, "data")
    dataset.key = "data"
    return dataset.splits(), dataset.params


def complete_data(cfg: DictConfig | dict, data: DataSplits, data_params: Any) -> None:
    """Fill ``data.input_shape`` and ``data.num_classes`` from the loaded data where the config
    leaves them null, so interpolations of them resolve; a declared class count must cover the labels."""
    node = cfg["data"]
    if node.get("input_shape") is None:
        node["input_shape"] = list(data.input_shape)
    if node.get("num_classes") is None:
        node["num_classes"] = max(data.num_classes, data_params.num_classes or 0)
    elif data.num_classes > node["num_classes"]:
        raise ConfigError(f"data.num_classes: declared {node['num_classes']} but labels go up to {data.num_classes - 1}")


def protocol_spec(cfg: DictConfig | Mapping) -> ExperimentSpec:
    """The prelude of a protocol task (current_clamp, stdp_window, rstdp_xor), which builds its own
    small network: the config parsed (:func:`snnrun.spec.parse_spec`) and its seed applied."""
    spec = parse_spec(cfg)
    seed_everything(spec.seed)
    return spec


def network_from_node(node: Mapping | NetworkSpec, default_neuron: Mapping | None,
                      input_shape: tuple[int, ...] | None, spike_fn=None, key: str = "network",
                      output_size: int | None = None, raw: Mapping | None = None) -> Network:
    """The network of a ``network`` node or its :class:`~snnrun.topology.NetworkSpec`: from a NIR
    graph when it names one (``from_nir``, the optional extra ``nir``; ``raw`` is the node then),
    else from its populations and projections (:func:`snnrun.network.build_network`)."""
    params = node.params if isinstance(node, NetworkSpec) else None
    if params is not None and params.from_nir is not None or \
            params is None and isinstance(node, Mapping) and node.get("from_nir") is not None:
        from .interop.nir import build_from_nir
        return build_from_nir(raw if params is not None else node, input_shape, spike_fn, key)
    return build_network(node, default_neuron, input_shape, spike_fn, key, output_size=output_size)


def build_components(spec: ExperimentSpec | Mapping, input_shape: tuple[int, ...], num_classes: int | None
                     ) -> tuple[Encoder, Network, Decoder, list[Learner]]:
    """The encoder, network, decoder and learners of ``spec`` (or of a config, parsed first) for
    samples of ``input_shape`` in ``num_classes`` classes, on the CPU; the readout checked
    (:func:`check_readout`). Weights are drawn from torch's global RNG."""
    if not isinstance(spec, ExperimentSpec):
        spec = parse_spec(spec)
    net = spec.network
    encoder = spec.encoder.build(dt=net.params.dt, time_steps=net.time_steps)
    spike_fn = Heaviside()
    for learner in spec.learners:
        if learner.cls.gradient:
            from .surrogate import build_surrogate
            spike_fn = build_surrogate(learner.params.surrogate, f"{learner.key}.surrogate")
    decoder = spec.decoder.build(dt=net.params.dt, num_classes=num_classes)
    # an output population of `shape: null` gets the size the decoder reads (any: one neuron per class)
    network = network_from_node(net, None, encoder.output_shape(tuple(input_shape)), spike_fn,
                                output_size=decoder.output_size() or num_classes, raw=spec.config["network"])
    from .learning.local import build_learners
    learners = build_learners(list(spec.learners), network)
    check_readout(network, decoder, learners, spec.decoder.name)
    return encoder, network, decoder, learners


def build_experiment(cfg: DictConfig | Mapping, device: str | None = None, dry_run: bool = False) -> Experiment:
    """Parse ``cfg`` (:func:`snnrun.spec.parse_spec`, after the data are loaded for their shape and
    classes) and build every component, on ``device`` (default: ``cfg.device``).

    ``dry_run`` (``snnrun validate``): the same build, without building the compiled kernels or
    calibrating the initial weights."""
    cfg, seed = prepare(cfg)
    data, data_params = load_data(cfg)
    complete_data(cfg, data, data_params)
    spec = parse_spec(cfg)
    trainer = replace(spec.trainer, monitor=resolve_monitor(spec.trainer, data.val_size, spec.task))
    if spec.task == "train":
        check_objectives(trainer)  # model selection never on test data by default
    torch_device = resolve_device(device or spec.device)

    num_classes = spec.config["data"].get("num_classes") or data.num_classes
    encoder, network, decoder, learners = build_components(spec, data.input_shape, num_classes)
    check_reads(encoder, getattr(data, "values", "unknown"), spec.data.name)
    network.to(torch_device)
    encoder.to(torch_device)
    decoder.to(torch_device)
    from . import kernels
    kernels.reset_usage()  # summary.json records which paths this run took
    if torch_device.type == "cpu" and not dry_run:  # build the compiled fast paths now, not in the first batch
        models = {getattr(pop.neuron, "kernel", None) for pop in network.populations.values()}
        for name in ["bernoulli", "lif_scan", "spike_linear", *sorted(models - {None})]:
            kernels.all_kernels()[name].load()

    if not dry_run:
        calibrate(network, encoder, data, data_params.batch_size, torch_device)

    optimizer, scheduler, interval = None, None, "epoch"
    gradient_params = [p for lr in learners if lr.gradient for p in lr.parameters()]
    if any(lr.gradient for lr in learners):
        groups = unit_groups(gradient_params, weight_units(network), str(spec.optimizer.get("name")))
        optimizer = build_optimizer(spec.optimizer, groups)
        scheduler, interval = build_scheduler(spec.scheduler, optimizer)
    return Experiment(spec=spec, config=spec.config, data=data, data_params=data_params, encoder=encoder,
                      network=network, decoder=decoder, learners=learners, optimizer=optimizer, scheduler=scheduler,
                      scheduler_interval=interval, trainer=trainer, logger=spec.logger, device=torch_device,
                      seed=seed)
