"""The base of local learners: one trained projection (``_Target``), the parameters every
local rule shares, and the per-sample and per-step calls of the simulation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...errors import ConfigError
from ...schema import param
from .. import rules
from ..base import Learner


@dataclass
class LocalParams:
    trainable: list = param([], help="projections trained; empty = every projection with a weight")
    lr: list[float] = param([1.0, 1.0], help="(pre, post) learning rates: scale depression at pre spikes, potentiation at post spikes")
    w_min: float | None = param(None, help="lower weight bound (null: the synapse's w_min)")
    w_max: float | None = param(None, help="upper weight bound (null: the synapse's w_max)")
    boundary: str = param("hard", choices=("hard", "soft"), help="hard clamp or soft exponential saturation at the bounds")
    weight_decay: float = param(0.0, unit="1/ms", ge=0, help="w <- w*exp(-weight_decay*dt) each step")
    w_norm: float | None = param(None, help="scale each postsynaptic neuron's incoming weights to sum to this")
    norm_every: str = param("sample", choices=("sample", "step"), help="when w_norm is applied")
    reduction: str = param("sum", choices=("sum", "mean"), help="combine the batch's updates by sum or mean")


class _Target:
    """One trained projection: its weighted stage, the stages before it, and the correlation."""

    def __init__(self, name, proj, key):
        weighted = [i for i, s in enumerate(proj.stages) if isinstance(getattr(s, "weight", None), torch.nn.Parameter)]
        if len(weighted) != 1 or weighted[0] != len(proj.stages) - 1:
            raise ConfigError(f"{key}.trainable: projection '{name}' needs exactly one weighted synapse, as its last "
                              f"stage, for a local rule")
        self.name, self.proj = name, proj
        self.stage = proj.stages[weighted[0]]
        self.before = list(proj.stages)[:weighted[0]]
        kind = getattr(self.stage, "registry_name", "")
        if self.stage.weight.dim() == 2 and kind in ("dense", "full", "linear", "recurrent", ""):
            self.outer = rules.dense_outer
        elif self.stage.weight.dim() == 4:
            p = self.stage.params
            if p.groups != 1:
                raise ConfigError(f"{key}.trainable: conv2d projection '{name}' has groups={p.groups}; "
                                  f"local rules support groups=1")
            self.outer = rules.conv2d_outer(p.kernel_size, p.stride, p.padding)
        else:
            raise ConfigError(f"{key}.trainable: projection '{name}' ({kind}) is not dense or conv2d")
        self.x_pre = self.x_post = None

    @property
    def weight(self) -> torch.Tensor:
        return self.stage.weight

    def presynaptic_at(self, now: dict, previous: dict) -> torch.Tensor:
        """This step's presynaptic input (detached) from the step's spikes ``now`` (``previous`` for a
        recurrent projection, zeros at the first step), through the stages before the weight."""
        pre = (previous if self.proj.recurrent else now).get(self.proj.source)
        if pre is None:
            pre = torch.zeros_like(now[self.proj.source])
        return self.presynaptic(pre.detach())

    def presynaptic(self, spikes: torch.Tensor) -> torch.Tensor:
        for stage in self.before:
            spikes = stage(spikes)
        return spikes


class LocalLearner(Learner):
    """Base of local rules: resolves ``trainable`` to projections and drives the per-step hook."""

    gradient = False
    local = True
    Params = LocalParams

    def __init__(self, params, network, key="learner"):
        super().__init__(params, network, key)
        if len(params.lr) != 2:
            raise ConfigError(f"{key}.lr: expected a (pre, post) pair, got {params.lr!r}")
        explicit = bool(params.trainable)
        self.targets: dict[str, _Target] = {}
        for name, module in self.modules.items():
            if name not in network.projections:
                if explicit:
                    raise ConfigError(f"{key}.trainable: '{name}' is a population; local rules train projections")
                continue
            if not explicit and not any(isinstance(getattr(s, "weight", None), torch.nn.Parameter) for s in module.stages):
                continue
            self.targets[name] = _Target(name, module, key)
        if not self.targets:
            raise ConfigError(f"{key}.trainable: no projection with a weight to train")
        self.dt = network.dt
        self.epochs = None  # (first, last) 1-based epochs when active; set by the builder

    # constants for the pure step
    def constants(self, target: _Target) -> rules.StdpConstants:
        p = self.params
        sp = target.stage.params
        return rules.StdpConstants(
            a_plus=getattr(p, "a_plus", 0.0), a_minus=getattr(p, "a_minus", 0.0),
            decay_pre=rules.decay_factor(getattr(p, "tau_plus", 20.0), self.dt),
            decay_post=rules.decay_factor(getattr(p, "tau_minus", 20.0), self.dt),
            lr_pre=float(p.lr[0]), lr_post=float(p.lr[1]), mode=getattr(p, "mode", "all_to_all"),
            order=getattr(p, "order", "weights_first"), weight_dependence=getattr(p, "weight_dependence", "additive"),
            boundary=p.boundary,
            w_min=p.w_min if p.w_min is not None else getattr(sp, "w_min", None),
            w_max=p.w_max if p.w_max is not None else getattr(sp, "w_max", None),
            decay_weight=math.exp(-p.weight_decay * self.dt), reduction=p.reduction)

    def active(self, epoch: int) -> bool:
        """Whether the rule learns in 1-based ``epoch``."""
        return self.epochs is None or self.epochs[0] <= epoch <= self.epochs[1]

    def begin_sample(self, batch: int) -> None:
        for t in self.targets.values():
            t.x_pre = t.x_post = None
            if self.params.w_norm is not None:
                self._normalise(t)

    def on_step(self, step: int, now: dict, previous: dict) -> None:
        for t in self.targets.values():
            pre = t.presynaptic_at(now, previous)
            post = now[t.proj.target].detach().to(pre.dtype)
            if t.x_pre is None:
                t.x_pre, t.x_post = torch.zeros_like(pre), torch.zeros_like(post)
            with torch.no_grad():
                self.update(t, pre, post)
                if self.params.w_norm is not None and self.params.norm_every == "step":
                    self._normalise(t)

    def update(self, t: _Target, pre: torch.Tensor, post: torch.Tensor) -> None:
        raise NotImplementedError

    def end_sample(self, scores: torch.Tensor, target: torch.Tensor) -> dict:
        return {}

    def _normalise(self, t: _Target) -> None:
        with torch.no_grad():
            t.weight.copy_(rules.normalise(t.weight, self.params.w_norm))

    def _write(self, t: _Target, w: torch.Tensor) -> None:
        t.weight.data.copy_(w)
