"""Stages that need the time axis: axonal delays, dropout held over time, batch normalisation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..schema import param
from .base import SYNAPSES, Synapse, WeightParams, init_weight


@SYNAPSES.register("delay")
class Delay(Synapse):
    """Axonal delay: ``out[t] = s[t − d]`` (zeros before), with ``d = delay / dt`` whole steps.

    ``per_neuron: true`` gives every presynaptic axon its own delay, drawn uniformly from
    ``0..d`` steps with ``seed``. On the step-by-step path a ring buffer of ``d + 1`` steps
    holds the recent spikes; on the layer path the whole train is shifted. Put it before the
    weighted stage: ``synapse: [{name: delay, delay: 3.0}, {name: dense}]``.
    """

    temporal = True
    engine_synapse = "delay"  # snnrun.engine runs it (alone, or before one synapse)

    @dataclass
    class Params:
        delay: float = param(1.0, unit="ms", ge=0, help="axonal delay (a whole number of dt)")
        per_neuron: bool = param(False, help="a random delay in [0, delay] per presynaptic neuron")
        seed: int = param(0, help="seed of the per-neuron delays")

    def __init__(self, params, in_shape, target_shape=None, dt=1.0, time_steps=1):
        super().__init__(params, in_shape, target_shape, dt, time_steps)
        steps = params.delay / dt
        if abs(steps - round(steps)) > 1e-6:
            raise ConfigError(f"delay: {params.delay} ms is not a whole number of dt = {dt} ms steps")
        self.max_steps = int(round(steps))
        n = math.prod(self.in_shape)
        if params.per_neuron:
            g = torch.Generator().manual_seed(params.seed)
            d = torch.randint(0, self.max_steps + 1, (n,), generator=g)
        else:
            d = torch.full((n,), self.max_steps)
        self.register_buffer("delays", d)
        self.buffer: torch.Tensor | None = None
        self.pointer = 0

    def reset(self) -> None:
        self.buffer = None
        self.pointer = 0

    def forward(self, x, steps):
        batch = x.shape[0] // steps
        flat = x.reshape(steps, batch, -1)
        if steps == 1:
            return self._step(flat[0]).reshape(x.shape)
        t = torch.arange(steps, device=x.device).view(-1, 1) - self.delays.to(x.device).view(1, -1)  # [T, N]
        valid = (t >= 0).to(x.dtype)
        index = t.clamp(min=0).unsqueeze(1).expand(steps, batch, flat.shape[2])
        return (torch.gather(flat, 0, index) * valid.unsqueeze(1)).reshape(x.shape)

    def _step(self, s):
        if self.buffer is None or self.buffer.shape[1:] != s.shape:
            self.buffer = torch.zeros(self.max_steps + 1, *s.shape, device=s.device, dtype=s.dtype)
            self.pointer = 0
        self.buffer[self.pointer] = s
        slots = (self.pointer - self.delays.to(s.device)) % (self.max_steps + 1)  # [N]
        out = self.buffer[slots, :, torch.arange(s.shape[1], device=s.device)].t()
        self.pointer = (self.pointer + 1) % (self.max_steps + 1)
        return out


@SYNAPSES.register("dropout")
class Dropout(Synapse):
    """Dropout with one mask per sample held over all time steps (so a dropped neuron stays
    silent for the whole presentation); scaled by ``1/(1 − p)``; identity in evaluation."""

    temporal = True

    @dataclass
    class Params:
        p: float = param(0.2, ge=0, lt=1, help="drop probability")

    def __init__(self, params, in_shape, target_shape=None, dt=1.0, time_steps=1):
        super().__init__(params, in_shape, target_shape, dt, time_steps)
        self.mask: torch.Tensor | None = None

    def reset(self) -> None:
        self.mask = None

    def forward(self, x, steps):
        if not self.training or self.params.p == 0:
            return x
        batch = x.shape[0] // steps
        if self.mask is None or self.mask.shape[0] != batch:
            keep = torch.rand(batch, *x.shape[1:], device=x.device) >= self.params.p
            self.mask = keep.to(x.dtype) / (1 - self.params.p)
        return (x.reshape(steps, batch, *x.shape[1:]) * self.mask).reshape(x.shape)


@SYNAPSES.register("batchnorm")
class BatchNorm(Synapse):
    """Batch normalisation of the synaptic current, per channel (dim 1 of ``[N, C, ...]``).

    ``mode: tdbn`` (threshold-dependent BN, Zheng et al. 2021): statistics over time and batch
    jointly, affine weight initialised to ``alpha · v_th``. ``mode: per_step`` (BNTT, Kim &
    Panda 2021): separate statistics and affine parameters for every time step.
    """

    temporal = True

    @dataclass
    class Params:
        mode: str = param("tdbn", choices=("tdbn", "per_step"), help="joint over time, or per time step")
        alpha: float = param(1.0, gt=0, help="tdbn: initial scale, in units of v_th")
        v_th: float = param(1.0, help="tdbn: threshold of the receiving neurons")
        momentum: float = param(0.1, gt=0, le=1, help="running-statistics momentum")

    def __init__(self, params, in_shape, target_shape=None, dt=1.0, time_steps=1):
        super().__init__(params, in_shape, target_shape, dt, time_steps)
        channels = self.in_shape[0]
        count = time_steps if params.mode == "per_step" else 1
        self.norms = torch.nn.ModuleList(torch.nn.BatchNorm1d(channels, momentum=params.momentum) for _ in range(count))
        if params.mode == "tdbn":
            torch.nn.init.constant_(self.norms[0].weight, params.alpha * params.v_th)
        self.step_index = 0

    def reset(self) -> None:
        self.step_index = 0

    def _norm(self, norm, x):
        flat = x.reshape(x.shape[0], x.shape[1], -1)
        return norm(flat).reshape(x.shape)

    def forward(self, x, steps):
        if self.params.mode == "tdbn":
            return self._norm(self.norms[0], x)
        if steps == 1:
            out = self._norm(self.norms[min(self.step_index, len(self.norms) - 1)], x)
            self.step_index += 1
            return out
        chunks = x.reshape(steps, -1, *x.shape[1:])
        return torch.cat([self._norm(self.norms[min(t, len(self.norms) - 1)], chunks[t]) for t in range(steps)])


@SYNAPSES.register("delayed_dense")
class DelayedDense(Synapse):
    """All-to-all weights with a delay per synapse: ``I_j(t) = Σ_i W_ji s_i(t − d_ji)``.

    ``d_ji`` are whole steps drawn uniformly from ``0..delay/dt`` with ``seed`` (fixed, not
    learned). The weights are grouped by delay, ``W_k = W ⊙ [d = k]``, and computed as one
    matmul ``z = [W_0; …; W_D] · s(t)``; ``z_k`` is due at step ``t + k``. On the step-by-step
    path a ring buffer of ``D + 1`` future currents accumulates them (slot ``t mod (D+1)``
    is read and cleared each step); on the layer path ``z_k`` is shifted by ``k`` steps.
    """

    temporal = True
    engine_synapse = "delayed_dense"  # snnrun.engine runs it (frozen: local rules do not train it)

    @dataclass
    class Params(WeightParams):
        delay: float = param(1.0, unit="ms", ge=0, help="largest synaptic delay (a whole number of dt)")
        seed: int = param(0, help="seed of the per-synapse delays")

    def __init__(self, params, in_shape, target_shape=None, dt=1.0, time_steps=1):
        super().__init__(params, in_shape, target_shape, dt, time_steps)
        self.out_shape = tuple(target_shape) if target_shape is not None else self.in_shape
        steps = params.delay / dt
        if abs(steps - round(steps)) > 1e-6:
            raise ConfigError(f"delay: {params.delay} ms is not a whole number of dt = {dt} ms steps")
        self.max_steps = int(round(steps))
        n_in, n_out = math.prod(self.in_shape), math.prod(self.out_shape)
        self.weight = torch.nn.Parameter(torch.empty(n_out, n_in))
        init_weight(self.weight, params, n_in)
        g = torch.Generator().manual_seed(params.seed)
        self.register_buffer("delays", torch.randint(0, self.max_steps + 1, (n_out, n_in), generator=g))
        self.ring: list[torch.Tensor | None] = []
        self.pointer = 0

    def reset(self) -> None:
        self.ring = []
        self.pointer = 0

    def _grouped(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, D+1, out]``: the current of each delay group."""
        k = torch.arange(self.max_steps + 1, device=x.device).view(-1, 1, 1)
        stacked = (self.weight.unsqueeze(0) * (self.delays.unsqueeze(0) == k)).reshape(-1, self.weight.shape[1])
        return F.linear(x.reshape(x.shape[0], -1), stacked).reshape(x.shape[0], self.max_steps + 1, -1)

    def forward(self, x, steps):
        z = self._grouped(x)
        n_out = z.shape[2]
        if steps == 1:
            return self._step(z).reshape(x.shape[0], *self.out_shape)
        z = z.reshape(steps, -1, self.max_steps + 1, n_out)
        y = z[:, :, 0]
        for k in range(1, min(self.max_steps, steps - 1) + 1):
            y = y + F.pad(z[: steps - k, :, k], (0, 0, 0, 0, k, 0))
        return y.reshape(x.shape[0], *self.out_shape)

    def _step(self, z):
        size = self.max_steps + 1
        if len(self.ring) != size or (self.ring[0] is not None and self.ring[0].shape != z[:, 0].shape):
            self.ring = [None] * size
            self.pointer = 0
        for k in range(size):
            slot = (self.pointer + k) % size
            self.ring[slot] = z[:, k] if self.ring[slot] is None else self.ring[slot] + z[:, k]
        out = self.ring[self.pointer]
        self.ring[self.pointer] = None
        self.pointer = (self.pointer + 1) % size
        return out
