"""Untrusted dataset files (snnrun/data/idx.py): truncated, wrong shape or dtype -> a DataError naming the file."""

from __future__ import annotations

import os

import numpy as np
import pytest

from snnrun.errors import DataError
from test_data import build, write_idx, write_mnist


class Payload:
    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


def test_npz_with_a_pickled_object_array_is_refused_without_running_it(tmp_path):
    path = tmp_path / "evil.npz"
    evil = np.array([Payload(tmp_path / "ran")], dtype=object)
    np.savez(path, x_train=evil, y_train=np.zeros(1, int), x_test=evil, y_test=np.zeros(1, int))
    with pytest.raises(DataError, match=r"data.path: .*evil.npz is not a readable .npz file \(ValueError: "
                                        r"Object arrays cannot be loaded when allow_pickle=False\)"):
        build({"name": "npz", "path": str(path)}).splits()
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("arrays,message", [
    ({"x_train": np.array([["a", "b"]]), "y_train": np.zeros(1, int)}, r"x_train has dtype <U1; expected numbers"),
    ({"x_train": np.zeros((3, 2)), "y_train": np.zeros((3, 10), int)},
     r"x_train \[3, 2\] and y_train \[3, 10\] do not match \(need \[N, ...\] and \[N\]\)"),
    ({"x_train": np.zeros(3), "y_train": np.zeros(3, int)}, r"x_train \[3\] and y_train \[3\] do not match"),
    ({"x_train": np.zeros((0, 2)), "y_train": np.zeros(0, int)}, r"x_train and y_train hold no samples"),
    ({"x_train": np.zeros((2, 2)), "y_train": np.array([0, -1])}, r"y_train has negative labels"),
])
def test_npz_wrong_shapes_and_dtypes_name_the_file(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **{"x_test": np.zeros((1, 2)), "y_test": np.zeros(1, int), **arrays})
    with pytest.raises(DataError, match=rf"data.path: {path} {message}"):
        build({"name": "npz", "path": str(path)}).splits()


def test_npz_that_is_not_a_zip_names_the_file(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("x_train,y_train\n1,2\n")
    with pytest.raises(DataError, match=rf"data.path: {path} is not a .npz archive \(starts with b'x_train,"):
        build({"name": "npz", "path": str(path)}).splits()


def test_mnist_files_of_the_wrong_shape_name_both_files(tmp_path):
    files = write_mnist(tmp_path)
    write_idx(files["train-labels-idx1-ubyte.gz"], np.zeros(5), gz=True)  # 6 images, 5 labels
    with pytest.raises(DataError, match=r"data.root: train images \[6, 28, 28\] \(.*train-images-idx3-ubyte.gz\) and "
                                        r"labels \[5\] \(.*train-labels-idx1-ubyte.gz\) do not match"):
        build({"name": "mnist", "root": str(tmp_path), "download": False}).splits()
    write_idx(files["train-images-idx3-ubyte.gz"], np.zeros((6, 784)), gz=True)  # flat images
    with pytest.raises(DataError, match=r"train images \[6, 784\] .* do not match \(need \[N, H, W\] and \[N\]\)"):
        build({"name": "mnist", "root": str(tmp_path), "download": False}).splits()


def test_truncated_gzip_idx_names_the_file(tmp_path):
    files = write_mnist(tmp_path)
    path = files["t10k-images-idx3-ubyte.gz"]
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match=rf"{path}: unreadable or truncated IDX file"):
        build({"name": "mnist", "root": str(tmp_path), "download": False}).splits()
    plain = tmp_path / "plain-idx"
    write_idx(plain, np.zeros((2, 3)))
    plain.write_bytes(plain.read_bytes()[:6])
    from snnrun.data.idx import read_idx
    with pytest.raises(DataError, match=rf"{plain}: truncated IDX header"):
        read_idx(plain)
    wrong_type = tmp_path / "float-idx"
    wrong_type.write_bytes(bytes([0, 0, 0x0D, 1]) + (2).to_bytes(4, "big") + b"\0" * 8)  # 0x0D: float32 IDX
    with pytest.raises(DataError, match=rf"{wrong_type}: not an unsigned-byte IDX file"):
        read_idx(wrong_type)
