"""The network section of a config, parsed: populations, projections and their components.

:func:`parse_network` checks a ``network`` node without building anything: the timing, every
population (shape, neuron model, Dale's-law sign), every projection (its ends exist, each synapse
stage names a registered synapse with valid parameters) and the output. The result, a
:class:`NetworkSpec`, is what :func:`snnrun.network.build_network` turns into modules once the
input shape and the decoder's readout size are known.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import ConfigError
from .neurons import NEURONS
from .registry import Component
from .schema import param, parse_params
from .synapses import SYNAPSES


@dataclass
class NetworkParams:
    dt: float = param(1.0, unit="ms", gt=0, help="simulation time step")
    duration: float = param(25.0, unit="ms", gt=0, help="presentation time per sample; T = duration / dt")
    populations: dict = param({}, help="name -> {shape, neuron}")
    projections: dict = param({}, help="name -> {from, to, synapse}")
    output: str | list[str] = param("", help="population read by the decoder, or a list of them (read concatenated)")
    mode: str = param("auto", choices=("auto", "layer", "step"),
                      help="simulation path: layer-by-layer (feedforward only), step-by-step, or auto")
    from_nir: str | None = param(None, help="build the populations and projections from this NIR graph file "
                                            "(optional extra `nir`; docs/interop.md)")
    nir_dt: float | None = param(None, gt=0, help="with from_nir: one step's duration in the graph's time unit "
                                                  "(null: dt / 1000, the graph's times in seconds)")
    recompute_steps: int | None = param(None, gt=0,
                                        help="train in chunks of this many steps whose activations are recomputed in "
                                             "the backward instead of kept (activation checkpointing): memory of one "
                                             "chunk instead of all T steps, for about one more forward pass; "
                                             "null: keep every step's activations")
    init_rate: float | None = param(None, unit="Hz", gt=0,
                                    help="before training, rescale each population's kaiming-initialised incoming "
                                         "weights so that it fires at this rate on the first training batch "
                                         "(snnrun/calibrate.py); null: keep the kaiming scale")


@dataclass
class PopulationParams:
    shape: Any = param(None, help="int or list of ints; null for an input population (taken from the data) or "
                                  "for the single output population (sized by the decoder)")
    neuron: Any = param(None, help="neuron spec; null uses the top-level `neuron` config")
    sign: str | None = param(None, choices=(None, "excitatory", "inhibitory"),
                             help="Dale's law: every outgoing weight >= 0 (excitatory) or <= 0 (inhibitory)")


@dataclass
class ProjectionParams:
    source: str = param(help="presynaptic population")
    target: str = param(help="postsynaptic population")
    synapse: Any = param({"name": "dense"}, help="synapse spec, or a list of specs applied in order")


@dataclass(frozen=True)
class PopulationSpec:
    """A population: its shape (None: from the data, or the decoder for the single output), its
    neuron model (None for an input population) and its Dale's-law sign."""

    name: str
    key: str
    shape: tuple[int, ...] | None
    neuron: Component | None
    sign: str | None


@dataclass(frozen=True)
class ProjectionSpec:
    """A projection ``source -> target`` through its synapse stages, applied in order."""

    name: str
    key: str
    source: str
    target: str
    stages: tuple[Component, ...]


@dataclass(frozen=True)
class NetworkSpec:
    """A parsed ``network`` node. With ``params.from_nir`` set the graph comes from that file and
    ``populations``/``projections`` are empty until the build reads it."""

    key: str
    params: NetworkParams
    time_steps: int
    populations: dict[str, PopulationSpec]
    projections: dict[str, ProjectionSpec]
    outputs: tuple[str, ...]

    @property
    def output(self) -> str | list[str]:
        return self.outputs[0] if len(self.outputs) == 1 else list(self.outputs)

    @property
    def inputs(self) -> list[str]:
        targets = {p.target for p in self.projections.values()}
        return [n for n in self.populations if n not in targets]


def shape_of(value: Any, key: str) -> tuple[int, ...]:
    """A positive integer or a list of them, as a shape tuple."""
    shape = (value,) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(shape, (list, tuple)) or not shape or not all(
            isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise ConfigError(f"{key}: expected a positive integer or a list of them, got {value!r}")
    return tuple(shape)


def time_steps(params: NetworkParams, key: str = "network") -> int:
    steps = params.duration / params.dt
    if not steps <= 2 ** 31 - 1:  # also inf: an overflowing duration / dt
        raise ConfigError(f"{key}.duration: {params.duration} ms is {steps:.3g} steps of dt = {params.dt} ms; "
                          f"at most 2**31 - 1 steps")
    if abs(steps - round(steps)) > 1e-6 or round(steps) < 1:
        raise ConfigError(f"{key}.duration: {params.duration} ms is not a whole number (>= 1) of "
                          f"dt = {params.dt} ms steps")
    return int(round(steps))


def neuron_node(node, default, key):
    """A population's neuron node: its own, or the top-level ``neuron`` (merged under a node without a name)."""
    if node is None:
        if default is None:
            raise ConfigError(f"{key}: missing and no top-level `neuron` config to fall back on")
        return dict(default)
    if not isinstance(node, Mapping):
        raise ConfigError(f"{key}: expected a mapping such as {{name: lif, tau_m: 20.0}}, got {node!r}")
    node = dict(node)
    if "name" not in node and default is not None:
        return {**dict(default), **node}
    return node


def apply_sign(spec, sign: str, source: str, skey: str):
    """Dale's law from the source population: weighted stages inherit its sign (a contradicting
    ``sign`` is an error); fixed-weight stages (one_to_one, lateral_inhibition) must agree with it."""
    if not isinstance(spec, Mapping) or spec.get("name") not in SYNAPSES:
        return spec
    fields = {f.name: f for f in dataclasses.fields(SYNAPSES.get(spec["name"]).Params)}
    if "sign" in fields:
        given = spec.get("sign")
        if given is not None and given != sign:
            raise ConfigError(f"{skey}.sign: '{given}' contradicts Dale's law: population '{source}' is {sign}")
        return {**dict(spec), "sign": sign}
    if "weight" in fields:
        weight = spec.get("weight", fields["weight"].default)
        if isinstance(weight, (int, float)) and (weight < 0 if sign == "excitatory" else weight > 0):
            raise ConfigError(f"{skey}.weight: {weight} contradicts Dale's law: population '{source}' is {sign}"
                              f" (needs {'>= 0' if sign == 'excitatory' else '<= 0'})")
    return spec


def _projection(name: str, node: Any, key: str) -> ProjectionParams:
    if not isinstance(node, Mapping):
        raise ConfigError(f"{key}: expected a mapping with from/to/synapse")
    node = dict(node)
    for old, new in (("from", "source"), ("to", "target")):
        if old in node:
            node[new] = node.pop(old)
    return parse_params(ProjectionParams, node, key)


def _stages(p: ProjectionParams, sign: str | None, key: str) -> tuple[Component, ...]:
    listed = isinstance(p.synapse, (list, tuple))
    stages = []
    for i, node in enumerate(p.synapse if listed else [p.synapse]):
        skey = f"{key}.synapse" + (f"[{i}]" if listed else "")
        if sign is not None:
            node = apply_sign(node, sign, p.source, skey)
        stages.append(SYNAPSES.component(node, skey))
    return tuple(stages)


def parse_network(node: Mapping[str, Any], default_neuron: Mapping[str, Any] | None,
                  key: str = "network") -> NetworkSpec:
    """Check the ``network`` node (and the top-level ``neuron`` its populations fall back on)."""
    params = parse_params(NetworkParams, node, key)
    steps = time_steps(params, key)
    if params.from_nir is not None:
        return NetworkSpec(key, params, steps, {}, {}, ())
    if not params.populations:
        raise ConfigError(f"{key}.populations: the network has no populations")
    parsed, targets = {}, set()
    for name, proj_node in params.projections.items():
        p = _projection(name, proj_node, f"{key}.projections.{name}")
        for end in ("source", "target"):
            if getattr(p, end) not in params.populations:
                word = "from" if end == "source" else "to"
                raise ConfigError(f"{key}.projections.{name}.{word}: no population '{getattr(p, end)}'"
                                  f"; populations: {', '.join(params.populations)}")
        targets.add(p.target)
        parsed[name] = p
    populations = {}
    for name, pop_node in params.populations.items():
        pkey = f"{key}.populations.{name}"
        pp = parse_params(PopulationParams, pop_node or {}, pkey)
        shape = shape_of(pp.shape, f"{pkey}.shape") if pp.shape is not None else None
        neuron = None
        if name in targets:
            nkey = f"{pkey}.neuron" if pp.neuron is not None else "neuron"
            neuron = NEURONS.component(neuron_node(pp.neuron, default_neuron, f"{pkey}.neuron"), nkey)
        populations[name] = PopulationSpec(name, pkey, shape, neuron, pp.sign)
    output = params.output or list(params.populations)[-1]
    outputs = (output,) if isinstance(output, str) else tuple(output)
    for name in outputs:
        if name not in populations:
            raise ConfigError(f"{key}.output: no population '{name}'; populations: {', '.join(populations)}")
    projections = {name: ProjectionSpec(name, f"{key}.projections.{name}", p.source, p.target,
                                        _stages(p, populations[p.source].sign, f"{key}.projections.{name}"))
                   for name, p in parsed.items()}
    return NetworkSpec(key, params, steps, populations, projections, outputs)
