"""Datasets: npz, IDX (MNIST layout, torchvision layout, download with checksums), splits."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from conftest import MNIST, compose_config
from snnrun.data import DATASETS
from snnrun.data import idx as idx_module
from snnrun.errors import ConfigError, DataError


def build(node):
    dataset = DATASETS.build(node, "data")
    dataset.key = "data"
    return dataset


def write_idx(path, array, gz=False):
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    (gzip.open if gz else open)(path, "wb").write(payload)
    return path


def write_mnist(folder, gz=True, n_train=6, n_test=4):
    rng = np.random.default_rng(0)
    files = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        suffix = ".gz" if gz else ""
        files[f"{prefix}-images-idx3-ubyte.gz"] = write_idx(
            folder / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28)), gz)
        files[f"{prefix}-labels-idx1-ubyte.gz"] = write_idx(
            folder / f"{prefix}-labels-idx1-ubyte{suffix}", np.arange(n) % 10, gz)
    return files


def test_npz_reads_scales_and_splits(tmp_path):
    path = tmp_path / "d.npz"
    x_train = (np.arange(10, dtype=np.uint8)[:, None, None] * 28 + np.zeros((10, 4, 4), np.uint8)).astype(np.uint8)
    np.savez(path, x_train=x_train, y_train=np.arange(10) % 3,
             x_test=np.zeros((5, 4, 4), np.uint8), y_test=np.arange(5) % 3)
    data = build({"name": "npz", "path": str(path), "val_fraction": 0.2, "add_channel": True}).splits()
    assert data.x_train.shape == (8, 1, 4, 4) and data.x_val.shape == (2, 1, 4, 4)
    assert 0.5 < data.x_train.max().item() <= 1.0 and data.num_classes == 3 and data.y_train.dtype == torch.int64
    std = build({"name": "npz", "path": str(path), "normalize": "minmax", "scale": "none", "val_fraction": 0.0}).splits()
    assert std.x_test.max().item() == 0.0 and std.x_train.min().item() == 0.0 and std.x_train.max().item() == 1.0


@pytest.mark.parametrize("arrays,message", [
    (None, "data.path: file .* not found"),
    ({"x_train": np.zeros((2, 3))}, "lacks y_train, x_test, y_test"),
    ({"x_train": np.zeros((2, 3)), "y_train": np.zeros(2), "x_test": np.zeros((1, 3)), "y_test": np.zeros(1, int)},
     "y_train has dtype float64; expected integer labels"),
    ({"x_train": np.zeros((2, 3)), "y_train": np.zeros(3, int), "x_test": np.zeros((1, 3)), "y_test": np.zeros(1, int)},
     r"x_train \[2, 3\] and y_train \[3\] do not match"),
    ({"x_train": np.zeros((2, 3)), "y_train": np.zeros(2, int), "x_test": np.zeros((1, 4)), "y_test": np.zeros(1, int)},
     r"train samples \[3\] and test samples \[4\] differ"),
])
def test_npz_errors_name_the_file(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    if arrays is not None:
        np.savez(path, **arrays)
    with pytest.raises(DataError, match=message):
        build({"name": "npz", "path": str(path)}).splits()


def test_npz_truncated_file(tmp_path):
    path = tmp_path / "cut.npz"
    np.savez(path, x_train=np.zeros((100, 50)), y_train=np.zeros(100, int), x_test=np.zeros((5, 50)), y_test=np.zeros(5, int))
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DataError, match=r"cut.npz is not a readable .npz file"):
        build({"name": "npz", "path": str(path)}).splits()
    with pytest.raises(DataError, match=r"data.path: missing; pass data.path="):
        build({"name": "npz"}).splits()


@pytest.mark.parametrize("name,layout,gz", [("mnist", ".", True), ("mnist", ".", False), ("mnist", "MNIST/raw", True),
                                            ("fashion_mnist", "FashionMNIST/raw", False)])
def test_mnist_from_a_root(tmp_path, name, layout, gz):
    write_mnist(tmp_path / layout, gz=gz)
    data = build({"name": name, "root": str(tmp_path), "download": False, "val_fraction": 0.0}).splits()
    assert data.x_train.shape == (6, 1, 28, 28) and data.x_test.shape == (4, 1, 28, 28) and data.x_val is None
    assert data.y_train.tolist() == [0, 1, 2, 3, 4, 5] and 0 <= data.x_train.min() <= data.x_train.max() <= 1
    flat = build({"name": name, "root": str(tmp_path), "download": False, "flatten": True, "val_fraction": 0.0}).splits()
    assert flat.x_test.shape == (4, 784)


def test_idx_errors(tmp_path):
    good = write_idx(tmp_path / "a.idx", np.zeros((3, 2, 2)))
    good.write_bytes(good.read_bytes()[:-3])
    with pytest.raises(DataError, match=r"a.idx: IDX header says \[3, 2, 2\] \(12 bytes\) but the file holds 9"):
        idx_module.read_idx(good)
    (tmp_path / "b.idx").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DataError, match="bad magic number"):
        idx_module.read_idx(tmp_path / "b.idx")


def test_mnist_download_verifies_checksums(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    files = write_mnist(mirror)
    sums = {name: idx_module.md5(path) for name, path in files.items()}
    monkeypatch.setitem(idx_module.CHECKSUMS, "mnist", sums)
    cache = tmp_path / "cache"
    data = build({"name": "mnist", "root": str(cache), "mirrors": [mirror.as_uri()], "val_fraction": 0.0}).splits()
    assert data.x_train.shape[0] == 6 and (cache / "train-images-idx3-ubyte.gz").is_file()
    bad = dict(sums, **{"t10k-labels-idx1-ubyte.gz": "0" * 32})
    monkeypatch.setitem(idx_module.CHECKSUMS, "mnist", bad)
    with pytest.raises(DataError) as err:
        build({"name": "mnist", "root": str(tmp_path / "cache2"), "mirrors": [mirror.as_uri()]}).splits()
    assert "checksum mismatch" in str(err.value) and not (tmp_path / "cache2" / "t10k-labels-idx1-ubyte.gz").exists()


def test_offline_without_files_says_where_to_put_them(tmp_path):
    with pytest.raises(DataError) as err:
        build({"name": "fashion_mnist", "root": str(tmp_path), "mirrors": [(tmp_path / "nowhere").as_uri()]}).splits()
    text = str(err.value)
    assert text.startswith("data.root: train-images-idx3-ubyte.gz not found in")
    assert "download failed" in text and "FashionMNIST/raw" in text


def test_digits_and_synthetic_are_seeded():
    a = build({"name": "digits"}).splits()  # 1797 samples: 1437 train (1293 train + 144 validation), 360 test
    assert a.x_train.shape == (1293, 64) and a.x_val.shape == (144, 64) and a.x_test.shape == (360, 64)
    assert a.num_classes == 10
    s1 = build({"name": "synthetic", "seed": 3}).splits()
    s2 = build({"name": "synthetic", "seed": 3}).splits()
    assert torch.equal(s1.x_train, s2.x_train)


def test_validation_split_is_logged(tmp_path):
    from snnrun.build import build_experiment
    from snnrun.runner import Runner

    cfg = compose_config(["data=synthetic", "data.val_fraction=0.25", "trainer.epochs=1", "network.duration=4",
                          "trainer.progress=false", "device=cpu"])
    exp = build_experiment(cfg)
    assert len(exp.data.x_train) == 192 and len(exp.data.x_val) == 64 and exp.data.val_size == 64
    Runner(exp, tmp_path, "").fit()
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert "val/accuracy" in lines[0] and [line.split(",")[2] for line in lines[1:]] == ["train", "val", "test"]


def test_auto_monitor_selects_best_pt_on_the_validation_split(tmp_path):
    """trainer.monitor=auto (the default): val/accuracy on the default validation split, never the test set."""
    import json

    from snnrun import checkpoint
    from snnrun.build import build_experiment
    from snnrun.runner import Runner

    base = ["data=synthetic", "trainer.epochs=3", "network.duration=4", "trainer.progress=false", "device=cpu"]
    exp = build_experiment(compose_config(base))  # data.val_fraction: 0.1 by default
    assert exp.trainer.monitor == "val/accuracy" and exp.data.val_size == 26
    summary = Runner(exp, tmp_path, "").fit()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    val = {r["epoch"]: r["val/accuracy"] for r in rows if r["split"] == "val"}
    best_epoch = max(val, key=lambda e: (val[e], -e))  # the first epoch with the highest val accuracy
    assert summary["monitor"] == "val/accuracy" and summary["best"]["epoch"] == best_epoch
    assert summary["best"]["val/accuracy"] == val[best_epoch]
    assert checkpoint.load(tmp_path / "checkpoints" / "best.pt")["epoch"] == best_epoch
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["selection"] == {"monitor": "val/accuracy", "mode": "max", "split": "val", "select_on_test": False,
                                  "val_size": 26, "val_fraction": 0.1, "val_seed": 0}


def test_monitoring_the_test_set_needs_select_on_test(tmp_path):
    from snnrun.build import build_experiment
    from snnrun.runner import Runner

    base = ["data=synthetic", "trainer.epochs=1", "network.duration=4", "trainer.progress=false", "device=cpu",
            "monitors=off", "plots=off"]
    for monitor in ("test/accuracy", "test/loss"):
        with pytest.raises(ConfigError, match=rf"^trainer.monitor: {monitor} would select best.pt .* on the test set; "
                                              r".*trainer.select_on_test=true"):
            build_experiment(compose_config([*base, f"trainer.monitor={monitor}"]))
    exp = build_experiment(compose_config([*base, "trainer.monitor=test/loss", "trainer.mode=min",
                                           "trainer.select_on_test=true"]))
    assert exp.trainer.monitor == "test/loss"
    summary = Runner(exp, tmp_path, "").fit()
    assert summary["best"]["test/loss"] == summary["final"]["test/loss"]
    assert summary["selection"]["split"] == "test" and summary["selection"]["select_on_test"] is True
    # a train metric needs no validation split; a val metric does
    exp = build_experiment(compose_config([*base, "data.val_fraction=0", "trainer.monitor=train/loss", "trainer.mode=min"]))
    assert exp.trainer.monitor == "train/loss" and exp.data.x_val is None
    with pytest.raises(ConfigError, match=r"^trainer.monitor: val/loss needs a validation split; set data.val_fraction"):
        build_experiment(compose_config([*base, "data.val_fraction=0", "trainer.monitor=val/loss"]))


def test_auto_monitor_without_a_validation_split_is_a_one_line_error():
    from snnrun.build import build_experiment
    from snnrun.validate import validate_config

    cfg = compose_config(["data=synthetic", "data.val_fraction=0", "device=cpu"])
    for check in (build_experiment, validate_config):
        with pytest.raises(ConfigError) as err:
            check(cfg)
        text = str(err.value)
        assert "\n" not in text and text.startswith("trainer.monitor: auto selects on val/accuracy but the data have no "
                                                    "validation split (data.val_fraction=0)")
        for choice in ("data.val_fraction > 0", "trainer.monitor=train/loss",
                       "trainer.monitor=test/accuracy trainer.select_on_test=true"):
            assert choice in text
    # the explicit choice is accepted (and noted in summary.json's selection record)
    cfg = compose_config(["data=synthetic", "data.val_fraction=0", "device=cpu", "trainer.monitor=test/accuracy",
                          "trainer.select_on_test=true"])
    assert build_experiment(cfg).trainer.monitor == "test/accuracy"
    validate_config(cfg)


def test_validation_split_is_stratified_seeded_and_disjoint():
    from snnrun.data.base import stratified_holdout

    data = build({"name": "digits"}).splits()
    full = build({"name": "digits", "val_fraction": 0.0}).splits()
    assert len(data.x_train) + len(data.x_val) == len(full.x_train) == 1437
    # per class: the validation split keeps each class's share (within one sample of 10 %)
    train_counts, val_counts = torch.bincount(data.y_train, minlength=10), torch.bincount(data.y_val, minlength=10)
    share = (train_counts + val_counts).double() * 0.1
    assert ((val_counts - share).abs() < 1).all() and val_counts.sum() == 144
    # disjoint, and together exactly the training set (rows of digits are distinct images)
    rows = lambda x: {tuple(r.tolist()) for r in x}  # noqa: E731
    assert not rows(data.x_train) & rows(data.x_val)
    assert sorted(map(tuple, torch.cat([data.x_train, data.x_val]).tolist())) == sorted(map(tuple, full.x_train.tolist()))
    # both splits keep the original order
    train_idx, val_idx = stratified_holdout(full.y_train, 0.1, 0)
    assert torch.equal(data.x_train, full.x_train[train_idx]) and torch.equal(data.x_val, full.x_train[val_idx])
    assert (train_idx.diff() > 0).all() and (val_idx.diff() > 0).all()
    # val_seed picks other samples (ties in rounding go to other classes), still stratified
    other = build({"name": "digits", "val_seed": 1}).splits()
    assert not torch.equal(other.x_val, data.x_val) and len(other.x_val) == 144
    assert ((torch.bincount(other.y_val, minlength=10) - share).abs() < 1).all()
    # a class with 2 samples keeps 1 in training; one with a single sample stays in training
    labels = torch.tensor([0] * 10 + [1] * 2 + [2])
    train, val = stratified_holdout(labels, 0.3, 0)
    assert len(val) == 4 and set(labels[train].tolist()) == {0, 1, 2} and labels[val].tolist().count(0) == 3
    with pytest.raises(ConfigError, match=r"^data.val_fraction: cannot hold out a validation sample from 3 training "
                                          r"sample\(s\) while each of the 3 classes keeps one"):
        stratified_holdout(torch.tensor([0, 1, 2]), 0.5, 0)


def test_validation_split_does_not_depend_on_the_run_seed():
    from snnrun.build import build_experiment

    base = ["data=synthetic", "network.duration=4", "device=cpu"]
    a = build_experiment(compose_config([*base, "seed=0"]))
    b = build_experiment(compose_config([*base, "seed=7"]))
    assert torch.equal(a.data.x_val, b.data.x_val) and torch.equal(a.data.x_train, b.data.x_train)
    torch.manual_seed(123)  # nor on the global generator's state
    assert torch.equal(build({"name": "synthetic"}).splits().x_val, a.data.x_val)
    c = build_experiment(compose_config([*base, "seed=0", "data.val_seed=5"]))
    assert not torch.equal(a.data.x_val, c.data.x_val)


def test_subset_and_batch_sizes_reach_the_loops(tmp_path):
    from snnrun.build import build_experiment
    from snnrun.runner import Runner

    cfg = compose_config(["data=synthetic", "data.subset=50", "data.batch_size=16", "data.test_batch_size=100",
                          "network.duration=2", "device=cpu"])
    exp = build_experiment(cfg)
    # subset first (the first 50 training samples), then 10 % of those held out for validation: 45 + 5
    first = build({"name": "synthetic", "val_fraction": 0.0}).splits().x_train[:50]
    assert len(exp.data.x_train) == 45 and len(exp.data.x_val) == 5
    assert sorted(map(tuple, torch.cat([exp.data.x_train, exp.data.x_val]).tolist())) == sorted(map(tuple, first.tolist()))
    runner = Runner(exp, tmp_path, "")
    assert [len(y) for _, y in runner._batches("train")] == [16, 16, 13]
    assert [len(y) for _, y in runner._batches("val")] == [5]
    assert [len(y) for _, y in runner._batches("test")] == [100, 28]  # synthetic: 128 test samples


@pytest.mark.skipif(not MNIST.is_file(), reason="needs the MNIST subset mnist_6k.npz beside the checkout (absent on a fresh clone)")
def test_shared_mnist_subset_loads():
    data = build({"name": "npz", "path": str(MNIST)}).splits()  # 5000 training samples: 4500 train + 500 validation
    assert data.x_train.shape == (4500, 28, 28) and data.x_val.shape == (500, 28, 28)
    assert data.x_test.shape == (1000, 28, 28) and data.num_classes == 10


def test_temporal_patterns_need_memory_and_pass_through_the_spikes_encoder():
    from snnrun.encoders import ENCODERS
    from snnrun.errors import ShapeError

    data = build({"name": "temporal_patterns", "steps": 30, "cue_steps": 5, "train_size": 64, "test_size": 8}).splits()
    assert data.x_train.shape == (58, 30, 20) and data.x_val.shape == (6, 30, 20)  # 64 = 58 train + 6 validation
    assert set(data.x_train.unique().tolist()) <= {0.0, 1.0}
    cue, rest = data.x_train[:, :5].mean().item(), data.x_train[:, 5:].mean().item()
    assert cue > 0.2 and rest < 0.02  # the pattern lives in the cue; later steps are background noise
    same = data.x_train[data.y_train == data.y_train[0], :5].mean(0)
    assert (same > 0.8).sum() > 5  # a fixed pattern per class
    enc = ENCODERS.build({"name": "spikes"}, "encoder", dt=1.0, time_steps=30)
    assert enc.output_shape((30, 20)) == (20,)
    assert torch.equal(enc(data.x_train[:2])[:, 1], data.x_train[1])
    with pytest.raises(ShapeError, match="encoder: spikes got sequences of 30 steps but the network runs T = 20"):
        ENCODERS.build({"name": "spikes"}, "encoder", dt=1.0, time_steps=20)(data.x_train[:2])


def translated(image, dy, dx):
    """Reference: ``out[i, j] = image[i - dy, j - dx]`` inside the frame, 0 elsewhere."""
    out = torch.zeros_like(image)
    h, w = image.shape[-2:]
    for i in range(h):
        for j in range(w):
            if 0 <= i - dy < h and 0 <= j - dx < w:
                out[..., i, j] = image[..., i - dy, j - dx]
    return out


def test_random_shift_translates_each_image_by_its_own_offset():
    from snnrun.data import random_shift

    image = torch.arange(1.0, 13.0).reshape(1, 3, 4)  # [C=1, H=3, W=4], all pixels distinct
    x = image.expand(60, 1, 3, 4)
    out = random_shift(x, 1, torch.Generator().manual_seed(0))
    candidates = {(dy, dx): translated(image, dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
    seen = set()
    for sample in out:
        match = [k for k, c in candidates.items() if torch.equal(sample, c)]
        assert len(match) == 1, "each sample is exactly one whole-pixel translation"
        seen.add(match[0])
    assert seen == set(candidates)  # all 9 offsets in [-1, 1]² occur over 60 draws
    assert torch.equal(random_shift(x, 0), x)
    again = random_shift(x, 1, torch.Generator().manual_seed(0))
    assert torch.equal(again, out)  # seeded by the generator


def test_random_shift_augments_training_batches_only(tmp_path):
    from snnrun.build import build_experiment
    from snnrun.runner import Runner

    path = tmp_path / "img.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(1, 256, (8, 5, 5)).astype(np.uint8), y_train=np.arange(8) % 2,
             x_test=rng.integers(1, 256, (4, 5, 5)).astype(np.uint8), y_test=np.arange(4) % 2)
    cfg = compose_config(["data=npz", f"data.path={path}", "data.random_shift=2", "data.batch_size=8",
                          "network.duration=2", "device=cpu"])
    runner = Runner(build_experiment(cfg), tmp_path / "run", "")
    x_train, _ = next(iter(runner._batches("train")))
    x_test, _ = next(iter(runner._batches("test")))
    assert (x_train == 0).sum() > 0  # shifted: zeros came in (every original pixel is >= 1/255)
    assert torch.equal(x_test, runner.exp.data.x_test)  # evaluation sees the images unchanged
    vectors = tmp_path / "vec.npz"
    np.savez(vectors, x_train=np.zeros((4, 25)), y_train=np.arange(4) % 2, x_test=np.zeros((2, 25)), y_test=np.arange(2))
    with pytest.raises(ConfigError, match=r"data.random_shift: needs images \[..., H, W\] but the samples have shape \[25\]"):
        build({"name": "npz", "path": str(vectors), "random_shift": 1}).splits()


def test_standard_normalisation_leaves_constant_features_centred_not_blown_up(tmp_path):
    path = tmp_path / "c.npz"
    x_train = np.zeros((4, 3), np.float32)
    x_train[:, 0] = [0.0, 1.0, 2.0, 3.0]  # feature 0 varies; features 1, 2 are constant in training
    x_train[:, 2] = 0.5
    x_test = np.array([[1.5, 0.25, 1.0]], np.float32)
    np.savez(path, x_train=x_train, y_train=np.arange(4) % 2, x_test=x_test, y_test=np.zeros(1, int))
    data = build({"name": "npz", "path": str(path), "normalize": "standard", "scale": "none", "val_fraction": 0.0}).splits()
    std0 = float(np.std([0.0, 1.0, 2.0, 3.0], ddof=1))
    torch.testing.assert_close(data.x_test, torch.tensor([[0.0, 0.25, 0.5]]))
    torch.testing.assert_close(data.x_train[:, 0], torch.tensor([-1.5, -0.5, 0.5, 1.5]) / std0)


@pytest.mark.parametrize("gather_bytes", [10 ** 9, 3 * 5 * 4 * 4])  # one chunk; chunks of 3 batches of 4
def test_shuffled_batches_are_the_generators_permutation_in_order(monkeypatch, gather_bytes):
    from snnrun.data import base

    monkeypatch.setattr(base, "GATHER_BYTES", gather_bytes)
    x, y = torch.arange(30 * 5, dtype=torch.float32).reshape(30, 5), torch.arange(30)
    batches = list(base.TensorBatches(x, y, 4, shuffle=True, generator=torch.Generator().manual_seed(3)))
    perm = torch.randperm(30, generator=torch.Generator().manual_seed(3))
    assert [len(b) for b, _ in batches] == [4] * 7 + [2]
    assert torch.equal(torch.cat([b for b, _ in batches]), x[perm]) and torch.equal(torch.cat([t for _, t in batches]), perm)
    plain = list(base.TensorBatches(x, y, 4))
    assert torch.equal(torch.cat([b for b, _ in plain]), x) and len(plain) == 8
    assert list(base.TensorBatches(x[:0], y[:0], 4, shuffle=True)) == [] == list(base.TensorBatches(x[:0], y[:0], 4))


# --- data errors: non-finite inputs, labels, paths that are not .npz archives -------------------------


def save_npz(path, **arrays):
    rng = np.random.default_rng(0)
    base = {"x_train": rng.random((12, 4)).astype(np.float32), "y_train": np.arange(12) % 3,
            "x_test": rng.random((6, 4)).astype(np.float32), "y_test": np.arange(6) % 3}
    np.savez(path, **{**base, **arrays})
    return path


def one_line_error(node, error=DataError) -> str:
    with pytest.raises(error) as err:
        build(node).splits()
    message = str(err.value)
    assert len(message.splitlines()) == 1
    return message


def test_non_finite_inputs_are_refused_naming_the_file_split_and_count(tmp_path):
    x = np.random.default_rng(1).random((6, 4)).astype(np.float32)
    x[0, 0], x[0, 1], x[3, 2] = np.nan, np.inf, -np.inf
    path = save_npz(tmp_path / "d.npz", x_test=x)
    message = one_line_error({"name": "npz", "path": str(path)})
    assert message.startswith(f"data.path: {path}: x_test holds 3 non-finite values (1 NaN, 2 ±Inf) in 2 "
                              f"samples of the test split")
    x = np.random.default_rng(1).random((12, 4))
    x[5, 1] = np.nan
    path = save_npz(tmp_path / "train.npz", x_train=x)
    assert one_line_error({"name": "npz", "path": str(path)}).startswith(
        f"data.path: {path}: x_train holds 1 non-finite value (1 NaN, 0 ±Inf) in 1 sample of the train split")


def test_a_dataset_without_a_file_names_the_dataset(monkeypatch):
    from snnrun.data.builtin import Synthetic

    load = Synthetic.load

    def with_nan(self):
        data = load(self)
        data.x_train[2, 3] = float("nan")
        return data

    monkeypatch.setattr(Synthetic, "load", with_nan)
    assert one_line_error({"name": "synthetic"}).startswith(
        "data (synthetic): x_train holds 1 non-finite value (1 NaN, 0 ±Inf) in 1 sample of the train split")


def test_labels_outside_the_declared_classes_name_the_file(tmp_path):
    y = np.arange(12) % 3
    y[7] = 57
    path = save_npz(tmp_path / "d.npz", y_train=y)
    message = one_line_error({"name": "npz", "path": str(path), "num_classes": 10})
    assert message == (f"data.path: {path}: y_train has labels up to 57 but data.num_classes is 10; labels must "
                       f"lie in [0, 10)")
    assert build({"name": "npz", "path": str(path), "val_fraction": 0}).splits().num_classes == 58  # undeclared
    y = np.arange(6) % 3
    y[2] = -4
    path = save_npz(tmp_path / "neg.npz", y_test=y)
    assert one_line_error({"name": "npz", "path": str(path)}).startswith(
        f"data.path: {path} y_test has negative labels (smallest -4)")
    path = save_npz(tmp_path / "huge.npz", y_train=(np.arange(12) % 3).astype(np.uint64) + np.uint64(2 ** 63))
    assert one_line_error({"name": "npz", "path": str(path)}).startswith(
        f"data.path: {path} y_train has labels up to 9223372036854775810, beyond the 64-bit integer range")
    for dtype in (np.float32, bool):
        path = save_npz(tmp_path / "f.npz", y_train=(np.arange(12) % 2).astype(dtype))
        assert f"y_train has dtype {np.dtype(dtype)}; expected integer labels" in one_line_error(
            {"name": "npz", "path": str(path)})


def test_idx_labels_outside_the_declared_classes_name_the_label_file(tmp_path):
    files = write_mnist(tmp_path)
    write_idx(files["t10k-labels-idx1-ubyte.gz"], [0, 1, 57, 3], gz=True)
    message = one_line_error({"name": "mnist", "root": str(tmp_path), "download": False, "num_classes": 10,
                              "val_fraction": 0})
    assert message.startswith(f"data.root: {files['t10k-labels-idx1-ubyte.gz']}: y_test has labels up to 57 but "
                              f"data.num_classes is 10")


def test_a_path_that_is_not_an_npz_file_says_what_it_is(tmp_path):
    folder = tmp_path / "folder.npz"
    folder.mkdir()
    assert one_line_error({"name": "npz", "path": str(folder)}) == \
        f"data.path: {folder} is a directory, expected a .npz file"
    text = tmp_path / "notes.npz"
    text.write_text("x_train,y_train\n1,2\n")
    assert one_line_error({"name": "npz", "path": str(text)}) == \
        f"data.path: {text} is not a .npz archive (starts with b'x_train,y_train\\n')"
    single = tmp_path / "one.npy"
    np.save(single, np.zeros(3))
    assert one_line_error({"name": "npz", "path": str(single)}).startswith(
        f"data.path: {single} is a single .npy array, not a .npz archive")
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    assert one_line_error({"name": "npz", "path": str(empty)}) == f"data.path: {empty} is empty, not a .npz archive"
    assert one_line_error({"name": "mnist", "root": str(text), "download": False}).startswith(
        f"data.root: {text} is a file, expected a folder holding the IDX files")
