r"""Per-sample simulation of a whole network, with local learning, on the compiled step engine
(:mod:`snnrun.kernels.step_engine`) when every component declares that the engine runs it, else on
the torch reference (:class:`snnrun.network.Network` stepping the neuron modules, the local learners
called from ``network.step_hook``); both give the same results.

Capability is declared by the components, never recognised from a topology:

- a neuron class sets ``engine_model`` (``"lif"``, ``"if"``, ``"ifsoftreset"``, ``"plif"`` (with
  its current learned τ), ``"clif"``, ``"diehlandcook"``, ``"alif"``, ``"adex"``, ``"izh"``,
  ``"qif"``, ``"glif"`` (levels 1–5), ``"leaky"``): its dynamics are exactly that model's pure step.
  Like ``fused_scan`` the declaration is per class and not inherited (a subclass that changes the
  dynamics does not run on the engine by accident). ``leaky`` is non-spiking: its output is its
  potential, so no projection may read it and no rule train a projection into it; its "counts"
  are ``Σ_t v(t)`` (float64, summed in step order) and its raster the potential [T, n] (float64);
- a synapse class sets ``engine_synapse`` (``"dense"``, ``"recurrent"``, ``"one_to_one"``,
  ``"lateral_inhibition"``, ``"sparse"`` (frozen: local rules do not train it), ``"delayed_dense"``
  (frozen likewise), ``"delay"``, ``"conv2d"``), read from the class's own ``__dict__`` (not
  inherited). A projection is one such synapse, or a ``delay`` followed by one;
- a learner class sets ``engine_rule`` (``"stdp"``, ``"noop"`` — on dense, recurrent or conv2d
  weights —, ``"mstdp"``, ``"mstdpet"`` — dense —), read the same way. The reward rules' reward
  arrives after the sample, from the decoder: the engine accumulates what the learner's
  ``end_sample`` reads (Σ of the pair terms, or of the eligibility trace; :meth:`CompiledNetwork.run`
  hands them to the learner) and :meth:`CompiledNetwork.end_sample` calls the learner's own.

Then the options of each component are checked against what the engine implements
(:data:`snnrun.engine_plans.MODEL_CHECKS`, :func:`~snnrun.engine_plans.rule_options`): escape noise
(stochastic thresholds), a spike function whose forward is not the Heaviside step, soft boundaries of STDP,
normalisation every step, a projection of other stages than a delay and one synapse, a rule on a
projection with stages before its weight, a network not in float64, … :func:`engine_support`
returns the first reason, naming the population, projection or learner and the component or
option, or None.

:class:`CompiledNetwork` is what a per-sample task (``diehl_cook``) drives:
``sample(spikes, learn) -> spike counts of the output population(s)``, ``end_sample(scores, target)``
(the learners' end of a sample: a reward rule's update), ``sync()`` (the engine's
weights and persistent state θ into the torch modules), ``reload()`` (back, after a checkpoint was
loaded into the modules). ``backend`` says which path runs; every sample records it
(``snnrun.kernels.report()``, kernel ``step_engine``: ``compiled`` or ``reference``). The plan rows
of each component are built by :mod:`snnrun.engine_plans`.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch

from .engine_plans import (MODEL_CHECKS, MODEL_CODES, PROJ_FIELDS, RULE_CODES, RULE_FIELDS, RULES, SYNAPSE_KINDS,
                           conv_geometry, declared as _declared, name_of as _name, neuron_plan, row_major,
                           rule_options, rule_plan, sparse_by_source)
from .errors import ConfigError
from .kernels import step_engine as kernel


def _spiking(pop) -> bool:
    return pop.is_input or getattr(pop.neuron, "spiking", True)


def _activity(output: torch.Tensor, spiking: bool) -> torch.Tensor:
    """A population's activity over the steps (dim 0) of its output: the spike counts (int64), or for
    a non-spiking population Σ_t v(t) (float64), summed step after step as the engine sums it."""
    if spiking:
        return output.sum(0).to(torch.int64)
    total = torch.zeros(output.shape[1:], dtype=torch.float64)
    for v in output.to(torch.float64).unbind(0):
        total = total + v
    return total


def _population_reason(name: str, pop) -> str | None:
    neuron = pop.neuron
    model = _declared(neuron, "engine_model")
    if model not in MODEL_CODES:
        return (f"network.populations.{name}: neuron model '{_name(neuron)}' is not supported by the step engine "
                f"(no engine_model declared)")
    reason = MODEL_CHECKS[model](neuron)
    if reason:
        return f"network.populations.{name}: neuron model '{_name(neuron)}': {reason}"
    return None


def _projection_reason(name: str, proj, network) -> str | None:
    key = f"network.projections.{name}"
    kinds = [_declared(stage, "engine_synapse") for stage in proj.stages]
    if len(kinds) > 2 or (len(kinds) == 2 and (kinds[0] != "delay" or kinds[1] == "delay")):
        names = ", ".join(_name(s) for s in proj.stages)
        return (f"{key}: a chain of {len(kinds)} synapse stages ({names}) is not supported by the step engine "
                f"(only one synapse, or a delay followed by one)")
    for stage, kind in zip(proj.stages, kinds):
        if kind not in SYNAPSE_KINDS:
            return f"{key}: synapse '{_name(stage)}' is not supported by the step engine (no engine_synapse declared)"
    stage = proj.stages[-1]
    if kinds[-1] == "sparse" and not row_major(stage.indices, stage.shape2d[1]):
        return f"{key}: synapse 'sparse': its indices are not in row-major order (the order the reference sums in)"
    if not _spiking(network.populations[proj.source]):
        return (f"{key}: its source '{proj.source}' is non-spiking (its output is a potential); the step engine's "
                f"projections carry spikes")
    return None


def engine_support(network, learners: Sequence = ()) -> str | None:
    """Why the compiled step engine cannot run ``network`` with the local ``learners`` (a message
    naming the population, projection or learner and the unsupported component or option), or None."""
    for name, tensor in list(network.named_parameters()) + list(network.named_buffers()):
        if tensor.is_floating_point() and tensor.dtype != torch.float64:
            return (f"network: the step engine simulates float64, but '{name}' is {tensor.dtype} "
                    f"(call network.double())")
        if tensor.device.type != "cpu":
            return f"network: the step engine runs on the CPU, but '{name}' is on {tensor.device}"
    for name in network.order:
        pop = network.populations[name]
        if not pop.is_input:
            reason = _population_reason(name, pop)
            if reason:
                return reason
    for name, proj in network.projections.items():
        reason = _projection_reason(name, proj, network)
        if reason:
            return reason
    for learner in learners:
        key = getattr(learner, "key", "learner")
        if not getattr(learner, "local", False):
            return f"{key}: learner '{_name(learner)}' is not a local rule; the step engine runs local rules only"
        rule = _declared(learner, "engine_rule")
        if rule not in RULES:
            return f"{key}: learner '{_name(learner)}' is not supported by the step engine (no engine_rule declared)"
        for target in learner.targets.values():
            reason = rule_options(learner, target, _spiking(network.populations[target.proj.target]))
            if reason:
                return f"{key}: learner '{_name(learner)}': {reason}"
    return None


class CompiledNetwork:
    """One network (and its local learners) simulated sample by sample: on the compiled step engine
    (``backend="compiled"``) or the torch reference (``"reference"``); ``"auto"`` takes the engine when
    :func:`engine_support` accepts the network and the extension builds here.

    The engine keeps its own copies of the weights (dense ones transposed) and of the persistent
    state (the ``diehlandcook`` thresholds θ): :meth:`sync` writes them into the torch modules,
    :meth:`reload` reads them back. On the reference path the modules are updated directly."""

    def __init__(self, network, learners: Sequence = (), backend: str = "auto"):
        if backend not in ("auto", "compiled", "reference"):
            raise ValueError(f"backend: expected auto, compiled or reference, got {backend!r}")
        self.network = network
        self.learners = [lr for lr in learners if getattr(lr, "local", False)]
        self.reason = engine_support(network, self.learners)
        if backend == "compiled" and self.reason:
            raise ConfigError(self.reason)
        if backend == "auto":
            backend = "compiled" if self.reason is None and kernel.available() else "reference"
        self.backend = backend
        self.outputs = list(network.outputs)
        if backend == "compiled":
            self._build_plan()

    # --- the plan ---------------------------------------------------------------------
    def _build_plan(self) -> None:
        net = self.network
        tensors: list[torch.Tensor] = []
        floats: list[float] = []
        self._copies: list[tuple[torch.Tensor, torch.Tensor, bool]] = []  # (module tensor, engine tensor, transposed)

        def add(t: torch.Tensor) -> int:
            tensors.append(t)
            return len(tensors) - 1

        self.pop_index = {name: i for i, name in enumerate(net.order)}
        self.pop_size = {name: math.prod(net.populations[name].shape) for name in net.order}
        self.input_slots: dict[str, int] = {}
        pops = []
        for name in net.order:
            pop, n = net.populations[name], self.pop_size[name]
            if pop.is_input:
                self.input_slots[name] = add(torch.zeros(0, dtype=torch.uint8))
                pops.append([0, n, 0, -1, self.input_slots[name], 0, 0, 0])
                continue
            values, flags, refrac, extra = neuron_plan(pop.neuron)
            persist = -1
            if _declared(pop.neuron, "engine_model") == "diehlandcook":
                theta = pop.neuron.theta
                copy = theta.detach().reshape(-1).clone()
                self._copies.append((theta, copy, False))
                persist = add(copy)
            model = MODEL_CODES[_declared(pop.neuron, "engine_model")]
            pops.append([model, n, len(floats), persist, -1, refrac, flags, extra])
            floats += [float(v) for v in values]
        projs, weight_slot = [], {}
        self._engine_weights: dict[str, tuple[torch.Tensor, bool]] = {}
        for name, proj in net.projections.items():
            stage = proj.stages[-1]
            kind = _declared(stage, "engine_synapse")
            weight = bias = delays = aux = -1
            skip_diag, fo, max_delay, aux_delay = 0, len(floats), 0, 0
            first = proj.stages[0]
            if _declared(first, "engine_synapse") == "delay":  # axonal delays (the delay stage alone: kind 6)
                delays, max_delay = add(first.delays.detach().to(torch.int64).reshape(-1).contiguous()), first.max_steps
            if kind in ("dense", "recurrent", "conv2d"):  # learnable: the engine's copy (dense transposed)
                transposed = kind != "conv2d"
                copy = (stage.weight.detach().t() if transposed else stage.weight.detach()).contiguous().clone()
                self._copies.append((stage.weight, copy, transposed))
                self._engine_weights[name] = (copy, transposed)
                weight = add(copy)
                if stage.bias is not None:
                    bias = add(stage.bias.detach().reshape(-1).contiguous())
                skip_diag = int(kind == "recurrent" and not stage.params.self_connections)
                if kind == "conv2d":
                    aux = add(conv_geometry(stage))
            elif kind in ("one_to_one", "sparse"):  # frozen: read where the module keeps them
                weight = add(stage.weight.detach().reshape(-1).contiguous())
                if kind == "sparse":
                    aux = add(sparse_by_source(stage.indices, stage.shape2d[1]))
            elif kind == "delayed_dense":  # frozen: transposed, as the delays
                weight = add(stage.weight.detach().t().contiguous().clone())
                aux, aux_delay = add(stage.delays.detach().to(torch.int64).t().contiguous()), stage.max_steps
            elif kind == "lateral_inhibition":
                floats.append(float(stage.params.weight))
            weight_slot[name] = weight
            projs.append([SYNAPSE_KINDS[kind], self.pop_index[proj.source], self.pop_index[proj.target],
                          int(proj.recurrent), weight, bias, skip_diag, fo, delays, max_delay, aux, aux_delay])
        proj_index = {name: i for i, name in enumerate(net.projections)}
        rules, self._norms, self._accumulators = [], [], []
        outputs = add(torch.tensor([self.pop_index[o] for o in self.outputs], dtype=torch.int64))
        for learner in self.learners:
            code = RULE_CODES[_declared(learner, "engine_rule")]
            for target in learner.targets.values():
                ints, values = rule_plan(learner, target)
                acc = delivery = -1
                if code != 1:  # reward rules: Σ ltp, Σ ltd [m, n] (the weight's transposed layout)
                    acc = add(torch.zeros_like(tensors[weight_slot[target.name]]))
                    add(torch.zeros_like(tensors[acc]))
                    self._accumulators.append((learner, target, tensors[acc], tensors[acc + 1]))
                    delivery = outputs if learner.params.reward_at == "output_spikes" else -1
                rules.append([code, proj_index[target.name], *ints, len(floats), acc, delivery])
                floats += [float(v) for v in values]
                if learner.params.w_norm is not None:
                    self._norms.append((tensors[weight_slot[target.name]], float(learner.params.w_norm),
                                        self._engine_weights[target.name][1]))
        self._tensors = tensors
        self._pops = torch.tensor(pops, dtype=torch.int64).reshape(-1, 8)
        self._projs = torch.tensor(projs, dtype=torch.int64).reshape(-1, PROJ_FIELDS)
        self._rules = torch.tensor(rules, dtype=torch.int64).reshape(-1, RULE_FIELDS)
        self._floats = torch.tensor(floats, dtype=torch.float64)

    # --- running ----------------------------------------------------------------------
    def _inputs(self, spikes, lead: int = 1) -> dict[str, torch.Tensor]:
        """The spike trains per input population, flattened after their ``lead`` leading dimensions."""
        net = self.network
        if isinstance(spikes, torch.Tensor):
            if len(net.inputs) != 1:
                raise ConfigError(f"network has inputs {net.inputs}; pass a dict of spike trains")
            spikes = {net.inputs[0]: spikes}
        return {name: x.reshape(*x.shape[:lead], -1) for name, x in spikes.items()}

    def begin_sample(self) -> None:
        """Before a learning sample on the engine: each learner's ``w_norm`` (rules.normalise, on the
        weights in their module layout, as ``LocalLearner.begin_sample`` does)."""
        from .learning import rules

        with torch.no_grad():
            for wt, total, transposed in self._norms:
                wt.copy_(rules.normalise(wt.t().contiguous(), total).t() if transposed else rules.normalise(wt, total))

    def _load_inputs(self, inputs: dict[str, torch.Tensor]) -> None:
        """Place the binary spike trains in the engine's input slots (uint8, contiguous)."""
        for name, x in inputs.items():
            if x.dtype != torch.bool:
                if not bool(((x == 0) | (x == 1)).all()):
                    raise ValueError(f"input '{name}': the step engine takes binary spike trains (0/1)")
                x = x != 0
            self._tensors[self.input_slots[name]] = x.contiguous().view(torch.uint8)

    def run(self, spikes, learn: bool, record: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Simulate one sample: ``spikes`` [T, n_in] (0/1; or a dict per input population).
        Returns (spike counts int64 [n] per population, rasters uint8 [T, n] per population if ``record``);
        for a non-spiking population (``leaky``) Σ_t v(t) float64 [n] and its potential float64 [T, n]."""
        inputs = self._inputs(spikes)
        if self.backend == "reference":
            return self._reference(inputs, learn, record)
        steps = next(iter(inputs.values())).shape[0]
        self._load_inputs(inputs)
        if learn:
            self.begin_sample()
        result = kernel.run_sample(self._tensors, self._pops, self._projs, self._rules, self._floats, steps,
                                   learn, record)
        order = self.network.order
        counts = dict(zip(order, result[:len(order)]))
        if learn:  # the reward rules' accumulation, where the learner's end_sample reads it (batch 1)
            spikes = float(sum(int(counts[name].sum()) for name in self.outputs))
            for learner, target, acc_ltp, acc_ltd in self._accumulators:
                target.acc_ltp, target.acc_ltd = acc_ltp.t().unsqueeze(0), acc_ltd.t().unsqueeze(0)
                learner.delivery = None
                reward_at = learner.params.reward_at == "output_spikes"
                learner.delivered_spikes = torch.tensor([spikes], dtype=torch.float64) if reward_at else None
        rasters = dict(zip(order, result[len(order):])) if record else {}
        return counts, rasters

    def _reference(self, inputs, learn, record):
        kernel.ran("reference")
        net = self.network
        net.train(learn)
        net.reset()
        if learn and self.learners:
            for learner in self.learners:
                learner.begin_sample(1)

            def hook(step, now, previous):
                for learner in self.learners:
                    learner.on_step(step, now, previous)
            net.step_hook = hook
        try:
            with torch.no_grad():
                out = net({name: x.to(torch.float64).reshape(x.shape[0], 1, -1) for name, x in inputs.items()})
        finally:
            net.step_hook = None
        net.reset()  # commits θ of a learning sample
        spikes = {name: out.spikes[name][:, 0].reshape(out.spikes[name].shape[0], -1) for name in net.order}
        spiking = {name: _spiking(net.populations[name]) for name in net.order}
        counts = {name: _activity(s, spiking[name]) for name, s in spikes.items()}
        rasters = {name: (s != 0).to(torch.uint8) if spiking[name] else s.to(torch.float64).clone()
                   for name, s in spikes.items()} if record else {}
        return counts, rasters

    def run_batch(self, spikes) -> dict[str, torch.Tensor]:
        """Simulate independent samples without learning: ``spikes`` [B, T, n_in] (0/1; or a dict per
        input population). Returns the spike counts int64 [B, n] per population (Σ_t v float64 of a
        non-spiking one), each sample's those :meth:`run` gives it with ``learn=False``. The engine
        spreads the samples over torch's intra-op threads; the reference runs them as one batch of
        the torch network."""
        inputs = self._inputs(spikes, lead=2)
        batch, steps = next(iter(inputs.values())).shape[:2]
        if self.backend == "reference":
            kernel.ran("reference")
            net = self.network
            net.train(False)
            net.reset()
            with torch.no_grad():
                out = net({name: x.to(torch.float64).transpose(0, 1) for name, x in inputs.items()})
            net.reset()
            return {name: _activity(out.spikes[name].reshape(steps, batch, -1), _spiking(net.populations[name]))
                    for name in net.order}
        self._load_inputs(inputs)
        result = kernel.run_batch(self._tensors, self._pops, self._projs, self._rules, self._floats, batch, steps)
        return dict(zip(self.network.order, result))

    def sample_batch(self, spikes) -> torch.Tensor:
        """Independent samples without learning; the spike counts int64 [B, n] of the output population(s)."""
        counts = self.run_batch(spikes)
        return torch.cat([counts[name] for name in self.outputs], dim=1)

    def sample(self, spikes, learn: bool) -> torch.Tensor:
        """One sample; returns the spike counts int64 of the output population(s) (concatenated)."""
        counts, _ = self.run(spikes, learn, record=False)
        return torch.cat([counts[name] for name in self.outputs])

    def end_sample(self, scores: torch.Tensor, target: torch.Tensor) -> dict:
        """After a learning sample: every learner's ``end_sample(scores, target)`` (the decoder's scores
        [1, n] and the label; a reward rule applies its reward to what the sample accumulated, as on
        the reference path). Returns the merged logs (``reward``)."""
        accumulating = self.backend == "compiled" and self._accumulators
        if accumulating:
            self.sync()  # the learner updates the module's weight, from its current value
        out: dict = {}
        for learner in self.learners:
            out.update(learner.end_sample(scores, target))
        if accumulating:
            with torch.no_grad():
                for _, t, _, _ in self._accumulators:
                    copy, transposed = self._engine_weights[t.name]
                    copy.copy_(t.weight.detach().t() if transposed else t.weight.detach())
        return out

    def sync(self) -> None:
        """Write the engine's weights and persistent state (θ) into the network's modules."""
        if self.backend != "compiled":
            return
        with torch.no_grad():
            for module_tensor, copy, transposed in self._copies:
                module_tensor.copy_((copy.t() if transposed else copy).reshape(module_tensor.shape))

    def reload(self) -> None:
        """Copy the modules' weights, θ and parameters (plif's learned τ) into the engine (after a
        checkpoint was loaded into them): the plan is built again from the modules."""
        if self.backend != "compiled":
            return
        with torch.no_grad():
            self._build_plan()

    def weights(self) -> Mapping[str, torch.Tensor]:
        """A copy of the current weight of every weighted projection, in the module's layout (the
        engine's own on the compiled path, the module's on the reference path)."""
        out = {}
        for name, proj in self.network.projections.items():
            w = getattr(proj.stages[-1], "weight", None)
            if isinstance(w, torch.Tensor):
                out[name] = w.detach().clone()
        for name, (copy, transposed) in getattr(self, "_engine_weights", {}).items():
            out[name] = (copy.t() if transposed else copy).reshape(out[name].shape).clone()
        return out
