"""Datasets: each returns in-memory train/test tensors plus their shape and class count."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ConfigError, DataError
from ..registry import Registry
from ..schema import param

DATASETS = Registry("data")


@dataclass
class LoaderParams:
    """Batching options every dataset shares."""

    batch_size: int = param(64, gt=0, help="training batch size")
    test_batch_size: int | None = param(None, help="evaluation batch size (null = batch_size)")
    subset: int | None = param(None, help="use only the first N training samples (null = all)")
    input_shape: list | None = param(None, help="per-sample input shape; null = read from the data")
    num_classes: int | None = param(None, gt=0, help="number of classes; labels must lie in [0, num_classes); "
                                                     "null = read from the data (largest label + 1)")
    val_fraction: float = param(0.1, ge=0, lt=1,
                                help="fraction of the training set (after `subset`) held out as the validation split, "
                                     "stratified by label; it selects best.pt (trainer.monitor: auto). 0 = no "
                                     "validation split. A dataset that ships its own validation split keeps it")
    val_seed: int = param(0, ge=0, lt=2 ** 63,
                          help="seed of the validation hold-out: its own generator, independent of the run's `seed`, "
                               "so changing seed= keeps the same validation samples")
    normalize: str = param("none", choices=("none", "minmax", "standard"),
                           help="minmax: scale to [0, 1] by the training range; standard: zero mean, unit variance")
    num_workers: int = param(0, ge=0, help="loader worker processes (file-backed datasets)")


@dataclass
class ImageParams(LoaderParams):
    """Loader options of image datasets: adds training-time augmentation."""

    random_shift: int = param(0, ge=0, unit="px",
                              help="augment training batches: translate each image by random whole-pixel "
                                   "offsets in [-N, N] along x and y, zero-filled (0 = off)")


@dataclass
class DataSplits:
    """Tensors of a dataset: ``x_*`` float in [0, 1] (or real-valued), ``y_*`` int64 labels."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None
    #: what the values of ``x`` are: ``intensity`` (in [0, 1]), ``spike_trains``, ``spike_times`` (ms),
    #: or ``unknown``; encoders that read one kind only check it (:func:`snnrun.encoders.base.check_reads`)
    values: str = "unknown"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max()).item()) + 1

    @property
    def val_size(self) -> int:
        """Samples in the validation split (0 = none)."""
        return 0 if self.x_val is None else len(self.x_val)


def stratified_holdout(labels: torch.Tensor, fraction: float, seed: int,
                       key: str = "data") -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(train, val)`` (each ascending) holding out ``fraction`` of the samples, per class.

    ``round(fraction · N)`` samples (at least 1) go to validation; each class gives its share
    ``fraction · n_c`` rounded down, and the samples left over go to the classes with the largest
    remainders (ties in a seeded random order). A class always keeps at least one training sample,
    so classes with a single sample stay in training (the split is then a little smaller). The
    samples of each class are drawn with a generator seeded by ``seed`` alone (not the global RNG).
    """
    labels = torch.as_tensor(labels, dtype=torch.int64).reshape(-1)
    total = len(labels)
    if total == 0:
        raise ConfigError(f"{key}.val_fraction: the training split is empty, nothing to hold out (see {key}.subset)")
    generator = torch.Generator().manual_seed(int(seed))
    classes, counts = torch.unique(labels, return_counts=True)
    capacity = counts - 1  # every class keeps one training sample
    wanted = min(max(1, int(round(fraction * total))), int(capacity.sum()))
    if wanted < 1:
        raise ConfigError(f"{key}.val_fraction: cannot hold out a validation sample from {total} training "
                          f"sample(s) while each of the {len(classes)} classes keeps one for training; "
                          f"use more training data or set {key}.val_fraction=0")
    share = fraction * counts.double()
    take = torch.minimum(share.floor().long(), capacity)
    missing = wanted - int(take.sum())  # >= 0: the floors never sum above round(fraction · N)
    if missing > 0:  # largest remainders first; ties in seeded random order
        tiebreak = torch.rand(len(classes), generator=generator, dtype=torch.float64)
        order = sorted(range(len(classes)), key=lambda c: (-(share[c] - take[c]).item(), tiebreak[c].item()))
        while missing > 0:
            for c in order:
                if missing and take[c] < capacity[c]:
                    take[c] += 1
                    missing -= 1
    val = []
    for c, n in zip(classes.tolist(), take.tolist()):
        members = (labels == c).nonzero().reshape(-1)
        val.append(members[torch.randperm(len(members), generator=generator)[:n]])
    val_index = torch.cat(val).sort().values
    mask = torch.ones(total, dtype=torch.bool)
    mask[val_index] = False
    return mask.nonzero().reshape(-1), val_index


class Dataset:
    """Built as ``cls(params)``; ``load()`` returns :class:`DataSplits`."""

    def __init__(self, params, key: str = "data"):
        self.params = params
        self.key = key
        #: where each array came from (``x_train`` -> ``"data.path: /d/file.npz"``), for errors; default: the key
        self.sources: dict[str, str] = {}

    def load(self) -> DataSplits:
        raise NotImplementedError

    def splits(self) -> DataSplits:
        """Load, apply ``subset``, hold out the validation split and check the declared shape/classes.

        ``subset`` takes the first N training samples first; ``val_fraction`` of those are then
        held out, stratified by label with ``val_seed`` (:func:`stratified_holdout`), unless
        ``load()`` returned a validation split of its own. Both splits keep the original order.
        """
        data = self.load()
        p = self.params
        check_samples(data, self.sources, f"{self.key} ({getattr(self, 'registry_name', type(self).__name__)})",
                      p.num_classes, self.key)
        if p.subset is not None:
            data.x_train, data.y_train = data.x_train[: p.subset], data.y_train[: p.subset]
        if p.val_fraction > 0 and data.x_val is None:
            train, val = stratified_holdout(data.y_train, p.val_fraction, p.val_seed, self.key)
            data.x_val, data.y_val = data.x_train[val], data.y_train[val]
            data.x_train, data.y_train = data.x_train[train], data.y_train[train]
        if p.normalize != "none":
            data = normalized(data, p.normalize)
        if getattr(p, "random_shift", 0) and len(data.input_shape) < 2:
            raise ConfigError(f"{self.key}.random_shift: needs images [..., H, W] but the samples have shape "
                              f"{list(data.input_shape)}; set it to 0")
        if p.input_shape is not None and tuple(p.input_shape) != data.input_shape:
            raise ConfigError(f"{self.key}.input_shape: declared {list(p.input_shape)} but the data has "
                              f"{list(data.input_shape)}")
        if p.num_classes is not None and p.num_classes < data.num_classes:
            raise ConfigError(f"{self.key}.num_classes: declared {p.num_classes} but labels go up to "
                              f"{data.num_classes - 1}")
        return data


def check_samples(data: DataSplits, sources: dict[str, str], origin: str, num_classes: int | None,
                  key: str = "data") -> None:
    """Refuse inputs with NaN/Inf and labels that are not class indices ``0 <= y < num_classes``
    (``num_classes`` when declared); each error names the array's file (``sources``) or ``origin``."""
    for split in ("train", "val", "test"):
        x, y = getattr(data, f"x_{split}", None), getattr(data, f"y_{split}", None)
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            continue  # file-backed datasets load their samples lazily
        where = sources.get(f"x_{split}", origin)
        if x.is_floating_point() or x.is_complex():
            finite = torch.isfinite(x)
            if not bool(finite.all()):
                bad, nan = int((~finite).sum()), int(torch.isnan(x).sum())
                samples = int((~finite).reshape(len(x), -1).any(1).sum())
                raise DataError(f"{where}: x_{split} holds {bad} non-finite value{'s' * (bad != 1)} ({nan} NaN, "
                                f"{bad - nan} ±Inf) in {samples} sample{'s' * (samples != 1)} of the {split} split; "
                                f"replace them or drop those samples")
        where = sources.get(f"y_{split}", origin)
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise DataError(f"{where}: y_{split} has dtype {y.dtype}; expected integer labels")
        if not len(y):
            continue
        low, high = int(y.min()), int(y.max())
        if low < 0:
            raise DataError(f"{where}: y_{split} has negative labels (smallest {low}); labels are class indices "
                            f"0, 1, ..., num_classes - 1")
        if num_classes is not None and high >= num_classes:
            raise DataError(f"{where}: y_{split} has labels up to {high} but {key}.num_classes is {num_classes}; "
                            f"labels must lie in [0, {num_classes})")


def normalized(data: DataSplits, how: str) -> DataSplits:
    """Scale every split with statistics of the training set only."""
    x = data.x_train
    if how == "minmax":
        low, high = x.min(), x.max()
        f = lambda t: (t - low) / (high - low).clamp(min=1e-12)  # noqa: E731
    else:
        mean, std = x.mean(0, keepdim=True), x.std(0, keepdim=True)
        std = torch.where(std < 1e-6, torch.ones_like(std), std)  # constant features are only centred
        f = lambda t: (t - mean) / std  # noqa: E731
    data.x_train, data.x_test = f(data.x_train), f(data.x_test)
    if data.x_val is not None:
        data.x_val = f(data.x_val)
    return data


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Translate each sample's last two dims (H, W) by its own whole-pixel offsets ``dy, dx``,
    drawn uniformly from ``[-max_shift, max_shift]``; pixels shifted in are zero."""
    if max_shift <= 0:
        return x
    k, (height, width) = max_shift, x.shape[-2:]
    batch = x.shape[0]
    padded = torch.nn.functional.pad(x.reshape(batch, -1, height, width), (k, k, k, k))
    dy = torch.randint(0, 2 * k + 1, (batch,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * k + 1, (batch,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(height, device=x.device))[:, None, :, None]  # [B, 1, H, 1]
    cols = (dx[:, None] + torch.arange(width, device=x.device))[:, None, None, :]   # [B, 1, 1, W]
    channels = torch.arange(padded.shape[1], device=x.device)[None, :, None, None]
    out = padded[torch.arange(batch, device=x.device)[:, None, None, None], channels, rows, cols]
    return out.reshape(x.shape)


#: shuffled batches are gathered this many bytes of samples at a time (a few small ops per chunk
#: instead of per batch; the copy in memory stays small next to the data)
GATHER_BYTES = 8 * 2 ** 20


class TensorBatches:
    """Iterate over ``(x, y)`` mini-batches of in-memory tensors.

    Shuffling draws a permutation from ``generator`` each epoch, so its state
    (saved in checkpoints) fixes the order of every later epoch; ``shift > 0`` applies
    :func:`random_shift` to every batch with offsets from the same generator.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = False,
                 generator: torch.Generator | None = None, shift: int = 0):
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.shift = shift

    def __len__(self) -> int:
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    def _shuffled(self):
        index = torch.randperm(len(self.x), generator=self.generator)
        sample_bytes = self.x[:1].numel() * self.x.element_size()
        chunk = self.batch_size * max(1, GATHER_BYTES // max(1, self.batch_size * sample_bytes))
        for part in index.split(chunk):  # one gather per chunk of batches, then views of it
            yield from zip(self.x.index_select(0, part).split(self.batch_size),
                           self.y.index_select(0, part).split(self.batch_size))

    def __iter__(self):
        if not len(self.x):
            return iter(())
        batches = self._shuffled() if self.shuffle else zip(self.x.split(self.batch_size), self.y.split(self.batch_size))
        if not self.shift:
            return batches  # the batches themselves: no generator frame per batch
        return ((random_shift(x, self.shift, self.generator), y) for x, y in batches)
