"""Event datasets (N-MNIST, SHD) on tiny files the tests write; needs the optional tonic extra."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import compose_config
from snnrun.data import DATASETS
from snnrun.data.events import bin_events
from snnrun.errors import DataError

tonic = pytest.importorskip("tonic", reason="the optional `tonic` extra is not installed")
h5py = pytest.importorskip("h5py", reason="h5py comes with the optional `tonic` extra")


def write_nmnist_bin(path, events):
    """events: (x, y, p, t_us) tuples in the 40-bit N-MNIST format."""
    raw = bytearray()
    for x, y, p, t in events:
        raw += bytes([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(raw))


def make_nmnist(root):
    for split, n in (("Train", 4), ("Test", 2)):
        for i in range(n):
            label = i % 2
            write_nmnist_bin(root / "NMNIST" / split / str(label) / f"{i:05d}.bin",
                             [(3, 4, 1, 500), (3, 4, 1, 700), (10, 20, 0, 2500), (33, 33, 1, 9000 + label)])


def test_binning_counts_events_per_step():
    frames = bin_events(np.array([0, 999, 1000, 5000]), (np.array([0, 0, 1, 1]),), (2,), 3, 1.0, binary=False)
    assert frames.tolist() == [[2, 0], [0, 1], [0, 0]]
    assert bin_events(np.array([0, 10]), (np.array([1, 1]),), (2,), 1, 1.0, binary=True).tolist() == [[0, 1]]


def test_nmnist_frames(tmp_path):
    make_nmnist(tmp_path)
    ds = DATASETS.build({"name": "nmnist", "root": str(tmp_path), "steps": 5, "dt": 1.0, "binary": False,
                         "val_fraction": 0.0}, "data")
    ds.key = "data"
    splits = ds.splits()
    assert splits.input_shape == (5, 2, 34, 34) and splits.num_classes == 10 and splits.val_set is None
    frames, label = splits.train_set[2]  # sorted: 0/00000, 0/00002, 1/00001, 1/00003
    assert label == 1 and frames.shape == (5, 2, 34, 34)
    assert frames[0, 1, 4, 3] == 2 and frames[2, 0, 20, 10] == 1 and frames.sum() == 3  # 9 ms event is past T
    ds = DATASETS.build({"name": "nmnist", "root": str(tmp_path), "val_fraction": 0.5}, "data")
    ds.key = "data"
    held = ds.splits()  # stratified: one file of each label held out of the 4 training files
    assert held.val_size == 2 and len(held.train_set) == 2
    assert sorted(label for _, label in held.val_set.items) == [0, 1]
    assert {f for f, _ in held.val_set.items}.isdisjoint(f for f, _ in held.train_set.items)


def write_shd(root):
    for split, n in (("train", 6), ("test", 4)):
        with h5py.File(root / f"shd_{split}.h5", "w") as f:
            vlen_f, vlen_i = h5py.vlen_dtype(np.float32), h5py.vlen_dtype(np.uint16)
            times = f.create_dataset("spikes/times", (n,), dtype=vlen_f)
            units = f.create_dataset("spikes/units", (n,), dtype=vlen_i)
            for i in range(n):
                times[i] = np.array([0.0005, 0.0035, 0.0072], dtype=np.float32)
                units[i] = np.array([i % 3, 100, 699], dtype=np.uint16)
            f.create_dataset("labels", data=np.arange(n) % 3)


def test_shd_frames_and_a_training_run(tmp_path):
    write_shd(tmp_path)
    ds = DATASETS.build({"name": "shd", "root": str(tmp_path), "steps": 8, "dt": 1.0}, "data")
    ds.key = "data"
    splits = ds.splits()
    frames, label = splits.test_set[2]
    assert frames.shape == (8, 700) and label == 2
    assert frames[0, 2] == 1 and frames[3, 100] == 1 and frames[7, 699] == 1 and frames.sum() == 3
    from snnrun.build import build_experiment
    from snnrun.runner import Runner

    cfg = compose_config(["data=shd", f"data.root={tmp_path}", "data.steps=8", "encoder=spikes", "network.duration=8",
                          "network.populations.hidden.shape=8", "trainer.epochs=1", "trainer.progress=false",
                          "device=cpu", "data.batch_size=3"])
    exp = build_experiment(cfg)
    assert exp.network.populations["inp"].shape == (700,) and exp.network.populations["out"].shape == (20,)
    summary = Runner(exp, tmp_path / "run", "").fit()
    assert summary["epochs_completed"] == 1 and 0 <= summary["final"]["test/accuracy"] <= 1
    assert 0 <= summary["final"]["val/accuracy"] <= 1 and summary["selection"]["val_size"] == 1


def test_loader_workers_and_batch_sizes(tmp_path):
    from snnrun.build import build_experiment
    from snnrun.runner import Runner

    write_shd(tmp_path)
    batches = {}
    for workers in (0, 1):
        cfg = compose_config(["data=shd", f"data.root={tmp_path}", "data.steps=8", "encoder=spikes", "network.duration=8",
                              f"data.num_workers={workers}", "data.batch_size=4", "data.test_batch_size=3", "device=cpu"])
        runner = Runner(build_experiment(cfg), tmp_path / f"run{workers}", "")
        loader = runner._batches("test")
        # 6 training samples: 5 train + 1 validation (data.val_fraction: 0.1)
        assert loader.num_workers == workers and [len(y) for _, y in runner._batches("train")] == [4, 1]
        assert [len(y) for _, y in runner._batches("val")] == [1] and runner.exp.trainer.monitor == "val/accuracy"
        batches[workers] = [(x.clone(), y.clone()) for x, y in loader]
    assert [len(y) for _, y in batches[1]] == [3, 1]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(batches[0], batches[1]))


def test_missing_event_files(tmp_path):
    for name, message in (("nmnist", "no Train folder in"), ("shd", "shd_train.h5 not found in")):
        ds = DATASETS.build({"name": name, "root": str(tmp_path)}, "data")
        ds.key = "data"
        with pytest.raises(DataError, match=f"data.root: {message}"):
            ds.splits()
