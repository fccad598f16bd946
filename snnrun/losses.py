"""Losses on decoder scores, chosen by name in the learner config (``loss: cross_entropy``), and
the firing-rate regulariser on population spikes (``learner.rate_reg``, :class:`RateRegularizer`).

Each loss takes ``(scores [B, C], target [B], **options)``; ``learner.loss_options`` supplies
the options (e.g. ``{on: 20, off: 2}`` for ``mse_count``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F

from .errors import ConfigError
from .schema import param, parse_params, suggest


def cross_entropy(scores: torch.Tensor, target: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Softmax cross-entropy with ``scale · scores`` (counts, voltages or −spike times) as logits."""
    return F.cross_entropy(scale * scores, target)


def mse_count(scores: torch.Tensor, target: torch.Tensor, on: float = 1.0, off: float = 0.0) -> torch.Tensor:
    """Mean squared error to a target of ``on`` for the label and ``off`` elsewhere
    (e.g. spike counts: ``on`` = 80% of T, ``off`` = 20%, as snntorch's ``mse_count_loss``)."""
    goal = torch.full_like(scores, off)
    goal.scatter_(1, target.unsqueeze(1), on)
    return F.mse_loss(scores, goal)


def nll(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of scores that already are log-probabilities (``time_softmax``)."""
    return F.nll_loss(scores, target)


def first_spike_time(scores: torch.Tensor, target: torch.Tensor, tau: float = 5.0,
                     margin: float = 0.0) -> torch.Tensor:
    """For ``first_spike`` scores (−t in ms): cross-entropy on ``−t/τ`` (Mostafa 2017's
    softmax over negative spike times), plus a hinge pushing the correct neuron's time
    ``margin`` ms before every other."""
    loss = F.cross_entropy(scores / tau, target)
    if margin > 0:
        correct = scores.gather(1, target.unsqueeze(1))
        others = scores.masked_fill(F.one_hot(target, scores.shape[1]).bool(), float("-inf"))
        loss = loss + F.relu(margin - (correct - others.max(1, keepdim=True).values)).mean()
    return loss


LOSSES = {"cross_entropy": cross_entropy, "mse_count": mse_count, "nll": nll, "first_spike_time": first_spike_time}


def get_loss(name: str, key: str = "learner.loss"):
    if name not in LOSSES:
        raise ConfigError(f"{key}: unknown loss '{name}'{suggest(name, LOSSES)}; valid names: {', '.join(LOSSES)}")
    return LOSSES[name]


@dataclass
class RateRegParams:
    """Firing-rate regulariser (``learner.rate_reg``)."""

    weight: float = param(0.0, ge=0, unit="1/Hz^2", help="factor of the penalty; 0 = off")
    target_hz: float | dict | None = param(None, unit="Hz",
                                           help="{population: target rate}, or one rate for every hidden (spiking, "
                                                "neither input nor output) population")
    per: str = param("neuron", choices=("neuron", "population"),
                     help="neuron: each neuron's rate is pulled to the target; population: the population's mean")


class RateRegularizer:
    r"""``weight · Σ_pop mean_i (r_i − r*_pop)²`` with ``r_i = 1000/dt · mean_{t,b} z_{t,b,i}`` the rate
    (Hz) of neuron ``i`` over the batch's steps and samples (``per: population``: one rate, the
    population mean). Differentiable through the spikes' surrogate gradient (the fused LIF scan's
    included), in the manner of snntorch's and spikingjelly's rate regularisers; ``weight`` is in
    1/Hz², so a 10 Hz miss costs ``100 · weight``."""

    def __init__(self, p: RateRegParams, targets: dict[str, float], dt: float):
        self.p, self.targets, self.scale = p, targets, 1000.0 / dt

    @classmethod
    def build(cls, node: Mapping | None, network, key: str = "learner.rate_reg") -> "RateRegularizer | None":
        """The regulariser ``node`` configures for ``network``, or None when its weight is 0."""
        p = parse_params(RateRegParams, node, key)
        if p.weight == 0:
            return None
        spiking = [n for n, pop in network.populations.items() if not pop.is_input and pop.neuron.spiking]
        if not spiking:
            raise ConfigError(f"{key}.weight: the network has no spiking population to regularise; set {key}.weight=0")
        if p.target_hz is None or isinstance(p.target_hz, dict):
            targets = dict(p.target_hz or {})
            if not targets:
                raise ConfigError(f"{key}.target_hz: name a target rate per population (e.g. {{{spiking[0]}: 20}}) or "
                                  f"give one rate for every hidden population; populations: {', '.join(spiking)}")
        else:
            targets = {n: p.target_hz for n in spiking if n not in network.outputs}
            if not targets:
                raise ConfigError(f"{key}.target_hz: the network has no hidden spiking population; name the "
                                  f"populations (e.g. {{{spiking[0]}: 20}})")
        for name, target in targets.items():
            if name not in spiking:
                raise ConfigError(f"{key}.target_hz.{name}: no spiking population '{name}'"
                                  f"{suggest(str(name), spiking)}; valid: {', '.join(spiking)}")
            number = isinstance(target, (int, float)) and not isinstance(target, bool)
            if not number or not math.isfinite(target) or target < 0:
                raise ConfigError(f"{key}.target_hz.{name}: expected a rate >= 0 in Hz, got {target!r}")
        return cls(p, {n: float(t) for n, t in targets.items()}, network.dt)

    def __call__(self, spikes: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The penalty of one batch's spikes ``{population: [T, B, *shape]}`` (a scalar)."""
        total = None
        for name, target in self.targets.items():
            z = spikes[name].float()
            rate = (z.mean((0, 1)) if self.p.per == "neuron" else z.mean()) * self.scale
            term = (rate - target).square().mean()
            total = term if total is None else total + term
        return self.p.weight * total
