"""Losses on decoder scores, chosen by name in the learner config (``loss: cross_entropy``).

Each takes ``(scores [B, C], target [B], **options)``; ``learner.loss_options`` supplies
the options (e.g. ``{on: 20, off: 2}`` for ``mse_count``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .errors import ConfigError
from .schema import suggest


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
