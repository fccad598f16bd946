"""The network: a graph of populations (neuron groups) and projections (synapses).

Feedforward graphs run layer by layer over all T steps at once: each
projection is one batched matmul/conv over ``T·B`` samples, each population one
scan over time. Graphs with cycles run step by step; a projection that closes
a cycle (found by depth-first search from the inputs) carries the previous
step's spikes. Populations without incoming projections are inputs, fed by the encoder.

With ``network.recompute_steps: C`` a forward pass that builds a graph for the backward runs in
chunks of C steps under activation checkpointing (:func:`torch.utils.checkpoint.checkpoint`):
each chunk starts from the state the previous one ended in, keeps only that boundary state and
its outputs, and its activations are recomputed during the backward, so training holds one
chunk's [C, B, N] tensors instead of all T steps' for about one more forward pass. Same spikes and
gradients as without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from . import graph
from .errors import ConfigError, ShapeError
from .neurons import Neuron
from .synapses.base import constrain, has_constraints
from .topology import (NetworkParams, NetworkSpec, PopulationParams, ProjectionParams, ProjectionSpec,  # noqa: F401
                       parse_network, time_steps)


#: dtypes of synaptic products under autocast (trainer.precision=bf16); currents are cast back to float32
_REDUCED = (torch.bfloat16, torch.float16)


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

    def forward_constant(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        """The projection of an input that is the same at every step, ``x`` [B, *source_shape] (one
        step of it): the leading ``per_sample`` stages run once, their output is repeated over the
        ``steps``, the others run on all ``[steps·B, ...]`` as in :meth:`forward` (same values; the
        gradient of a repeated output is summed over the steps)."""
        k = 0
        while k < len(self.stages) and getattr(self.stages[k], "per_sample", False):
            x = self.stages[k](x)
            k += 1
        x = x.unsqueeze(0).expand(steps, *x.shape).reshape(steps * x.shape[0], *x.shape[1:])
        for stage in self.stages[k:]:
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


def _project(proj: Projection, pre: torch.Tensor, steps: int, batch: int) -> torch.Tensor:
    """``proj`` applied to all steps of ``pre`` [T, B, ...] at once: [T·B, ...]. An input that is the
    same at every step (a stride-0 time dimension: the ``direct`` encoder's view) goes through
    :meth:`Projection.forward_constant`."""
    if steps > 1 and pre.stride(0) == 0:
        return proj.forward_constant(pre[0], steps)
    return proj(pre.reshape(steps * batch, *pre.shape[2:]), steps)


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
                 init_rate: float | None = None, recompute_steps: int | None = None):
        super().__init__()
        self.populations = nn.ModuleDict(populations)
        self.projections = nn.ModuleDict(projections)
        self.outputs = [output] if isinstance(output, str) else list(output)
        # the key the decoder reads: a population, or "a+b" for the concatenation of several
        self.output = "+".join(self.outputs)
        self.dt = dt
        self.time_steps = time_steps
        self.inputs = [n for n, p in self.populations.items() if p.is_input]
        edges = [(p.name, p.source, p.target) for p in projections.values()]
        self.order, back_edges = graph.order(list(self.populations), edges, self.inputs)
        #: populations on a common cycle: stepped together one step at a time (the others run layer by layer)
        self.cycles = graph.cyclic_groups(list(self.populations), edges)
        for name in back_edges:
            self.projections[name].recurrent = True
        self.incoming = {n: [p for p in self.projections.values() if p.target == n] for n in self.populations}
        self.feedforward = not back_edges
        if mode == "layer" and not self.feedforward:
            raise ConfigError(f"network.mode: 'layer' needs a feedforward graph, but projection(s) "
                              f"{', '.join(back_edges)} close a cycle; use 'step' or 'auto'")
        self.mode = mode
        self.recompute_steps = recompute_steps
        #: populations besides the outputs whose spikes a loss differentiates (the rate regulariser's);
        #: with ``recompute_steps`` the others come back detached, as bool spikes
        self.differentiated: set[str] = set()
        self.init_rate = init_rate  # Hz: the runner calibrates the initial weights to it (snnrun.calibrate)
        self.step_hook = None  # callable(step, now, previous) after each step; set by local learners
        #: whether a population's fused neuron scan may overwrite the current its single incoming
        #: projection just computed (one [T, B, N] tensor less per layer). Set False before running the
        #: network if your own code (e.g. a forward hook) keeps references to projection outputs.
        self.reuse_currents = True
        self._constrained: list | None = None  # projections with weight constraints (apply_constraints)

    @property
    def recompute_steps(self) -> int | None:
        """Chunk length (steps) of training forward passes under activation checkpointing, or None
        (``network.recompute_steps``); checked on assignment: stages that work over all steps at once
        (delays, dropout masks, batch statistics) cannot run in chunks."""
        return self._recompute_steps

    @recompute_steps.setter
    def recompute_steps(self, steps: int | None) -> None:
        if steps is not None:
            if int(steps) != steps or steps < 1:
                raise ConfigError(f"network.recompute_steps: expected a whole number of steps >= 1 or null, "
                                  f"got {steps!r}")
            timed = [f"'{proj.name}' ({type(stage).__name__.lower()})" for proj in self.projections.values()
                     for stage in proj.stages if getattr(stage, "temporal", False)]
            if timed:
                raise ConfigError(f"network.recompute_steps: the stages of projection {', '.join(timed)} work over "
                                  f"all steps at once and cannot run in chunks; set network.recompute_steps=null")
        self._recompute_steps = None if steps is None else int(steps)

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
        steps = next(iter(inputs.values())).shape[0]
        if self.recompute_steps and steps > self.recompute_steps and self.step_hook is None \
                and torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters()):
            out = self._run_chunks(inputs, record, steps, self.recompute_steps)
        else:
            out = self._run(inputs, record, {})
        if len(self.outputs) > 1:  # several outputs: the readout is their activity side by side
            out.spikes[self.output] = torch.cat([out.spikes[n].flatten(2) for n in self.outputs], 2)
            if joint:
                out.traces[self.output] = {v: torch.cat([out.traces[n][v].flatten(2) for n in self.outputs], 2)
                                           for v in joint}
        return out

    def _run(self, inputs, record, carry: dict) -> NetworkOutput:
        """All steps of ``inputs`` on the path the graph and mode take; ``carry`` holds the last step's
        spikes of stepped populations for the next call (the projections that close a cycle read them)."""
        if self.mode == "step" or self.step_hook is not None:
            return self._run_steps(inputs, record, carry)
        if self.feedforward:
            return self._run_layers(inputs, record)
        return self._run_mixed(inputs, record, carry)

    def _run_chunks(self, inputs, record, steps: int, size: int) -> NetworkOutput:
        """:meth:`_run` over chunks of ``size`` steps, each checkpointed: it gets the state the previous
        chunk ended in (neuron states, last spikes on cycles) and returns the outputs' spikes, the
        recorded traces, the spike counts and its final state; the spikes of the other populations
        come back detached (bool for spiking ones), unless listed in :attr:`differentiated`. Forward hooks
        on the modules run again when the backward recomputes a chunk."""
        populations = [n for n in self.order if not self.populations[n].is_input]
        keep = set(self.outputs) | self.differentiated

        neurons = [self.populations[n].neuron for n in populations]

        def chunk(part, states, carry):
            # side-effect free, since the backward calls it again: the neurons' states are put back
            # (the recomputation may stop early, by an exception, once it has what the backward needs)
            before = [(neuron.state, neuron.spike_counts) for neuron in neurons]
            try:
                for neuron, state in zip(neurons, states):
                    neuron.state = state
                carry = dict(carry)
                out = self._run(part, record, carry)
                spikes = {n: (s if n in keep else s.detach().bool() if self.populations[n].neuron.spiking
                              else s.detach()) for n, s in out.spikes.items() if n in populations}
                counts = {n: c.detach() for n, c in out.counts.items()}
                return spikes, out.traces, counts, tuple(neuron.state for neuron in neurons), carry
            finally:
                for neuron, (state, counted) in zip(neurons, before):
                    neuron.state, neuron.spike_counts = state, counted

        parts, states, carry = [], tuple(neuron.state for neuron in neurons), {}
        for start in range(0, steps, size):
            part = {n: x[start:start + size] for n, x in inputs.items()}
            spikes, traces, counts, states, carry = checkpoint(chunk, part, states, carry, use_reentrant=False)
            parts.append((spikes, traces, counts))
        for neuron, state in zip(neurons, states):
            neuron.state, neuron.spike_counts = state, None  # the counts are per chunk: see NetworkOutput.counts
        spikes = dict(inputs)
        spikes.update({n: torch.cat([p[0][n] for p in parts]) for n in parts[0][0]})
        traces = {n: {v: torch.cat([p[1][n][v] for p in parts]) for v in vs} for n, vs in parts[0][1].items()}
        counts = {n: sum(p[2][n] for p in parts) for n in parts[0][2] if all(n in p[2] for p in parts)}
        return NetworkOutput(spikes, traces, counts)

    def _current(self, name: str, spikes: Mapping[str, torch.Tensor], steps: int,
                 batch: int) -> tuple[torch.Tensor, bool]:
        """The summed input current of population ``name``, and whether it is a fresh tensor
        nobody else holds (a sum, or a weighted stage's own output, unless ``reuse_currents`` is off)."""
        pop = self.populations[name]
        total = None
        for proj in self.incoming[name]:
            y = _project(proj, spikes[proj.source], steps, batch)
            total = y if total is None else total + y
        incoming = self.incoming[name]
        last = incoming[0].stages[-1]
        fresh = len(incoming) > 1 or (last.fresh_output and self.reuse_currents)
        if total.dtype in _REDUCED:  # autocast products: neurons integrate in float32
            total, fresh = total.float(), True
        return total.reshape(steps, batch, *pop.shape), fresh

    def _run_layer(self, name: str, spikes, traces, counts, record, steps: int, batch: int) -> None:
        """Population ``name`` over all steps at once, its sources complete in ``spikes``."""
        pop = self.populations[name]
        current, fresh = self._current(name, spikes, steps, batch)
        spikes[name], traces[name] = pop.neuron(current, record.get(name, ()), reuse_input=fresh)
        del current  # with reuse_input the scan may keep its memory for the backward
        if pop.neuron.spike_counts is not None:
            counts[name] = pop.neuron.spike_counts

    def _run_layers(self, inputs, record) -> NetworkOutput:
        spikes: dict[str, torch.Tensor] = dict(inputs)
        traces: dict[str, dict[str, torch.Tensor]] = {}
        counts: dict[str, torch.Tensor] = {}
        steps, batch = next(iter(inputs.values())).shape[:2]
        for name in self.order:
            if not self.populations[name].is_input:
                self._run_layer(name, spikes, traces, counts, record, steps, batch)
        return NetworkOutput(spikes, traces, counts)

    def _run_mixed(self, inputs, record, carry: dict) -> NetworkOutput:
        """A graph with cycles and no step hook: each group of populations on a common cycle is stepped
        together, the currents from outside the group computed over all steps at once beforehand;
        every other population runs layer by layer. The same equations as :meth:`_run_steps` (only
        the products of the precomputed currents are batched over the steps)."""
        spikes: dict[str, torch.Tensor] = dict(inputs)
        traces: dict[str, dict[str, torch.Tensor]] = {}
        counts: dict[str, torch.Tensor] = {}
        steps, batch = next(iter(inputs.values())).shape[:2]
        group_of = {name: group for group in self.cycles for name in group}

        def ensure(name: str) -> None:
            if name in spikes:
                return
            group = group_of.get(name, {name})
            for member in group:
                for proj in self.incoming[member]:
                    if proj.source not in group:
                        ensure(proj.source)
            loop = self._compiled_loop(name, group, record)
            if loop is not None:
                self._run_loop(name, loop, spikes, steps, batch, carry)
            elif name in group_of:
                members = [n for n in self.order if n in group]
                self._step(members, spikes, traces, record, steps, batch, precompute=True, carry=carry)
            else:
                self._run_layer(name, spikes, traces, counts, record, steps, batch)

        for name in self.order:
            ensure(name)
        return NetworkOutput(spikes, traces, counts)

    def _compiled_loop(self, name: str, group, record) -> Projection | None:
        """The self-loop of a population that is alone on its cycle when the neuron can run it compiled,
        all steps in one call (:meth:`~snnrun.neurons.lif.LIF.forward_recurrent`): one projection
        from itself with one stage that is a linear map (``linear_map``: the ``recurrent`` synapse);
        else None (the population is stepped)."""
        if len(group) != 1 or name not in group:
            return None
        neuron = self.populations[name].neuron
        loops = [proj for proj in self.incoming[name] if proj.source == name]
        if len(loops) != 1 or len(loops[0].stages) != 1 or not hasattr(loops[0].stages[0], "linear_map") \
                or not hasattr(neuron, "forward_recurrent"):
            return None
        weight = loops[0].stages[0].linear_map()[0]  # the currents are products with weights of this kind
        if torch.is_autocast_enabled(weight.device.type):  # the stepped path sums the reduced products as they come
            return None
        return loops[0] if neuron.recurrent_applies(weight, torch.is_grad_enabled(), record.get(name, ())) else None

    def _run_loop(self, name: str, loop: Projection, spikes, steps: int, batch: int, carry: dict) -> None:
        """Population ``name`` and its linear self-loop ``loop`` over all steps in one compiled call; the
        currents from outside are one product over all steps each."""
        pop = self.populations[name]
        external = None
        for proj in self.incoming[name]:
            if proj is not loop:
                y = _project(proj, spikes[proj.source], steps, batch)
                external = y if external is None else external + y
        if external is None:
            sample = next(iter(spikes.values()))
            external = torch.zeros(steps * batch, *pop.shape, device=sample.device, dtype=sample.dtype)
        if external.dtype in _REDUCED:
            external = external.float()
        weight, bias = loop.stages[0].linear_map()
        spikes[name] = pop.neuron.forward_recurrent(external.reshape(steps, batch, *pop.shape), weight, bias,
                                                    carry.get(name))
        carry[name] = spikes[name][-1]

    def _run_steps(self, inputs, record, carry: dict) -> NetworkOutput:
        spikes: dict[str, torch.Tensor] = dict(inputs)
        traces: dict[str, dict[str, torch.Tensor]] = {}
        steps, batch = next(iter(inputs.values())).shape[:2]
        self._step(self.order, spikes, traces, record, steps, batch, precompute=False, carry=carry)
        return NetworkOutput(spikes, traces)

    def _step(self, members: list[str], spikes, traces, record, steps: int, batch: int, precompute: bool,
              carry: dict) -> None:
        """Step the populations ``members`` (in network order) through all steps, one step at a time;
        an input population among them reads its step of ``spikes``. A projection from outside
        ``members`` (its source complete in ``spikes``) is applied per step, or with ``precompute``
        over all steps at once beforehand. The step hook is called after each step. A projection
        closing a cycle reads the previous step's spikes: at the first step those ``carry`` holds
        (a previous chunk's last step; none: zeros); the last step's are left in ``carry``."""
        inside = set(members)
        device, dtype = next(iter(spikes.values())).device, next(iter(spikes.values())).dtype
        external = {}
        if precompute:
            for name in members:
                for proj in self.incoming[name]:
                    if proj.source not in inside:
                        y = _project(proj, spikes[proj.source], steps, batch)
                        # one view per step (unbind: its backward stacks once; indexing would fill a
                        # [T, B, ...] gradient per step)
                        external[proj.name] = y.reshape(steps, batch, *y.shape[1:]).unbind(0)
        previous: dict[str, torch.Tensor] = {n: carry[n] for n in members if n in carry}
        out = {n: [] for n in members}
        rec = {n: {v: [] for v in record[n]} for n in members if n in record}
        for t in range(steps):
            now: dict[str, torch.Tensor] = {}
            for name in members:
                pop = self.populations[name]
                if pop.is_input:
                    now[name] = spikes[name][t]
                    continue
                total = None
                for proj in self.incoming[name]:
                    if proj.name in external:
                        y = external[proj.name][t]
                    elif proj.source not in inside:
                        y = proj(spikes[proj.source][t])
                    elif proj.recurrent:
                        pre = previous.get(proj.source)
                        if pre is None:
                            pre = torch.zeros(batch, *self.populations[proj.source].shape, device=device, dtype=dtype)
                        y = proj(pre)
                    else:
                        y = proj(now[proj.source])
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
        carry.update(previous)
        for name in members:
            if self.populations[name].is_input:
                continue
            spikes[name] = torch.stack(out[name])
            if name in rec:
                traces[name] = {v: torch.stack(x) for v, x in rec[name].items()}


def build_network(node: Mapping[str, Any] | NetworkSpec, default_neuron: Mapping[str, Any] | None,
                  input_shape: tuple[int, ...] | None, spike_fn=None, key: str = "network",
                  output_size: int | None = None) -> Network:
    """Build a :class:`Network` from the ``network`` config node or its :class:`NetworkSpec`
    (:func:`snnrun.topology.parse_network`); errors name the config path.

    A population with ``shape: null`` takes ``input_shape`` if it is an input, or ``output_size``
    neurons if it is the network's single output (the decoder's readout size)."""
    spec = node if isinstance(node, NetworkSpec) else parse_network(node, default_neuron, key)
    params = spec.params
    inputs = spec.inputs
    populations: dict[str, Population] = {}
    for name, pop in spec.populations.items():
        if name in inputs:
            shape = pop.shape if pop.shape is not None else tuple(input_shape or ())
            if len(inputs) == 1 and input_shape is not None and pop.shape is not None \
                    and math.prod(shape) != math.prod(input_shape):
                raise ShapeError(f"{pop.key}.shape: input population has shape {list(shape)} but the encoder "
                                 f"produces {list(input_shape)}")
            populations[name] = Population(name, shape, None)
            continue
        if pop.shape is not None:
            shape = pop.shape
        elif spec.outputs == (name,) and output_size is not None:
            shape = (int(output_size),)  # the readout's size: classes x the decoder's neurons per class
        else:
            raise ConfigError(f"{pop.key}.shape: missing (only input populations take their shape from the data, "
                              f"and a single output population from the decoder)")
        populations[name] = Population(name, shape, pop.neuron.build(shape=shape, dt=params.dt, spike_fn=spike_fn))
    shapes = {name: p.shape for name, p in populations.items()}
    projections = {}
    for name, proj in spec.projections.items():
        projections[name] = _build_projection(proj, shapes, params.dt, spec.time_steps)
        scale_to_target(projections[name], populations[proj.target].neuron)
    return Network(populations, projections, spec.output, params.dt, spec.time_steps, params.mode, params.init_rate,
                   params.recompute_steps)


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


def _build_projection(proj: ProjectionSpec, shapes: Mapping[str, tuple[int, ...]], dt: float,
                      steps: int) -> Projection:
    shape = shapes[proj.source]
    stages = []
    for i, stage_spec in enumerate(proj.stages):
        skey = stage_spec.key
        last = i == len(proj.stages) - 1
        try:
            stage = stage_spec.build(in_shape=shape, target_shape=shapes[proj.target] if last else None,
                                     dt=dt, time_steps=steps)
        except ShapeError as err:
            raise ShapeError(f"{skey}: projection '{proj.name}' ({proj.source} -> {proj.target}): {err}") from None
        except ConfigError as err:
            text = str(err)
            raise ConfigError(text if text.startswith(skey) else f"{skey}.{text}") from None
        shape = stage.out_shape
        stages.append(stage)
    if tuple(shape) != tuple(shapes[proj.target]):
        raise ShapeError(f"{proj.key}: projection '{proj.name}' ({proj.source} -> {proj.target}) produces shape "
                         f"{list(shape)} but population '{proj.target}' has shape {list(shapes[proj.target])}")
    return Projection(proj.name, proj.source, proj.target, stages)
