"""The network: a graph of populations (neuron groups) and projections (synapses).

Feedforward graphs run layer by layer over all T steps at once: each
projection is one batched matmul/conv over ``T·B`` samples, each population one
scan over time. Graphs with cycles run step by step; a projection that closes
a cycle (found by depth-first search from the inputs) carries the previous
step's spikes. Populations without incoming projections are inputs, fed by the encoder.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn

from .errors import ConfigError, ShapeError
from .neurons import NEURONS, Neuron
from .schema import param, parse_params
from .synapses import SYNAPSES
from .synapses.base import constrain, has_constraints


#: dtypes of synaptic products under autocast (trainer.precision=bf16); currents are cast back to float32
_REDUCED = (torch.bfloat16, torch.float16)


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


class Population(nn.Module):
    """A named group of neurons; ``neuron`` is None for input populations."""

    def __init__(self, name: str, shape: tuple[int, ...], neuron: Neuron | None):
        super().__init__()
        self.name = name
        self.shape = tuple(shape)
        self.neuron = neuron

    @property
    def is_input(self) -> bool:
        return self.neuron is None

    def reset(self) -> None:
        if self.neuron is not None:
            self.neuron.reset()


class Projection(nn.Module):
    """Connects ``source`` to ``target`` through a chain of synapses."""

    def __init__(self, name: str, source: str, target: str, stages: list[nn.Module]):
        super().__init__()
        self.name = name
        self.source = source
        self.target = target
        self.stages = nn.ModuleList(stages)
        self.recurrent = False  # set by the network when the edge closes a cycle

    def forward(self, x: torch.Tensor, steps: int = 1) -> torch.Tensor:
        """``x`` holds ``steps`` time steps of a batch, flattened: ``[steps·B, *source_shape]``."""
        for stage in self.stages:
            x = stage(x, steps) if getattr(stage, "temporal", False) else stage(x)
        return x

    def apply_constraints(self) -> None:
        """Re-apply weight bounds and sign (Dale's law) constraints after an update."""
        for stage in self.stages:
            if hasattr(stage, "clamp_weights"):
                stage.clamp_weights()

    def reset(self) -> None:
        for stage in self.stages:
            if hasattr(stage, "reset"):
                stage.reset()


@dataclass
class NetworkOutput:
    """Spikes (or, for non-spiking models, membrane potential) of every population, [T, B, *shape],
    recorded state traces: ``traces[population][variable]``, and, for the populations whose fused
    scan counted them, each neuron's spike count over the steps and the batch: ``counts[population]`` [*shape]."""

    spikes: dict[str, torch.Tensor]
    traces: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    counts: dict[str, torch.Tensor] = field(default_factory=dict)


class Network(nn.Module):
    def __init__(self, populations: Mapping[str, Population], projections: Mapping[str, Projection],
                 output: str | list[str], dt: float, time_steps: int, mode: str = "auto",
                 init_rate: float | None = None):
        super().__init__()
        self.populations = nn.ModuleDict(populations)
        self.projections = nn.ModuleDict(projections)
        self.outputs = [output] if isinstance(output, str) else list(output)
        # the key the decoder reads: a population, or "a+b" for the concatenation of several
        self.output = "+".join(self.outputs)
        self.dt = dt
        self.time_steps = time_steps
        self.inputs = [n for n, p in self.populations.items() if p.is_input]
        self.order, back_edges = _order(list(self.populations), [(p.name, p.source, p.target) for p in projections.values()], self.inputs)
        for name in back_edges:
            self.projections[name].recurrent = True
        self.incoming = {n: [p for p in self.projections.values() if p.target == n] for n in self.populations}
        self.feedforward = not back_edges
        if mode == "layer" and not self.feedforward:
            raise ConfigError(f"network.mode: 'layer' needs a feedforward graph, but projection(s) "
                              f"{', '.join(back_edges)} close a cycle; use 'step' or 'auto'")
        self.mode = mode
        self.init_rate = init_rate  # Hz: the runner calibrates the initial weights to it (snnrun.calibrate)
        self.step_hook = None  # callable(step, now, previous) after each step; set by local learners
        #: whether a population's fused neuron scan may overwrite the current its single incoming
        #: projection just computed (one [T, B, N] tensor less per layer). Set False before running the
        #: network if your own code (e.g. a forward hook) keeps references to projection outputs.
        self.reuse_currents = True
        self._constrained: list | None = None  # projections with weight constraints (apply_constraints)

    def apply_constraints(self) -> None:
        """Re-apply every weight bound and sign constraint (after each update; the projections
        that have none are found once)."""
        if self._constrained is None:
            self._constrained = [proj for proj in self.projections.values()
                                 if any(has_constraints(getattr(stage, "params", None)) for stage in proj.stages)]
        for proj in self._constrained:
            proj.apply_constraints()

    def reset(self) -> None:
        """Clear all neuron and synapse state (call between samples)."""
        for module in list(self.populations.values()) + list(self.projections.values()):
            module.reset()

    def _as_inputs(self, inputs) -> dict[str, torch.Tensor]:
        if isinstance(inputs, torch.Tensor):
            if len(self.inputs) != 1:
                raise ShapeError(f"network has inputs {self.inputs}; pass a dict of tensors")
            inputs = {self.inputs[0]: inputs}
        out = {}
        for name, x in inputs.items():
            shape = self.populations[name].shape
            if math.prod(x.shape[2:]) != math.prod(shape):
                raise ShapeError(f"input population '{name}' has shape {list(shape)} but received "
                                 f"{list(x.shape[2:])} per time step and sample")
            out[name] = x.reshape(*x.shape[:2], *shape)
        return out

    def forward(self, inputs, record: Mapping[str, tuple[str, ...]] | None = None) -> NetworkOutput:
        """Simulate: ``inputs`` [T, B, *shape] (or a dict per input population)."""
        inputs = self._as_inputs(inputs)
        record = dict(record or {})
        joint = record.pop(self.output, ()) if len(self.outputs) > 1 else ()
        for name in self.outputs if joint else ():
            record[name] = tuple(dict.fromkeys((*record.get(name, ()), *joint)))
        if self.mode == "step" or (self.mode == "auto" and not self.feedforward) or self.step_hook is not None:
            out = self._run_steps(inputs, record)
        else:
            out = self._run_layers(inputs, record)
        if len(self.outputs) > 1:  # several outputs: the readout is their activity side by side
            out.spikes[self.output] = torch.cat([out.spikes[n].flatten(2) for n in self.outputs], 2)
            if joint:
                out.traces[self.output] = {v: torch.cat([out.traces[n][v].flatten(2) for n in self.outputs], 2)
                                           for v in joint}
        return out

    def _current(self, name: str, spikes: Mapping[str, torch.Tensor], steps: int,
                 batch: int) -> tuple[torch.Tensor, bool]:
        """The summed input current of population ``name``, and whether it is a fresh tensor
        nobody else holds (a sum, or a weighted stage's own output, unless ``reuse_currents`` is off)."""
        pop = self.populations[name]
        total = None
        for proj in self.incoming[name]:
            pre = spikes[proj.source]
            y = proj(pre.reshape(steps * batch, *pre.shape[2:]), steps)
            total = y if total is None else total + y
        incoming = self.incoming[name]
        last = incoming[0].stages[-1]
        fresh = len(incoming) > 1 or (last.fresh_output and self.reuse_currents)
        if total.dtype in _REDUCED:  # autocast products: neurons integrate in float32
            total, fresh = total.float(), True
        return total.reshape(steps, batch, *pop.shape), fresh

    def _run_layers(self, inputs, record) -> NetworkOutput:
        spikes: dict[str, torch.Tensor] = {}
        traces: dict[str, dict[str, torch.Tensor]] = {}
        counts: dict[str, torch.Tensor] = {}
        for name in self.order:
            pop = self.populations[name]
            if pop.is_input:
                spikes[name] = inputs[name]
                continue
            first = next(iter(inputs.values()))
            current, fresh = self._current(name, spikes, first.shape[0], first.shape[1])
            spikes[name], traces[name] = pop.neuron(current, record.get(name, ()), reuse_input=fresh)
            del current  # with reuse_input the scan may keep its memory for the backward
            if pop.neuron.spike_counts is not None:
                counts[name] = pop.neuron.spike_counts
        return NetworkOutput(spikes, traces, counts)

    def _run_steps(self, inputs, record) -> NetworkOutput:
        first = next(iter(inputs.values()))
        steps, batch = first.shape[0], first.shape[1]
        previous: dict[str, torch.Tensor] = {}
        out = {n: [] for n in self.order}
        rec = {n: {v: [] for v in vs} for n, vs in record.items()}
        for t in range(steps):
            now: dict[str, torch.Tensor] = {}
            for name in self.order:
                pop = self.populations[name]
                if pop.is_input:
                    now[name] = inputs[name][t]
                else:
                    total = None
                    for proj in self.incoming[name]:
                        if proj.recurrent:
                            pre = previous.get(proj.source)
                            if pre is None:
                                pre = torch.zeros(batch, *self.populations[proj.source].shape,
                                                  device=first.device, dtype=first.dtype)
                        else:
                            pre = now[proj.source]
                        y = proj(pre)
                        total = y if total is None else total + y
                    if total.dtype in _REDUCED:
                        total = total.float()
                    now[name] = pop.neuron.forward_step(total.reshape(batch, *pop.shape))
                    for var in rec.get(name, {}):
                        rec[name][var].append(getattr(pop.neuron.state, var))
                out[name].append(now[name])
            if self.step_hook is not None:
                self.step_hook(t, now, previous)
            previous = now
        spikes = {n: torch.stack(v) for n, v in out.items()}
        traces = {n: {v: torch.stack(x) for v, x in vs.items()} for n, vs in rec.items()}
        return NetworkOutput(spikes, traces)


def _order(names: list[str], edges: list[tuple[str, str, str]], inputs: list[str]) -> tuple[list[str], list[str]]:
    """Topological order after removing the edges that close cycles (DFS back edges)."""
    succ = {n: [] for n in names}
    for edge, src, dst in edges:
        succ[src].append((edge, dst))
    state, back = {}, []

    def visit(n):
        state[n] = 1
        for edge, m in succ[n]:
            if state.get(m) == 1:
                back.append(edge)
            elif m not in state:
                visit(m)
        state[n] = 2

    for n in inputs + names:
        if n not in state:
            visit(n)
    kept = [(e, s, d) for e, s, d in edges if e not in back]
    indegree = {n: 0 for n in names}
    for _, _, d in kept:
        indegree[d] += 1
    ready = [n for n in names if indegree[n] == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for e, s, d in kept:
            if s == n:
                indegree[d] -= 1
                if indegree[d] == 0:
                    ready.append(d)
    return order, back


def _shape(value: Any, key: str) -> tuple[int, ...]:
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


def build_network(node: Mapping[str, Any], default_neuron: Mapping[str, Any] | None,
                  input_shape: tuple[int, ...] | None, spike_fn=None, key: str = "network",
                  output_size: int | None = None) -> Network:
    """Build a :class:`Network` from the ``network`` config node; errors name the config path.

    A population with ``shape: null`` takes ``input_shape`` if it is an input, or ``output_size``
    neurons if it is the network's single output (the decoder's readout size)."""
    params = parse_params(NetworkParams, node, key)
    if not params.populations:
        raise ConfigError(f"{key}.populations: the network has no populations")
    targets = {}
    projections_cfg = {}
    for name, proj_node in params.projections.items():
        if not isinstance(proj_node, Mapping):
            raise ConfigError(f"{key}.projections.{name}: expected a mapping with from/to/synapse")
        proj_node = dict(proj_node)
        for old, new in (("from", "source"), ("to", "target")):
            if old in proj_node:
                proj_node[new] = proj_node.pop(old)
        p = parse_params(ProjectionParams, proj_node, f"{key}.projections.{name}")
        for end in ("source", "target"):
            pop = getattr(p, end)
            if pop not in params.populations:
                word = "from" if end == "source" else "to"
                raise ConfigError(f"{key}.projections.{name}.{word}: no population '{pop}'"
                                  f"; populations: {', '.join(params.populations)}")
        targets.setdefault(p.target, []).append(name)
        projections_cfg[name] = p
    populations: dict[str, Population] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    signs: dict[str, str | None] = {}
    single_input = sum(1 for n in params.populations if n not in targets) == 1
    output = params.output or list(params.populations)[-1]
    outputs = [output] if isinstance(output, str) else list(output)
    for name, pop_node in params.populations.items():
        pkey = f"{key}.populations.{name}"
        pp = parse_params(PopulationParams, pop_node or {}, pkey)
        signs[name] = pp.sign
        if name not in targets:
            shape = _shape(pp.shape, f"{pkey}.shape") if pp.shape is not None else tuple(input_shape or ())
            if single_input and input_shape is not None and pp.shape is not None \
                    and math.prod(shape) != math.prod(input_shape):
                raise ShapeError(f"{pkey}.shape: input population has shape {list(shape)} but the encoder "
                                 f"produces {list(input_shape)}")
            populations[name] = Population(name, shape, None)
        else:
            if pp.shape is None and outputs == [name] and output_size is not None:
                shape = (int(output_size),)  # the readout's size: classes x the decoder's neurons per class
            elif pp.shape is None:
                raise ConfigError(f"{pkey}.shape: missing (only input populations take their shape from the data, "
                                  f"and a single output population from the decoder)")
            else:
                shape = _shape(pp.shape, f"{pkey}.shape")
            neuron_node = _neuron_node(pp.neuron, default_neuron, f"{pkey}.neuron")
            neuron = NEURONS.build(neuron_node, f"{pkey}.neuron" if pp.neuron is not None else "neuron",
                                   shape=shape, dt=params.dt, spike_fn=spike_fn)
            populations[name] = Population(name, shape, neuron)
        shapes[name] = populations[name].shape
    for name in outputs:
        if name not in populations:
            raise ConfigError(f"{key}.output: no population '{name}'; populations: {', '.join(populations)}")
    projections = {}
    steps = time_steps(params, key)
    for name, p in projections_cfg.items():
        projections[name] = _build_projection(name, p, shapes, params.dt, f"{key}.projections.{name}", steps,
                                              signs.get(p.source))
        scale_to_target(projections[name], populations[p.target].neuron)
    return Network(populations, projections, output, params.dt, steps, params.mode, params.init_rate)


def scale_to_target(projection: Projection, neuron) -> None:
    """Express ``init: kaiming`` weights in the target model's units: multiply them by its drive
    (:meth:`~snnrun.neurons.base.Neuron.operating_range`; 1 for the dimensionless LIF family, 0.63 nA
    for AdEx, ...) and record it as the stage's ``weight_scale``, the unit the optimizer steps in
    (:func:`snnrun.optim.unit_groups`). Explicit inits (uniform, normal, constant) are taken as given,
    in the model's unit, with ``weight_scale`` 1."""
    drive = float(neuron.operating_range().drive)
    for stage in projection.stages:
        p, weight = getattr(stage, "params", None), getattr(stage, "weight", None)
        if getattr(p, "init", None) == "kaiming" and isinstance(weight, torch.nn.Parameter):
            stage.weight_scale = drive
            if drive != 1.0:
                with torch.no_grad():
                    weight.mul_(drive)
                    constrain(weight, p)


def _neuron_node(node, default, key):
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


def _apply_sign(spec, sign: str, source: str, skey: str):
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


def _build_projection(name, p: ProjectionParams, shapes, dt, key, steps: int = 1,
                      sign: str | None = None) -> Projection:
    specs = p.synapse if isinstance(p.synapse, (list, tuple)) else [p.synapse]
    shape = shapes[p.source]
    stages = []
    for i, spec in enumerate(specs):
        skey = f"{key}.synapse" + (f"[{i}]" if isinstance(p.synapse, (list, tuple)) else "")
        if sign is not None:
            spec = _apply_sign(spec, sign, p.source, skey)
        last = i == len(specs) - 1
        try:
            stage = SYNAPSES.build(spec, skey, in_shape=shape, target_shape=shapes[p.target] if last else None,
                                   dt=dt, time_steps=steps)
        except ShapeError as err:
            raise ShapeError(f"{skey}: projection '{name}' ({p.source} -> {p.target}): {err}") from None
        except ConfigError as err:
            text = str(err)
            raise ConfigError(text if text.startswith(skey) else f"{skey}.{text}") from None
        shape = stage.out_shape
        stages.append(stage)
    if tuple(shape) != tuple(shapes[p.target]):
        raise ShapeError(f"{key}: projection '{name}' ({p.source} -> {p.target}) produces shape {list(shape)} "
                         f"but population '{p.target}' has shape {list(shapes[p.target])}")
    return Projection(name, p.source, p.target, stages)
