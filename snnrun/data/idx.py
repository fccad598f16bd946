"""MNIST-family datasets from IDX files: read from a root, or downloaded with checksums."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..schema import param
from .base import DATASETS, DataSplits, Dataset, ImageParams

#: file name -> MD5 of the gzipped file, per dataset (the published archives).
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
MIRRORS = {
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
    "fashion_mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
}
#: sub-folders where torchvision keeps the raw files
TORCHVISION_DIRS = {"mnist": "MNIST/raw", "fashion_mnist": "FashionMNIST/raw"}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped); errors name the file."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: unreadable or truncated IDX file ({err})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise DataError(f"{path}: IDX header says {list(shape)} ({expected} bytes) but the file holds "
                        f"{len(data) - header} bytes (truncated?)")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, target: Path, checksum: str | None, timeout: float = 30.0) -> None:
    """Fetch ``url`` into ``target`` atomically; refuse it when its MD5 differs from ``checksum``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
        shutil.copyfileobj(response, out)
    if checksum is not None and md5(tmp) != checksum:
        tmp.unlink()
        raise DataError(f"{url}: checksum mismatch (expected MD5 {checksum}); file discarded")
    os.replace(tmp, target)


class IDXDataset(Dataset):
    """Images [N, 1, 28, 28] scaled to [0, 1], labels 0..9.

    Files are looked up in ``root`` (``<name>`` or ``<name>.gz``), then in torchvision's
    ``MNIST/raw`` (``FashionMNIST/raw``) layout under ``root``; missing files are downloaded from
    ``mirrors`` (MD5-verified) when ``download`` is true.
    """

    kind = "mnist"

    @dataclass
    class Params(ImageParams):
        root: str = param("~/.cache/snnrun/mnist", help="folder holding (or receiving) the IDX files")
        download: bool = param(True, help="download missing files from the mirrors")
        mirrors: list | None = param(None, help="base URLs to try (null = the standard mirrors)")
        flatten: bool = param(False, help="return [N, 784] vectors instead of [N, 1, 28, 28] images")

    def _find(self, root: Path, name: str) -> Path | None:
        for folder in (root, root / TORCHVISION_DIRS[self.kind]):
            for candidate in (folder / name, folder / name.removesuffix(".gz")):
                if candidate.is_file():
                    return candidate
        return None

    def _fetch(self, root: Path, name: str) -> Path:
        found = self._find(root, name)
        if found is not None:
            return found
        p = self.params
        reasons = []
        if p.download:
            for mirror in (p.mirrors or MIRRORS[self.kind]):
                try:
                    download(mirror.rstrip("/") + "/" + name, root / name, CHECKSUMS[self.kind][name])
                    return root / name
                except (OSError, DataError, ValueError) as err:
                    reasons.append(f"{mirror}: {err}")
        files = ", ".join(CHECKSUMS[self.kind])
        why = f" (download failed: {'; '.join(reasons)})" if reasons else " (data.download is false)"
        raise DataError(f"{self.key}.root: {name} not found in {root}{why}; put {files} (gzipped or not) "
                        f"in {root} or in {root / TORCHVISION_DIRS[self.kind]}")

    def load(self) -> DataSplits:
        root = Path(os.path.expanduser(self.params.root))
        if root.exists() and not root.is_dir():
            raise DataError(f"{self.key}.root: {root} is a file, expected a folder holding the IDX files")
        arrays = {}
        for split, prefix in (("train", "train"), ("test", "t10k")):
            image_file = self._fetch(root, f"{prefix}-images-idx3-ubyte.gz")
            label_file = self._fetch(root, f"{prefix}-labels-idx1-ubyte.gz")
            images, labels = read_idx(image_file), read_idx(label_file)
            self.sources.update({f"x_{split}": f"{self.key}.root: {image_file}",
                                 f"y_{split}": f"{self.key}.root: {label_file}"})
            if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
                raise DataError(f"{self.key}.root: {prefix} images {list(images.shape)} ({image_file}) and labels "
                                f"{list(labels.shape)} ({label_file}) do not match (need [N, H, W] and [N])")
            x = torch.from_numpy(images.astype(np.float32) / 255.0)
            x = x.reshape(len(x), -1) if self.params.flatten else x.unsqueeze(1)
            arrays[split] = (x, torch.from_numpy(labels.astype(np.int64)))
        return DataSplits(*arrays["train"], *arrays["test"], values="intensity")


@DATASETS.register("mnist")
class MNIST(IDXDataset):
    """MNIST handwritten digits (LeCun et al. 1998): 60000 train / 10000 test, 28×28."""

    kind = "mnist"


@DATASETS.register("fashion_mnist")
class FashionMNIST(IDXDataset):
    """Fashion-MNIST (Xiao et al. 2017): 60000 train / 10000 test, 28×28 clothing images."""

    kind = "fashion_mnist"

    @dataclass
    class Params(IDXDataset.Params):
        root: str = param("~/.cache/snnrun/fashion_mnist", help="folder holding (or receiving) the IDX files")


#: how the files that are not .npz archives start (a .npz file is a zip archive: ``PK\\x03\\x04``)
NPY_MAGIC, ZIP_MAGICS = b"\x93NUMPY", (b"PK\x03\x04", b"PK\x05\x06")


def check_npz(path: Path, key: str) -> None:
    """A :class:`DataError` naming ``key`` and ``path`` unless ``path`` is a file that starts like a
    zip archive (what ``np.savez`` writes): missing, a directory, empty, a ``.npy`` array, text."""
    if path.is_dir():
        raise DataError(f"{key}: {path} is a directory, expected a .npz file")
    if not path.exists():
        raise DataError(f"{key}: file {path} not found")
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as err:
        raise DataError(f"{key}: {path} cannot be read ({err.strerror or err})") from None
    if not head:
        raise DataError(f"{key}: {path} is empty, not a .npz archive")
    if head.startswith(NPY_MAGIC):
        raise DataError(f"{key}: {path} is a single .npy array, not a .npz archive; save the arrays with "
                        f"np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)")
    if not head.startswith(ZIP_MAGICS):
        raise DataError(f"{key}: {path} is not a .npz archive (starts with {head!r})")


@DATASETS.register("npz")
class NPZ(Dataset):
    """Any ``.npz`` file with ``x_train, y_train, x_test, y_test`` (images or vectors).

    uint8 inputs are scaled to [0, 1] (``scale: auto``); labels must be integers. Arrays are
    read with ``allow_pickle=False``: a file never executes code.
    """

    @dataclass
    class Params(ImageParams):
        path: str | None = param(None, help="the .npz file")
        scale: str = param("auto", choices=("auto", "none", "255"),
                           help="auto: divide uint8 by 255; 255: always; none: keep values")
        add_channel: bool = param(False, help="reshape [N, H, W] images to [N, 1, H, W] (for conv nets)")

    def load(self) -> DataSplits:
        p = self.params
        if p.path is None:
            raise DataError(f"{self.key}.path: missing; pass data.path=/path/to/file.npz")
        path = Path(os.path.expanduser(p.path))
        check_npz(path, f"{self.key}.path")
        self.sources = dict.fromkeys(("x_train", "y_train", "x_test", "y_test"), f"{self.key}.path: {path}")
        try:
            with np.load(path, allow_pickle=False) as npz:
                missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in npz.files]
                if missing:
                    raise DataError(f"{self.key}.path: {path} lacks {', '.join(missing)} (has {', '.join(npz.files)})")
                arrays = {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        except DataError:
            raise
        except Exception as err:  # noqa: BLE001 - numpy raises many types for corrupt archives
            raise DataError(f"{self.key}.path: {path} is not a readable .npz file ({type(err).__name__}: {err})") from None
        out = []
        for split in ("train", "test"):
            x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
            if not np.issubdtype(x.dtype, np.number):
                raise DataError(f"{self.key}.path: {path} x_{split} has dtype {x.dtype}; expected numbers")
            if not np.issubdtype(y.dtype, np.integer):
                raise DataError(f"{self.key}.path: {path} y_{split} has dtype {y.dtype}; expected integer labels")
            if x.ndim < 2 or y.ndim != 1 or len(x) != len(y):
                raise DataError(f"{self.key}.path: {path} x_{split} {list(x.shape)} and y_{split} {list(y.shape)} "
                                f"do not match (need [N, ...] and [N])")
            if len(y) == 0:
                raise DataError(f"{self.key}.path: {path} x_{split} and y_{split} hold no samples")
            if y.min() < 0:
                raise DataError(f"{self.key}.path: {path} y_{split} has negative labels (smallest {y.min()}); "
                                f"labels are class indices 0, 1, ..., num_classes - 1")
            if y.max() > np.iinfo(np.int64).max:
                raise DataError(f"{self.key}.path: {path} y_{split} has labels up to {y.max()}, beyond the 64-bit "
                                f"integer range; labels are class indices 0, 1, ..., num_classes - 1")
            scale = p.scale == "255" or (p.scale == "auto" and x.dtype == np.uint8)
            xt = torch.from_numpy(x.astype(np.float32) / (255.0 if scale else 1.0))
            if p.add_channel and xt.dim() == 3:
                xt = xt.unsqueeze(1)
            out += [xt, torch.from_numpy(y.astype(np.int64))]
        if out[0].shape[1:] != out[2].shape[1:]:
            raise DataError(f"{self.key}.path: {path} train samples {list(out[0].shape[1:])} and test samples "
                            f"{list(out[2].shape[1:])} differ in shape")
        return DataSplits(*out)
