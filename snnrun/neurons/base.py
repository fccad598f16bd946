"""Neuron base: a pure step function per model plus a thin stateful module around it.

Every model ``foo`` has a module-level pure step
``foo_step(current, state, params, dt, spike_fn, ...) -> (spikes, new_state)``: state in, state
out (a NamedTuple of tensors), no hidden globals, nothing read from a module. Learned parameters
(PLIF's ``w``) and the module's mode (Diehl & Cook's θ learning) are explicit arguments; any other
extra argument defaults to what ``params`` and ``dt`` give. The pure step is the reference the
tests check against the papers and that fast paths must reproduce.

The module (:class:`Neuron`) owns the parameters and the current state between calls
(``self.state``) so step-by-step simulation and monitors can read it; ``initial_state(batch_shape,
device, dtype)`` builds the resting state, ``step(current, state)`` is a one-line call of the pure
step, and ``reset()`` clears the state explicitly.

Units: every model declares its operating range (:meth:`Neuron.operating_range`): its resting and
threshold potentials and its *drive*, the constant input that just brings it from rest to
threshold (its rheobase, in the model's input unit). The surrogate gradient sees the distance to
threshold in units of ``v_th − v_rest`` (:func:`snnrun.surrogate.spike`), and weights initialised without an explicit
scale (``init: kaiming``) are multiplied by the target's drive, so one network config drives a
dimensionless LIF (drive 1) and an AdEx in mV and nA alike.

Discretisation common to spiking models, at the network's ``dt`` (ms):
integrate → threshold → reset → refractory count. The spike emitted at step t
comes from the state after integrating the input of step t; a neuron that
spikes is held at ``v_reset`` (and does not integrate) for
``round(refractory / dt)`` following steps. The pieces are shared here:
:func:`refractory_hold`, :func:`refractory_gate`, :func:`refractory_count`, :func:`reset_membrane`
and :func:`threshold_and_reset` (which chains gate, reset and count).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from ..registry import Registry
from ..schema import param
from ..surrogate import Heaviside, Surrogate, escape_spike, spike, threshold_span

NEURONS = Registry("neuron")


@dataclass
class SpikingParams:
    """Options every spiking model shares."""

    v_th: float = param(1.0, unit="mV", help="firing threshold")
    v_rest: float = param(0.0, unit="mV", help="resting potential")
    v_reset: float = param(0.0, unit="mV", help="potential after a hard reset")
    reset: str = param("hard", choices=("hard", "soft"),
                       help="hard: v <- v_reset; soft: v <- v - (v_th - v_reset)")
    refractory: float = param(0.0, unit="ms", ge=0, help="absolute refractory period")
    r: float = param(1.0, unit="MOhm", help="input resistance / gain applied to the input current")
    detach_reset: bool = param(False, help="stop gradients through the reset (Zenke & Vogels 2021)")
    escape_noise: bool = param(False, help="stochastic threshold: spike with probability 1 - exp(-rho dt) per step, "
                                           "rho = rho_0 exp((v - v_th)/delta_u); false: spike iff v >= v_th")
    rho_0: float = param(1.0, unit="1/ms", gt=0, help="escape rate at the threshold (escape_noise)")
    delta_u: float = param(0.1, unit="mV", gt=0, help="voltage scale of the escape rate; smaller = sharper (escape_noise)")


class OperatingRange(NamedTuple):
    """Where a model works: resting and threshold potential (in ``unit``) and its drive, the constant
    input (the model's input unit, ``r`` included) that just brings it from rest to threshold.

    ``adaptation`` (input unit, ≥ 0, default 0) is the spike-triggered adaptation of the model expressed
    as the constant input it cancels: what each spike adds to the input the next spike needs (Izhikevich's
    ``d``, AdEx's ``b``, a threshold jump Δθ as the input ``Δθ / r`` that makes it up, HH's measured cost of
    a further spike). It is counted in
    full, as if it lasted the whole sample (an upper bound for adaptation that decays within it)."""

    v_rest: float
    v_th: float
    drive: float
    unit: str = "mV"
    adaptation: float = 0.0

    @property
    def span(self) -> float:
        """``v_th − v_rest``: the voltage scale the surrogate gradient works in."""
        return self.v_th - self.v_rest

    @property
    def lr_factor(self) -> float:
        """``κ = (drive + adaptation) / drive``: the learning-rate unit of the weights onto this model is
        ``weight_scale · κ`` (:func:`snnrun.optim.weight_units`).

        A constant input ``I_1`` ≈ drive gives the first spike in the sample; each further spike needs the
        input raised by what its predecessors' adaptation cancels, ``I_n ≈ I_1 + (n − 1)(ΔI_free + q)``
        (``q`` = ``adaptation``, ``ΔI_free`` the model's own f–I increment, a small fraction of the drive for
        the LIF family at the default τ_m). The weight change that buys a spike thus grows by about
        ``(drive + q) / drive`` over a non-adapting model calibrated to the same rate. Without
        adaptation κ = 1 and the unit is the weight scale alone. Izhikevich RS: d = 8 on a drive of 4,
        κ = 3 (its spike count over 25 ms goes 1 → 4 → 8 at 0.9, 6.4, 13.6 drives; LIF τ_m = 5 ms:
        1.01, 1.36, 2.05)."""
        return (self.drive + self.adaptation) / self.drive if self.drive > 0 else 1.0


#: refractory counts saturate here: a longer period (more steps than any run has) means the same
MAX_REFRACTORY_STEPS = 2 ** 31 - 1


def refractory_steps(refractory_ms: float, dt: float) -> int:
    """``round(refractory / dt)`` steps, at most :data:`MAX_REFRACTORY_STEPS`."""
    return int(min(round(refractory_ms / dt), MAX_REFRACTORY_STEPS))


def refractory_hold(v_new: torch.Tensor, refrac: torch.Tensor, hold: float | torch.Tensor,
                    refrac_steps: int) -> torch.Tensor:
    """``v_new`` where the neuron is free (``refrac == 0``), ``hold`` where it is still refractory.

    ``hold`` is ``v_reset`` for the integrate-and-fire family (clamped at reset); a model whose
    refractory period keeps another value (its previous potential, its leak without the input)
    passes that tensor. With ``refrac_steps == 0`` nothing is ever refractory: ``v_new`` unchanged.
    """
    if refrac_steps <= 0:
        return v_new
    if not isinstance(hold, torch.Tensor):
        hold = torch.full_like(v_new, hold)
    return torch.where(refrac > 0, hold, v_new)


def refractory_gate(z: torch.Tensor, refrac: torch.Tensor | None, refrac_steps: int) -> torch.Tensor:
    """Spikes ``z`` with those of still-refractory neurons (``refrac > 0``) removed."""
    if refrac is None or refrac_steps <= 0:
        return z
    return z * (refrac == 0).to(z.dtype)


def refractory_count(z: torch.Tensor, refrac: torch.Tensor | None, refrac_steps: int) -> torch.Tensor | None:
    """The refractory counter after step t: ``refrac_steps`` where a neuron spiked, else one less (≥ 0)."""
    if refrac is None or refrac_steps <= 0:
        return refrac
    return torch.where(z.detach() > 0, torch.full_like(refrac, refrac_steps), (refrac - 1).clamp(min=0))


def reset_membrane(v: torch.Tensor, z: torch.Tensor, p: SpikingParams,
                   threshold: float | torch.Tensor | None = None) -> torch.Tensor:
    """Reset after spikes ``z``: hard ``v ← v_reset``, soft ``v ← v − (threshold − v_reset)``.

    Written arithmetically (``v (1 − z) + v_reset z``) so a surrogate gradient flows through the
    reset unless ``p.detach_reset``. ``threshold`` (default ``p.v_th``) is what a soft reset subtracts.
    """
    zr = z.detach() if p.detach_reset else z
    if p.reset == "hard":
        return v * (1 - zr) + p.v_reset * zr
    return v - ((p.v_th if threshold is None else threshold) - p.v_reset) * zr


def threshold_and_reset(v: torch.Tensor, refrac: torch.Tensor | None, p: SpikingParams,
                        spike_fn: Surrogate, refrac_steps: int,
                        threshold: float | torch.Tensor | None = None,
                        soft_threshold: float | torch.Tensor | None = None, dt: float | None = None):
    """Threshold, reset and refractory count shared by the integrate-and-fire family.

    ``z = spike(spike_fn, v, threshold, v_th − v_rest)`` (``threshold`` defaults to ``p.v_th``; an adaptive
    model passes its own), gated by :func:`refractory_gate`, then :func:`reset_membrane` (a soft reset subtracts
    ``soft_threshold``, by default the threshold crossed) and :func:`refractory_count`.
    With ``p.escape_noise`` the spike is drawn instead (:func:`snnrun.surrogate.escape_spike`: probability
    ``1 − exp(−ρ dt)``, ``ρ = ρ_0 exp((v − threshold)/Δu)``, ρ_0 in 1/ms, Δu in mV, ``dt`` in ms, which
    the caller must then pass); reset and refractoriness follow the drawn spike.
    Returns ``(spikes, v_after_reset, refrac_after)``.
    """
    threshold = p.v_th if threshold is None else threshold
    span = threshold_span(p.v_th, p.v_rest)
    if getattr(p, "escape_noise", False):
        if dt is None:
            raise ValueError("threshold_and_reset: escape noise needs the step dt (ms)")
        z = escape_spike(spike_fn, v, threshold, span, p.rho_0, p.delta_u, dt)
    else:
        z = spike(spike_fn, v, threshold, span)
    z = refractory_gate(z, refrac, refrac_steps)
    v = reset_membrane(v, z, p, threshold if soft_threshold is None else soft_threshold)
    return z, v, refractory_count(z, refrac, refrac_steps)


class Neuron(nn.Module):
    """A population of one neuron model with shape ``shape`` (per sample)."""

    #: state variables that monitors may record; the first is the membrane potential.
    State: type = NamedTuple
    spiking: bool = True
    #: whether :mod:`snnrun.kernels.lif_scan` may run this model (its dynamics are exactly LIF/IF's).
    #: Declared per class, never inherited: a subclass that changes the dynamics cannot take the fast
    #: path by accident.
    fused_scan: bool = False
    #: the model code the compiled step engine (:mod:`snnrun.engine`) runs for this class (its dynamics
    #: are exactly that pure step), or None. Declared per class, never inherited, as ``fused_scan``.
    engine_model: str | None = None
    #: the compiled kernel (:mod:`snnrun.kernels`) this class's own ``step`` may call, built with the others
    #: before the first batch, or None. Declared per class, never inherited.
    kernel: str | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.fused_scan = bool(cls.__dict__.get("fused_scan", False))
        cls.engine_model = cls.__dict__.get("engine_model")
        cls.kernel = cls.__dict__.get("kernel")

    def __init__(self, params: Any, shape: tuple[int, ...] = (1,), dt: float = 1.0,
                 spike_fn: Surrogate | None = None):
        super().__init__()
        self.params = params
        self.shape = tuple(shape)
        self.dt = float(dt)
        self.spike_fn = spike_fn or Heaviside()
        self.state: Any = None
        #: spike counts [*shape] (summed over steps and batch) of the last ``forward``, when a fused scan counted
        #: them on the way (else None: count from the spikes)
        self.spike_counts: torch.Tensor | None = None

    # --- to implement -----------------------------------------------------------
    def initial_state(self, batch_shape: tuple[int, ...], device, dtype) -> Any:
        raise NotImplementedError

    def step(self, current: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """One call of the model's pure ``<name>_step`` with this module's params, dt and spike_fn."""
        raise NotImplementedError

    def operating_range(self) -> OperatingRange:
        """Rest, threshold and drive ``(v_th − v_rest) / r`` of an integrate-and-fire model; models with
        other dynamics override it."""
        p = self.params
        return OperatingRange(p.v_rest, p.v_th, (p.v_th - p.v_rest) / p.r)

    # --- shared -------------------------------------------------------------------
    def reset(self) -> None:
        self.state = None

    def forward_step(self, current: torch.Tensor) -> torch.Tensor:
        """Advance one step of ``dt`` with input ``current`` [B, *shape]; keeps the state."""
        if self.state is None:
            self.state = self.initial_state(current.shape, current.device, current.dtype)
        spikes, self.state = self.step(current, self.state)
        return spikes

    def forward(self, current: torch.Tensor, record: tuple[str, ...] = (),
                reuse_input: bool = False) -> tuple[torch.Tensor, dict]:
        """Run over time: ``current`` [T, B, *shape] -> (output [T, B, *shape], traces).

        ``traces`` maps each name in ``record`` (state fields) to a [T, B, *shape] tensor.
        ``reuse_input``: the caller no longer needs ``current`` and lets a fused scan overwrite it.
        """
        state = self.state
        if state is None:
            state = self.initial_state(current.shape[1:], current.device, current.dtype)
        outputs, traces = [], {name: [] for name in record}
        for x in current.unbind(0):
            out, state = self.step(x, state)
            outputs.append(out)
            for name in record:
                traces[name].append(getattr(state, name))
        self.state = state
        return torch.stack(outputs), {k: torch.stack(v) for k, v in traces.items()}

    def extra_repr(self) -> str:
        return f"shape={self.shape}, dt={self.dt}, {self.params}"
