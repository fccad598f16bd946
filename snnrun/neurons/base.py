"""Neuron base: a stateful module around a pure step function.

Every model implements ``initial_state(batch_shape, device, dtype)`` and
``step(current, state) -> (spikes, state)``. The step is a pure function of
its inputs (state in, state out); the module keeps the current state between
calls (``self.state``) so step-by-step simulation and monitors can read it, and
``reset()`` clears it explicitly.

Discretisation common to spiking models, at the network's ``dt`` (ms):
integrate → threshold → reset → refractory count. The spike emitted at step t
comes from the state after integrating the input of step t; a neuron that
spikes is held at ``v_reset`` (and does not integrate) for
``round(refractory / dt)`` following steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from ..registry import Registry
from ..schema import param
from ..surrogate import Heaviside, Surrogate

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


def refractory_steps(refractory_ms: float, dt: float) -> int:
    return int(round(refractory_ms / dt))


def threshold_and_reset(v: torch.Tensor, refrac: torch.Tensor | None, p: SpikingParams,
                        spike_fn: Surrogate, refrac_steps: int):
    """Threshold, reset and refractory count shared by the integrate-and-fire family.

    Returns ``(spikes, v_after_reset, refrac_after)``. Neurons still refractory
    (``refrac > 0``) cannot spike.
    """
    z = spike_fn(v - p.v_th)
    if refrac is not None and refrac_steps > 0:
        z = z * (refrac == 0).to(z.dtype)
    zr = z.detach() if p.detach_reset else z
    if p.reset == "hard":
        v = v * (1 - zr) + p.v_reset * zr
    else:
        v = v - (p.v_th - p.v_reset) * zr
    if refrac is not None and refrac_steps > 0:
        refrac = torch.where(z.detach() > 0, torch.full_like(refrac, refrac_steps), (refrac - 1).clamp(min=0))
    return z, v, refrac


class Neuron(nn.Module):
    """A population of one neuron model with shape ``shape`` (per sample)."""

    #: state variables that monitors may record; the first is the membrane potential.
    State: type = NamedTuple
    spiking: bool = True
    #: whether :mod:`snnrun.kernels.lif_scan` may run this model (its dynamics are exactly LIF/IF's).
    #: Declared per class, never inherited: a subclass that changes the dynamics cannot take the fast
    #: path by accident.
    fused_scan: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.fused_scan = bool(cls.__dict__.get("fused_scan", False))

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
        raise NotImplementedError

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
