"""Event-camera and spiking-audio datasets (optional extra ``tonic``): N-MNIST and SHD.

Events are binned into frames of ``dt`` ms: ``frame[t] = number of events with
⌊t_event / dt⌋ = t`` (clipped to 1 with ``binary: true``), cropped or zero-padded to T =
``network.duration / network.dt`` steps. Samples are ``[T, *sensor]`` spike trains, loaded
lazily from disk; use ``encoder=spikes``. Both datasets ship train and test files only: the
validation split holds out ``val_fraction`` of the training files (after ``subset``), stratified
by label with ``val_seed``, like the in-memory datasets.

- ``nmnist`` reads tonic's folder layout ``<root>/NMNIST/{Train,Test}/<label>/*.bin``
  (also ``<root>/{Train,Test}``) with ``tonic.io.read_mnist_file``; frames ``[T, 2, 34, 34]``.
- ``shd`` reads ``<root>/shd_{train,test}.h5`` (also under ``<root>/SHD``) with h5py; frames
  ``[T, 700]``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..extras import needs
from ..schema import param
from .base import DATASETS, Dataset, LoaderParams, stratified_holdout


def bin_events(t_us: np.ndarray, index: tuple[np.ndarray, ...], shape: tuple[int, ...], steps: int,
               dt_ms: float, binary: bool) -> torch.Tensor:
    """Count events per (step, *index) into a float tensor [steps, *shape]."""
    frames = np.zeros((steps, *shape), dtype=np.float32)
    bins = np.floor(np.asarray(t_us, dtype=np.float64) / (dt_ms * 1000.0)).astype(np.int64)
    keep = (bins >= 0) & (bins < steps)
    np.add.at(frames, (bins[keep], *(np.asarray(i)[keep] for i in index)), 1.0)
    if binary:
        np.minimum(frames, 1.0, out=frames)
    return torch.from_numpy(frames)


class EventSplits:
    """Splits backed by lazily loaded torch datasets (not in-memory tensors)."""

    def __init__(self, train, test, input_shape, num_classes, val=None):
        self.train_set, self.test_set, self.val_set = train, test, val
        self._input_shape, self._num_classes = tuple(input_shape), num_classes
        self.x_val = self.y_val = None  # no in-memory tensors: the validation split is `val_set`

    @property
    def val_size(self) -> int:
        return 0 if self.val_set is None else len(self.val_set)

    @property
    def input_shape(self):
        return self._input_shape

    @property
    def num_classes(self):
        return self._num_classes


class _Files(torch.utils.data.Dataset):
    def __init__(self, items, reader):
        self.items, self.reader = items, reader

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.reader(self.items[i])


@dataclass
class EventParams(LoaderParams):
    root: str = param("~/.cache/snnrun/events", help="folder holding the dataset files")
    steps: int = param(100, gt=0, help="T: frames per sample (network.duration / network.dt)")
    dt: float = param(1.0, unit="ms", gt=0, help="frame length (network.dt)")
    binary: bool = param(True, help="clip event counts to 1 (spikes) per frame")


def _holdout(items: list, labels: list[int], p: LoaderParams, key: str) -> tuple[list, list | None]:
    """Training items and validation items (None without ``val_fraction``): see ``stratified_holdout``."""
    if p.val_fraction <= 0:
        return items, None
    train, val = stratified_holdout(torch.tensor(labels, dtype=torch.int64), p.val_fraction, p.val_seed, key)
    return [items[i] for i in train.tolist()], [items[i] for i in val.tolist()]


def _require(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise DataError(needs("tonic", f"data: this dataset ({module} is missing)")) from None


@DATASETS.register("nmnist")
class NMNIST(Dataset):
    """Neuromorphic MNIST (Orchard et al. 2015), 34×34 ATIS events, 2 polarities."""

    @dataclass
    class Params(EventParams):
        root: str = param("~/.cache/snnrun/nmnist", help="folder holding the dataset files")

    def _folder(self, root: Path, split: str) -> Path:
        for folder in (root / "NMNIST" / split, root / split):
            if folder.is_dir():
                return folder
        raise DataError(f"{self.key}.root: no {split} folder in {root}; unpack N-MNIST so that "
                        f"{root / 'NMNIST' / split}/<label>/*.bin exist (tonic's layout)")

    def splits(self):
        _require("tonic")
        from tonic.io import read_mnist_file

        p = self.params
        root = Path(os.path.expanduser(p.root))
        dtype = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])

        def reader(item):
            path, label = item
            try:
                ev = read_mnist_file(str(path), dtype=dtype)
            except (OSError, ValueError) as err:
                raise DataError(f"{path}: unreadable N-MNIST file ({err})") from None
            frames = bin_events(ev["t"], (ev["p"], ev["y"].clip(0, 33), ev["x"].clip(0, 33)), (2, 34, 34),
                                p.steps, p.dt, p.binary)
            return frames, label

        sets, val = [], None
        for split in ("Train", "Test"):
            folder = self._folder(root, split)
            items = sorted((f, int(f.parent.name)) for f in folder.glob("*/*.bin") if f.parent.name.isdigit())
            if not items:
                raise DataError(f"{self.key}.root: {folder} holds no <label>/*.bin files")
            if split == "Train":
                if p.subset is not None:
                    items = items[: p.subset]
                items, val = _holdout(items, [label for _, label in items], p, self.key)
            sets.append(_Files(items, reader))
        return EventSplits(sets[0], sets[1], (p.steps, 2, 34, 34), 10, None if val is None else _Files(val, reader))


@DATASETS.register("shd")
class SHD(Dataset):
    """Spiking Heidelberg Digits (Cramer et al. 2020): 700 cochlear channels, 20 classes."""

    @dataclass
    class Params(EventParams):
        root: str = param("~/.cache/snnrun/shd", help="folder holding the dataset files")

    def _file(self, root: Path, split: str) -> Path:
        for path in (root / f"shd_{split}.h5", root / "SHD" / f"shd_{split}.h5"):
            if path.is_file():
                return path
        raise DataError(f"{self.key}.root: shd_{split}.h5 not found in {root} (or {root / 'SHD'}); "
                        f"download the SHD HDF5 files there")

    def splits(self):
        h5py = _require("h5py")
        p = self.params
        root = Path(os.path.expanduser(p.root))
        sets, classes, val = [], 0, None
        for split in ("train", "test"):
            path = self._file(root, split)
            try:
                with h5py.File(path, "r") as f:
                    labels = np.asarray(f["labels"], dtype=np.int64)
            except (OSError, KeyError) as err:
                raise DataError(f"{path}: not an SHD file (needs labels, spikes/times, spikes/units): {err}") from None
            classes = max(classes, int(labels.max()) + 1)
            count = len(labels) if split == "test" or p.subset is None else min(p.subset, len(labels))

            def reader(i, path=path, labels=labels):
                with h5py.File(path, "r") as f:
                    times, units = np.asarray(f["spikes"]["times"][i]), np.asarray(f["spikes"]["units"][i])
                frames = bin_events(times * 1e6, (units.clip(0, 699),), (700,), p.steps, p.dt, p.binary)
                return frames, int(labels[i])

            items = list(range(count))
            if split == "train":
                items, val = _holdout(items, labels[:count].tolist(), p, self.key)
                val = None if val is None else _Files(val, reader)
            sets.append(_Files(items, reader))
        return EventSplits(sets[0], sets[1], (p.steps, 700), max(classes, 20), val)
