"""Losses on decoder scores, chosen by name in the learner config (``loss: cross_entropy``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .errors import ConfigError
from .schema import suggest


def cross_entropy(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy with the scores (counts or voltages) as logits."""
    return F.cross_entropy(scores, target)


def mse_count(scores: torch.Tensor, target: torch.Tensor, on: float = 1.0, off: float = 0.0) -> torch.Tensor:
    """Mean squared error between scores and a target of ``on`` for the label, ``off`` elsewhere."""
    goal = torch.full_like(scores, off)
    goal.scatter_(1, target.unsqueeze(1), on)
    return F.mse_loss(scores, goal)


LOSSES = {"cross_entropy": cross_entropy, "mse_count": mse_count}


def get_loss(name: str, key: str = "learner.loss"):
    if name not in LOSSES:
        raise ConfigError(f"{key}: unknown loss '{name}'{suggest(name, LOSSES)}; valid names: {', '.join(LOSSES)}")
    return LOSSES[name]
