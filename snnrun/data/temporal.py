"""A synthetic temporal task that needs memory: classify a spike pattern shown at the start.

Each class is a fixed random spike pattern over ``channels`` inputs during the first
``cue_steps`` steps; each sample jitters it (every cue spike dropped with ``drop``) and adds
background noise spikes (``noise`` per step and channel) for the whole ``steps``. The label
must be read at the end, ``steps − cue_steps`` steps after the cue is gone, so a readout
with a short time constant needs recurrence (or delays) to answer.
Samples are pre-encoded spike trains ``[N, steps, channels]``: use ``encoder=spikes``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..schema import param
from .base import DATASETS, DataSplits, Dataset, LoaderParams


@DATASETS.register("temporal_patterns")
class TemporalPatterns(Dataset):
    @dataclass
    class Params(LoaderParams):
        batch_size: int = param(32, gt=0, help="training batch size")
        classes: int = param(4, ge=2, help="number of patterns")
        channels: int = param(20, gt=0, help="input neurons")
        steps: int = param(40, gt=0, help="sequence length T (must equal network.duration / dt)")
        cue_steps: int = param(8, gt=0, help="steps at the start that carry the pattern")
        density: float = param(0.3, gt=0, le=1, help="spike probability per step and channel in a pattern")
        drop: float = param(0.1, ge=0, lt=1, help="probability of dropping each pattern spike in a sample")
        noise: float = param(0.01, ge=0, le=1, help="background spike probability per step and channel")
        train_size: int = param(512, gt=0)
        test_size: int = param(256, gt=0)
        seed: int = param(0, help="generator seed")

    def load(self) -> DataSplits:
        p = self.params
        g = torch.Generator().manual_seed(p.seed)
        cue = min(p.cue_steps, p.steps)
        patterns = (torch.rand(p.classes, cue, p.channels, generator=g) < p.density).float()

        def sample(n):
            y = torch.randint(0, p.classes, (n,), generator=g)
            x = (torch.rand(n, p.steps, p.channels, generator=g) < p.noise).float()
            keep = (torch.rand(n, cue, p.channels, generator=g) >= p.drop).float()
            x[:, :cue] = torch.maximum(x[:, :cue], patterns[y] * keep)
            return x, y

        x_train, y_train = sample(p.train_size)
        x_test, y_test = sample(p.test_size)
        return DataSplits(x_train, y_train, x_test, y_test, values="spike_trains")
