"""Offline datasets: scikit-learn digits and seeded synthetic data."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..schema import param
from .base import DATASETS, DataSplits, Dataset, LoaderParams


@DATASETS.register("digits")
class Digits(Dataset):
    """scikit-learn's 1797 8×8 handwritten digits (shipped with scikit-learn, no download).

    Pixels 0..16 are scaled to [0, 1]; a stratified split with ``split_seed``
    holds out ``test_fraction`` of the samples.
    """

    @dataclass
    class Params(LoaderParams):
        test_fraction: float = param(0.2, gt=0, lt=1, help="fraction held out for testing")
        split_seed: int = param(0, ge=0, lt=2 ** 32, help="seed of the train/test split")

    def load(self) -> DataSplits:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        x_train, x_test, y_train, y_test = train_test_split(
            digits.data, digits.target, test_size=self.params.test_fraction,
            random_state=self.params.split_seed, stratify=digits.target)
        as_x = lambda a: torch.tensor(a, dtype=torch.float32) / 16.0  # noqa: E731
        as_y = lambda a: torch.tensor(a, dtype=torch.int64)  # noqa: E731
        return DataSplits(as_x(x_train), as_y(y_train), as_x(x_test), as_y(y_test), values="intensity")


@DATASETS.register("synthetic")
class Synthetic(Dataset):
    """Seeded Gaussian class prototypes in [0, 1]: sample = clamp(prototype_c + noise·N(0, 1))."""

    @dataclass
    class Params(LoaderParams):
        batch_size: int = param(32, gt=0, help="training batch size")
        features: int = param(20, gt=0, help="input size")
        classes: int = param(4, ge=2, help="number of classes")
        train_size: int = param(256, gt=0, help="training samples")
        test_size: int = param(128, gt=0, help="test samples")
        noise: float = param(0.1, ge=0, help="noise standard deviation")
        seed: int = param(0, help="generator seed")

    def load(self) -> DataSplits:
        p = self.params
        g = torch.Generator().manual_seed(p.seed)
        prototypes = torch.rand(p.classes, p.features, generator=g)

        def sample(n):
            y = torch.randint(0, p.classes, (n,), generator=g)
            x = (prototypes[y] + p.noise * torch.randn(n, p.features, generator=g)).clamp(0, 1)
            return x, y

        x_train, y_train = sample(p.train_size)
        x_test, y_test = sample(p.test_size)
        return DataSplits(x_train, y_train, x_test, y_test, values="intensity")
