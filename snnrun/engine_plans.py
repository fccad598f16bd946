"""The plan rows of the compiled step engine, component by component: what each declared neuron
model, synapse and rule becomes in ``csrc/step_engine.cpp`` (its code, its float parameters in the
layout its case reads, each computed as the pure step computes it), and the checks of the options
that case implements. :mod:`snnrun.engine` decides from these whether a network runs on the engine
and assembles the plan.
"""

from __future__ import annotations

import math

import torch

#: model name (a class's ``engine_model``) -> code in csrc/step_engine.cpp
MODEL_CODES = {"lif": 1, "if": 1, "ifsoftreset": 1, "plif": 1, "clif": 1, "diehlandcook": 2, "alif": 3, "adex": 4,
               "izh": 5, "leaky": 6, "qif": 7, "glif": 8}
#: synapse name (a class's ``engine_synapse``) -> projection kind in csrc/step_engine.cpp (``delay``
#: alone passes the delayed spikes on; before another synapse it delays that synapse's input)
SYNAPSE_KINDS = {"dense": 1, "recurrent": 1, "one_to_one": 2, "lateral_inhibition": 3, "sparse": 4,
                 "delayed_dense": 5, "delay": 6, "conv2d": 7}
#: rule name (a learner class's ``engine_rule``) -> rule code in csrc/step_engine.cpp: STDP learns every
#: step (``noop``: with zero amplitudes); ``mstdp`` / ``mstdpet`` accumulate the pair terms the learner's
#: ``end_sample`` modulates by the reward after the sample
RULE_CODES = {"stdp": 1, "noop": 1, "mstdp": 2, "mstdpet": 3}
RULES = tuple(RULE_CODES)
#: synapses a rule may train on the engine
TRAINED = {"stdp": ("dense", "recurrent", "conv2d"), "noop": ("dense", "recurrent", "conv2d"),
           "mstdp": ("dense", "recurrent"), "mstdpet": ("dense", "recurrent")}

_LEAK, _EXACT, _HARD, _ONE_SPIKE, _LEARN_THETA, _SYN, _PER_K = 1, 2, 4, 8, 16, 32, 64
#: projection row: kind, source, target, recurrent, weight, bias, skip diagonal, float offset,
#: axonal delays, their largest delay, aux tensor, its largest delay
PROJ_FIELDS = 12
#: rule row: code, projection, mode, traces_first, multiplicative, has w_min, has w_max, float offset,
#: accumulators (reward rules), delivery (reward_at: output_spikes)
RULE_FIELDS = 10


def declared(obj, attribute: str):
    """The capability ``obj``'s own class declares (its ``__dict__``; never inherited)."""
    return vars(type(obj)).get(attribute)


def name_of(obj) -> str:
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


def _check_leaky(neuron) -> str | None:
    """The non-spiking readout: no threshold (its spike function is unused)."""
    p = neuron.params
    if p.integration not in ("euler", "exact"):
        return f"integration: {p.integration!r} is not implemented by the step engine"
    return None


#: per engine model: a check of the params its engine code supports (None: all of them)
MODEL_CHECKS = {name: _check_spiking for name in MODEL_CODES}
MODEL_CHECKS["leaky"] = _check_leaky


def _flags(p, **extra) -> int:
    flags = 0
    if getattr(p, "reset", "hard") == "hard":
        flags |= _HARD
    if getattr(p, "integration", "euler") == "exact":
        flags |= _EXACT
    bits = {"leak": _LEAK, "one_spike": _ONE_SPIKE, "learn_theta": _LEARN_THETA, "syn": _SYN, "per_k": _PER_K}
    for bit, on in extra.items():
        if on:
            flags |= bits[bit]
    return flags


def _lif_family(neuron, model: str, dt: float) -> tuple[list[float], int]:
    """lif / if / ifsoftreset (lif_step), plif (its Euler step with dt/τ = sigmoid(w), the current w),
    clif (lif_step on the synaptic current): r, v_rest, v_th, v_reset, dt/τ, decay, 1 − decay, span,
    v_th − v_reset, I_s decay, [dt/τ per neuron]."""
    from .surrogate import threshold_span

    p = neuron.params
    decay = math.exp(-dt / p.tau_m)
    k, per_neuron = dt / p.tau_m, []
    if model == "plif":
        rate = torch.sigmoid(neuron.w.detach())  # as plif_step computes it, on the same tensor
        if rate.dim() == 0:
            k = float(rate)
        else:
            per_neuron = [float(x) for x in rate.reshape(-1).tolist()]
    syn_decay = math.exp(-dt / p.tau_syn) if model == "clif" else 0.0
    floats = [p.r, p.v_rest, p.v_th, p.v_reset, k, decay, 1 - decay, threshold_span(p.v_th, p.v_rest),
              p.v_th - p.v_reset, syn_decay] + per_neuron
    return floats, _flags(p, leak=model not in ("if", "ifsoftreset"), syn=model == "clif", per_k=bool(per_neuron))


def neuron_plan(neuron) -> tuple[list[float], int, int, int]:
    """(float params, flags, refractory steps, extra) of a population's model, in the layout its
    case of csrc/step_engine.cpp reads (each number computed as the pure step computes it)."""
    from .neurons.base import refractory_steps
    from .surrogate import threshold_span

    model, p, dt = declared(neuron, "engine_model"), neuron.params, neuron.dt
    refrac = refractory_steps(getattr(p, "refractory", 0.0), dt)
    if model in ("lif", "if", "ifsoftreset", "plif", "clif"):
        floats, flags = _lif_family(neuron, model, dt)
        return floats, flags, refrac, 0
    if model == "diehlandcook":
        floats = [p.v_rest, math.exp(-dt / p.tau_m), math.exp(-dt / p.tau_theta), p.r, p.v_th, p.v_reset,
                  p.theta_plus, threshold_span(p.v_th, p.v_rest)]
        return floats, _flags(p, one_spike=p.one_spike, learn_theta=p.learn_theta), refrac, 0
    if model == "alif":
        decay, rho = math.exp(-dt / p.tau_m), math.exp(-dt / p.tau_a)
        floats = [p.r, p.v_rest, p.v_th, p.v_reset, dt / p.tau_m, decay, 1 - decay, p.beta, rho, 1 - rho,
                  threshold_span(p.v_th, p.v_rest)]
        return floats, _flags(p), refrac, 0
    if model == "adex":
        floats = [p.g_l * p.delta_t, p.v_peak, p.v_t, p.delta_t, -p.g_l, p.e_l, p.r, p.c_m, dt, dt / p.tau_w, p.a,
                  p.v_reset, p.v_peak - p.e_l, p.b]
        return floats, _HARD, refrac, 0
    if model == "izh":
        from .neurons.nonlinear import izh_substeps, izhikevich_abcd

        a, b, c, d = izhikevich_abcd(p)
        k = izh_substeps(dt, p.substep)
        floats = [dt / k, p.r, p.v_peak, dt * a, 0.0, b, c, d, p.v_peak - p.v_init, p.v_init]
        return floats, _HARD, 0, k
    if model == "leaky":  # leaky_step: v_rest, r, dt/τ, decay, 1 − decay
        decay = math.exp(-dt / p.tau_m)
        return [p.v_rest, p.r, dt / p.tau_m, decay, 1 - decay], _flags(p), 0, 0
    if model == "qif":  # qif_step: dt/τ, a0, v_rest, v_c, r, v_reset, v_peak (v_th), its span v_th − v_rest
        floats = [dt / p.tau_m, p.a0, p.v_rest, p.v_c, p.r, p.v_reset, p.v_th, p.v_th - p.v_rest]
        return floats, _HARD, refrac, 0
    if model == "glif":  # glif_step, level in extra
        floats = [dt / p.c_m, p.r, p.e_l, p.r_m, dt * p.b_s, dt, p.a_v, p.b_v, dt * p.asc_k[0], dt * p.asc_k[1],
                  p.theta_inf, p.theta_inf - p.e_l, p.f_v, p.delta_v, p.delta_theta_s, p.v_reset,
                  p.asc_r[0], p.asc_amps[0], p.asc_r[1], p.asc_amps[1]]
        return floats, _HARD, refrac, int(p.level)
    raise ValueError(f"no engine plan for model {model!r}")


def sparse_by_source(indices: torch.Tensor, n_source: int) -> torch.Tensor:
    """A sparse synapse's COO ``indices`` [2, nnz] (target, source) as the engine walks them: int64
    ``[offsets (n_source + 1) | target (nnz) | index of the value (nnz)]``, grouped by source."""
    target, source = indices[0].to(torch.int64), indices[1].to(torch.int64)
    order = torch.argsort(source, stable=True)
    offsets = torch.zeros(n_source + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(torch.bincount(source, minlength=n_source), 0)
    return torch.cat([offsets, target[order], order]).contiguous()


def row_major(indices: torch.Tensor, n_source: int) -> bool:
    """Whether COO ``indices`` are in row-major order without duplicates (each target's entries in
    ascending source order: the order torch.sparse.mm sums them in, which the engine repeats)."""
    key = indices[0].to(torch.int64) * n_source + indices[1].to(torch.int64)
    return bool((key[1:] > key[:-1]).all())


def conv_geometry(stage) -> torch.Tensor:
    """A conv2d synapse's geometry as the engine reads it: int64 [C, H, W, O, H', W', k, stride, padding]."""
    p = stage.params
    return torch.tensor([*stage.in_shape, *stage.out_shape, p.kernel_size, p.stride, p.padding], dtype=torch.int64)


def rule_options(learner, target, spiking_target: bool) -> str | None:
    """What of ``learner``'s options on ``target`` the engine does not implement, or None. The reward
    rules' update after the sample is the learner's own (bounds, weight dependence, decay included)."""
    p = learner.params
    c = learner.constants(target)
    rule = declared(learner, "engine_rule")
    if rule in ("stdp", "noop") and c.boundary == "soft" and c.w_min is not None and c.w_max is not None:
        return "boundary: soft is not implemented by the step engine"
    if p.w_norm is not None and p.norm_every != "sample":
        return f"norm_every: {p.norm_every!r} is not implemented by the step engine (only 'sample')"
    if c.mode not in ("nearest", "all_to_all"):
        return f"mode: {c.mode!r} is not implemented by the step engine"
    if c.weight_dependence not in ("additive", "multiplicative"):
        return f"weight_dependence: {c.weight_dependence!r} is not implemented by the step engine"
    if target.before:
        return f"projection '{target.name}' has stages before its weight"
    if not spiking_target:
        return f"projection '{target.name}' ends in a non-spiking population"
    if declared(target.stage, "engine_synapse") not in TRAINED[rule]:
        return f"projection '{target.name}' ({name_of(target.stage)}) is not a weight {rule} trains on the engine"
    return None


def rule_plan(learner, target) -> tuple[list[int], list[float]]:
    """(int fields after the projection, floats) of one learner's rule on one projection; MSTDPET adds
    exp(−dt/τ_c), τ_c and dt."""
    c = learner.constants(target)
    rule = declared(learner, "engine_rule")
    noop = rule == "noop"
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
    if rule == "mstdpet":
        from .learning.rules import decay_factor

        tau_c = learner.params.tau_c
        floats += [decay_factor(tau_c, learner.dt), tau_c, learner.dt]
    return ints, floats
