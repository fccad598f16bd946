"""Decoder base: network output -> class scores ``[B, C]`` (higher = more likely)."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import Registry

DECODERS = Registry("decoder")


class Decoder(nn.Module):
    """Reads ``spikes`` [T, B, C] (the output population's output) and, when
    ``needs_voltage``, its membrane potential ``v`` [T, B, C]."""

    needs_voltage = False
    #: whether the scores carry gradients (a gradient learner can train through them)
    differentiable = True

    def __init__(self, params, dt: float = 1.0, num_classes: int | None = None):
        super().__init__()
        self.params = params
        self.dt = dt
        self.num_classes = num_classes

    def forward(self, spikes: torch.Tensor, v: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def output_size(self) -> int | None:
        """How many output neurons this decoder reads (None: any number); the build checks the
        network's output population against it."""
        return self.num_classes

    def predict(self, scores: torch.Tensor) -> torch.Tensor:
        return scores.argmax(dim=-1)

    def observe(self, spikes: torch.Tensor, target: torch.Tensor) -> None:
        """Called with each training batch's output activity; unsupervised decoders learn here."""

    def end_epoch(self) -> None:
        """Called after each training epoch (e.g. to re-assign labels)."""
