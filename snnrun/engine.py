r"""Per-sample simulation of a whole network, with local learning, on the compiled step engine
(:mod:`snnrun.kernels.step_engine`) when every component declares that the engine runs it, else on
the torch reference (:class:`snnrun.network.Network` stepping the neuron modules, the local learners
called from ``network.step_hook``); both give the same results.

Capability is declared by the components, never recognised from a topology:

- a neuron class sets ``engine_model`` (``"lif"``, ``"if"``, ``"ifsoftreset"``, ``"diehlandcook"``,
  ``"alif"``, ``"adex"``, ``"izh"``): its dynamics are exactly that model's pure step. Like
  ``fused_scan`` the declaration is per class and not inherited (a subclass that changes the
  dynamics, e.g. ``plif``, does not run on the engine by accident);
- a synapse class sets ``engine_synapse`` (``"dense"``, ``"recurrent"``, ``"one_to_one"``,
  ``"lateral_inhibition"``), read from the class's own ``__dict__`` (not inherited);
- a learner class sets ``engine_rule`` (``"stdp"``, ``"noop"``), read the same way (the
  reward-modulated subclasses of STDP do not inherit it).

Then the options of each component are checked against what the engine implements
(:data:`_MODEL_CHECKS`, :func:`_rule_options`): escape noise (stochastic thresholds), a spike function
whose forward is not the Heaviside step, soft boundaries of a rule, normalisation every step, a
projection of several stages, a network not in float64, … :func:`engine_support` returns the first
reason, naming the population, projection or learner and the component or option, or None.

:class:`CompiledNetwork` is what a per-sample task (``diehl_cook``) drives:
``sample(spikes, learn) -> spike counts of the output population(s)``, ``sync()`` (the engine's
weights and persistent state θ into the torch modules), ``reload()`` (back, after a checkpoint was
loaded into the modules). ``backend`` says which path runs; every sample records it
(``snnrun.kernels.report()``, kernel ``step_engine``: ``compiled`` or ``reference``).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch

from .errors import ConfigError
from .kernels import step_engine as kernel

#: model name (a class's ``engine_model``) -> code in csrc/step_engine.cpp
MODEL_CODES = {"lif": 1, "if": 1, "ifsoftreset": 1, "diehlandcook": 2, "alif": 3, "adex": 4, "izh": 5}
#: synapse name (a class's ``engine_synapse``) -> projection kind in csrc/step_engine.cpp
SYNAPSE_KINDS = {"dense": 1, "recurrent": 1, "one_to_one": 2, "lateral_inhibition": 3}
#: rule name (a learner class's ``engine_rule``)
RULES = ("stdp", "noop")

_LEAK, _EXACT, _HARD, _ONE_SPIKE, _LEARN_THETA = 1, 2, 4, 8, 16


def _declared(obj, attribute: str):
    """The capability ``obj``'s own class declares (its ``__dict__``; never inherited)."""
    return vars(type(obj)).get(attribute)


def _name(obj) -> str:
    return getattr(type(obj), "registry_name", None) or type(obj).__name__


def _step_forward(spike_fn) -> bool:
    """Whether ``spike_fn``'s forward is the Heaviside step ``x >= 0`` (every surrogate's is)."""
    from .surrogate import Heaviside, Surrogate

    call = type(spike_fn).__call__
    return call is Surrogate.__call__ or call is Heaviside.__call__


def _check_spiking(neuron) -> str | None:
    p = neuron.params
    if getattr(p, "escape_noise", False):
        return "escape_noise: true (stochastic thresholds) is not implemented by the step engine"
    if getattr(p, "reset", "hard") not in ("hard", "soft"):
        return f"reset: {p.reset!r} is not implemented by the step engine"
    if getattr(p, "integration", "euler") not in ("euler", "exact"):
        return f"integration: {p.integration!r} is not implemented by the step engine"
    if not _step_forward(neuron.spike_fn):
        return f"spike function {type(neuron.spike_fn).__name__} has no Heaviside forward"
    return None


#: per engine model: a check of the params its engine code supports (None: all of them)
_MODEL_CHECKS = {name: _check_spiking for name in MODEL_CODES}


def _population_reason(name: str, pop) -> str | None:
    neuron = pop.neuron
    model = _declared(neuron, "engine_model")
    if model not in MODEL_CODES:
        return (f"network.populations.{name}: neuron model '{_name(neuron)}' is not supported by the step engine "
                f"(no engine_model declared)")
    reason = _MODEL_CHECKS[model](neuron)
    if reason:
        return f"network.populations.{name}: neuron model '{_name(neuron)}': {reason}"
    return None


def _projection_reason(name: str, proj) -> str | None:
    key = f"network.projections.{name}"
    if len(proj.stages) != 1:
        kinds = ", ".join(_name(s) for s in proj.stages)
        return f"{key}: a chain of {len(proj.stages)} synapse stages ({kinds}) is not supported by the step engine"
    stage = proj.stages[0]
    kind = _declared(stage, "engine_synapse")
    if kind not in SYNAPSE_KINDS:
        return f"{key}: synapse '{_name(stage)}' is not supported by the step engine (no engine_synapse declared)"
    return None


def _rule_options(learner, target) -> str | None:
    """What of ``learner``'s options on ``target`` the engine does not implement, or None."""
    p = learner.params
    c = learner.constants(target)
    if c.boundary == "soft" and c.w_min is not None and c.w_max is not None:
        return "boundary: soft is not implemented by the step engine"
    if p.w_norm is not None and p.norm_every != "sample":
        return f"norm_every: {p.norm_every!r} is not implemented by the step engine (only 'sample')"
    if c.mode not in ("nearest", "all_to_all"):
        return f"mode: {c.mode!r} is not implemented by the step engine"
    if c.weight_dependence not in ("additive", "multiplicative"):
        return f"weight_dependence: {c.weight_dependence!r} is not implemented by the step engine"
    if target.before:
        return f"projection '{target.name}' has stages before its weight"
    if _declared(target.stage, "engine_synapse") not in ("dense", "recurrent"):
        return f"projection '{target.name}' ({_name(target.stage)}) is not a dense weight"
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
        reason = _projection_reason(name, proj)
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
            reason = _rule_options(learner, target)
            if reason:
                return f"{key}: learner '{_name(learner)}': {reason}"
    return None


def _flags(p, **extra) -> int:
    flags = 0
    if getattr(p, "reset", "hard") == "hard":
        flags |= _HARD
    if getattr(p, "integration", "euler") == "exact":
        flags |= _EXACT
    for bit, on in extra.items():
        if on:
            flags |= {"leak": _LEAK, "one_spike": _ONE_SPIKE, "learn_theta": _LEARN_THETA}[bit]
    return flags


def _neuron_plan(neuron, dt: float) -> tuple[list[float], int, int, int]:
    """(float params, flags, refractory steps, extra) of a population's model, in the layout its
    case of csrc/step_engine.cpp reads (each number computed as the pure step computes it)."""
    from .neurons.base import refractory_steps
    from .surrogate import threshold_span

    model, p = _declared(neuron, "engine_model"), neuron.params
    if model in ("lif", "if", "ifsoftreset"):
        decay = math.exp(-dt / p.tau_m)
        floats = [p.r, p.v_rest, p.v_th, p.v_reset, dt / p.tau_m, decay, 1 - decay, threshold_span(p.v_th, p.v_rest),
                  p.v_th - p.v_reset]
        return floats, _flags(p, leak=model == "lif"), refractory_steps(p.refractory, dt), 0
    if model == "diehlandcook":
        floats = [p.v_rest, math.exp(-dt / p.tau_m), math.exp(-dt / p.tau_theta), p.r, p.v_th, p.v_reset,
                  p.theta_plus, threshold_span(p.v_th, p.v_rest)]
        return (floats, _flags(p, one_spike=p.one_spike, learn_theta=p.learn_theta),
                refractory_steps(p.refractory, dt), 0)
    if model == "alif":
        decay, rho = math.exp(-dt / p.tau_m), math.exp(-dt / p.tau_a)
        floats = [p.r, p.v_rest, p.v_th, p.v_reset, dt / p.tau_m, decay, 1 - decay, p.beta, rho, 1 - rho,
                  threshold_span(p.v_th, p.v_rest)]
        return floats, _flags(p), refractory_steps(p.refractory, dt), 0
    if model == "adex":
        floats = [p.g_l * p.delta_t, p.v_peak, p.v_t, p.delta_t, -p.g_l, p.e_l, p.r, p.c_m, dt, dt / p.tau_w, p.a,
                  p.v_reset, p.v_peak - p.e_l, p.b]
        return floats, _HARD, refractory_steps(p.refractory, dt), 0
    if model == "izh":
        from .neurons.nonlinear import izh_substeps, izhikevich_abcd

        a, b, c, d = izhikevich_abcd(p)
        k = izh_substeps(dt, p.substep)
        floats = [dt / k, p.r, p.v_peak, dt * a, 0.0, b, c, d, p.v_peak - p.v_init, p.v_init]
        return floats, _HARD, 0, k
    raise ValueError(f"no engine plan for model {model!r}")


def _rule_plan(learner, target) -> tuple[list[int], list[float]]:
    """(int fields after the projection, floats) of one learner's rule on one projection."""
    c = learner.constants(target)
    noop = _declared(learner, "engine_rule") == "noop"
    multiplicative = c.weight_dependence == "multiplicative" and not noop
    # the reference computes (lr_post·A+·f+)·ltp: f+ = 1.0 (additive) leaves lr_post·A+ unchanged
    kp = 0.0 if noop else c.lr_post * c.a_plus
    km = 0.0 if noop else c.lr_pre * c.a_minus
    hi = c.w_max if c.w_max is not None else 1.0
    lo = c.w_min if c.w_min is not None else 0.0
    ints = [int(c.mode == "all_to_all"), int(c.order == "traces_first"), int(multiplicative),
            int(c.w_min is not None), int(c.w_max is not None)]
    floats = [c.decay_pre, c.decay_post, kp, km, c.w_min if c.w_min is not None else 0.0,
              c.w_max if c.w_max is not None else 0.0, c.decay_weight, hi, lo]
    return ints, floats


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
            values, flags, refrac, extra = _neuron_plan(pop.neuron, net.dt)
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
            stage = proj.stages[0]
            kind = _declared(stage, "engine_synapse")
            weight = bias = -1
            skip_diag, fo = 0, len(floats)
            if kind in ("dense", "recurrent"):
                copy = stage.weight.detach().t().contiguous().clone()
                self._copies.append((stage.weight, copy, True))
                self._engine_weights[name] = (copy, True)
                weight = add(copy)
                if stage.bias is not None:
                    bias = add(stage.bias.detach().reshape(-1).contiguous())
                skip_diag = int(kind == "recurrent" and not stage.params.self_connections)
            elif kind == "one_to_one":
                weight = add(stage.weight.detach().reshape(-1).contiguous())
            else:
                floats.append(float(stage.params.weight))
            weight_slot[name] = weight
            projs.append([SYNAPSE_KINDS[kind], self.pop_index[proj.source], self.pop_index[proj.target],
                          int(proj.recurrent), weight, bias, skip_diag, fo])
        proj_index = {name: i for i, name in enumerate(net.projections)}
        rules, self._norms = [], []
        for learner in self.learners:
            for target in learner.targets.values():
                ints, values = _rule_plan(learner, target)
                rules.append([1, proj_index[target.name], *ints, len(floats)])
                floats += [float(v) for v in values]
                if learner.params.w_norm is not None:
                    self._norms.append((tensors[weight_slot[target.name]], float(learner.params.w_norm)))
        self._tensors = tensors
        self._pops = torch.tensor(pops, dtype=torch.int64).reshape(-1, 8)
        self._projs = torch.tensor(projs, dtype=torch.int64).reshape(-1, 8)
        self._rules = torch.tensor(rules, dtype=torch.int64).reshape(-1, 8)
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
            for wt, total in self._norms:
                wt.copy_(rules.normalise(wt.t().contiguous(), total).t())

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
        Returns (spike counts int64 [n] per population, rasters uint8 [T, n] per population if ``record``)."""
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
        counts = {name: s.sum(0).to(torch.int64) for name, s in spikes.items()}
        rasters = {name: (s != 0).to(torch.uint8) for name, s in spikes.items()} if record else {}
        return counts, rasters

    def run_batch(self, spikes) -> dict[str, torch.Tensor]:
        """Simulate independent samples without learning: ``spikes`` [B, T, n_in] (0/1; or a dict per
        input population). Returns the spike counts int64 [B, n] per population, each sample's
        those :meth:`run` gives it with ``learn=False``. The engine spreads the samples over torch's
        intra-op threads; the reference runs them as one batch of the torch network."""
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
            return {name: s.reshape(steps, batch, -1).sum(0).to(torch.int64) for name, s in out.spikes.items()}
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

    def sync(self) -> None:
        """Write the engine's weights and persistent state (θ) into the network's modules."""
        if self.backend != "compiled":
            return
        with torch.no_grad():
            for module_tensor, copy, transposed in self._copies:
                module_tensor.copy_((copy.t() if transposed else copy).reshape(module_tensor.shape))

    def reload(self) -> None:
        """Copy the modules' weights and θ into the engine (after a checkpoint was loaded into them)."""
        if self.backend != "compiled":
            return
        with torch.no_grad():
            for module_tensor, copy, transposed in self._copies:
                source = module_tensor.detach()
                copy.copy_(source.t() if transposed else source.reshape(-1))

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
