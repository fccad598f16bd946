"""Checkpoints: checksums, last/prev rotation, fallback on a damaged last.pt, no code on load."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle

import pytest
import torch

from snnrun import checkpoint
from snnrun.errors import SnnrunError


def payload(epoch: int) -> dict:
    return {"epoch": epoch, "model": {"w": torch.full((64, 64), float(epoch))}}


def test_save_writes_a_sha256sum_file(tmp_path):
    path = checkpoint.save(payload(1), tmp_path / "c.pt")
    digest, name = (tmp_path / "c.pt.sha256").read_text().split()
    assert name == "c.pt" and digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert checkpoint.load(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary files left


def test_rotation_keeps_the_previous_generation(tmp_path):
    for epoch in range(3):
        checkpoint.save_rotating(payload(epoch), tmp_path)
    assert checkpoint.load(tmp_path / "last.pt")["epoch"] == 2
    assert checkpoint.load(tmp_path / "prev.pt")["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "last.pt.sha256", "prev.pt", "prev.pt.sha256"]


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "delete"])
def test_damaged_last_falls_back_to_prev_with_a_warning_naming_the_file(tmp_path, caplog, damage):
    checkpoint.save_rotating(payload(4), tmp_path)
    checkpoint.save_rotating(payload(5), tmp_path)
    last = tmp_path / "last.pt"
    data = last.read_bytes()
    if damage == "truncate":
        last.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        last.write_bytes(data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:])
    elif damage == "empty":
        last.write_bytes(b"")
    else:
        last.unlink()
    with pytest.raises(SnnrunError, match="last.pt"):
        checkpoint.load(last)
    with caplog.at_level(logging.WARNING, logger="snnrun"):
        state, used = checkpoint.load_latest(tmp_path)
    assert used.name == "prev.pt" and state["epoch"] == 4
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert str(last) in warning and "previous good checkpoint" in warning and "(epoch 4)" in warning
    # A later save does not rotate the damaged file over the good one.
    checkpoint.save_rotating(payload(6), tmp_path)
    assert checkpoint.load(tmp_path / "prev.pt")["epoch"] == 4
    assert checkpoint.load(tmp_path / "last.pt")["epoch"] == 6


def test_truncated_file_without_a_checksum_is_still_caught(tmp_path):
    path = checkpoint.save(payload(1), tmp_path / "c.pt")
    os.unlink(tmp_path / "c.pt.sha256")  # e.g. copied without its sidecar
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(SnnrunError, match=r"c.pt is unreadable or truncated"):
        checkpoint.load(path)


def test_both_generations_bad_is_one_clear_error(tmp_path):
    checkpoint.save_rotating(payload(1), tmp_path)
    checkpoint.save_rotating(payload(2), tmp_path)
    for name in ("last.pt", "prev.pt"):
        (tmp_path / name).write_bytes(b"garbage")
    with pytest.raises(SnnrunError, match=r"no usable checkpoint in .*last.pt failed its checksum.*prev.pt failed"):
        checkpoint.load_latest(tmp_path)


class Payload:
    """Pickling this object makes the unpickler call os.system (the classic malicious checkpoint)."""

    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_crafted_pickle_is_refused_and_runs_nothing(tmp_path):
    sentinel = tmp_path / "ran"
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump({"format_version": 1, "x": Payload(sentinel)}, f)
    pickle.loads(pickle.dumps(Payload(tmp_path / "control")))  # the payload really executes with plain pickle
    assert (tmp_path / "control").exists()
    with pytest.raises(SnnrunError, match="refusing to load .*evil.pt: it is not a plain tensor checkpoint"):
        checkpoint.load(evil)
    torch_evil = tmp_path / "evil_torch.pt"
    torch.save({"format_version": 1, "x": Payload(sentinel)}, torch_evil)  # same, inside torch's zip format
    with pytest.raises(SnnrunError, match="refusing to load"):
        checkpoint.load(torch_evil)
    assert not sentinel.exists()


def test_a_failed_write_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    checkpoint.save_rotating(payload(1), tmp_path)
    checkpoint.save_rotating(payload(2), tmp_path)

    def full_disk(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "_write_atomic", full_disk)
    with pytest.raises(SnnrunError, match=r"cannot write checkpoint .*last.pt: No space left on device; "
                                          r".*prev.pt is the last good checkpoint"):
        checkpoint.save_rotating(payload(3), tmp_path)
    monkeypatch.undo()
    state, used = checkpoint.load_latest(tmp_path)
    assert state["epoch"] == 2 and used.name == "prev.pt"


def test_rotation_after_a_crash_between_file_and_checksum(tmp_path):
    """A run killed after writing last.pt but before its .sha256 (or halfway through a rotation)."""
    checkpoint.save_rotating(payload(1), tmp_path)
    checkpoint.save_rotating(payload(2), tmp_path)
    (tmp_path / "last.pt.sha256").unlink()  # killed before the checksum of epoch 2 was written
    checkpoint.save_rotating(payload(3), tmp_path)
    assert checkpoint.load(tmp_path / "prev.pt")["epoch"] == 2 and checkpoint.load(tmp_path / "last.pt")["epoch"] == 3
    os.replace(tmp_path / "last.pt", tmp_path / "prev.pt")  # killed between the two renames of a rotation
    state, used = checkpoint.load_latest(tmp_path)
    assert state["epoch"] == 3 and used.name == "prev.pt"
    checkpoint.save_rotating(payload(4), tmp_path)
    assert checkpoint.load_latest(tmp_path)[0]["epoch"] == 4
    assert checkpoint.verify(tmp_path / "last.pt") is None


def test_save_copy_links_best_and_survives_rotation(tmp_path):
    from snnrun import checkpoint as ck
    first = ck.save_rotating({"epoch": 1, "w": torch.ones(3)}, tmp_path)
    best = ck.save_copy(first, tmp_path / "best.pt")
    assert ck.verify(best) is None and best.read_bytes() == first.read_bytes()
    ck.save_rotating({"epoch": 2, "w": torch.zeros(3)}, tmp_path)  # last.pt replaced, the old one is prev.pt
    assert ck.load(best)["epoch"] == 1 and ck.load(tmp_path / "last.pt")["epoch"] == 2
    assert ck.verify(best) is None and ck.verify(tmp_path / "prev.pt") is None
    with pytest.raises(SnnrunError, match="not a verified checkpoint of this run"):
        ck.save_copy(tmp_path / "nowhere.pt", tmp_path / "best.pt")


def test_verify_rehashes_a_file_changed_after_this_process_wrote_it(tmp_path):
    from snnrun import checkpoint as ck
    path = ck.save({"epoch": 3}, tmp_path / "last.pt")
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))  # same size, new mtime: the remembered digest no longer applies
    assert "checksum mismatch" in ck.verify(path)


def test_verify_rereads_a_checksum_file_changed_after_this_process_wrote_it(tmp_path):
    from snnrun import checkpoint as ck
    path = ck.save({"epoch": 3}, tmp_path / "last.pt")
    assert ck.verify(path) is None
    sidecar = tmp_path / "last.pt.sha256"
    text = sidecar.read_text()
    sidecar.write_text(("0" if text[0] != "0" else "1") + text[1:])  # same size, new mtime
    assert "checksum mismatch" in ck.verify(path)
    ck.save_rotating({"epoch": 4}, tmp_path)  # a last.pt that fails its checksum is not kept as prev.pt
    assert not (tmp_path / "prev.pt").exists() and ck.load(path)["epoch"] == 4


def test_background_writer_keeps_order_and_reraises_a_failed_write():
    from snnrun.checkpoint import BackgroundWriter
    writer, seen = BackgroundWriter(), []
    writer.submit(seen.append, 1)
    writer.submit(seen.append, 2)
    writer.wait()
    assert seen == [1, 2]

    def fail():
        raise SnnrunError("cannot write checkpoint /x/last.pt: No space left on device")
    writer.submit(fail)
    with pytest.raises(SnnrunError, match="No space left on device"):
        writer.close()


def test_rng_state_round_trip_and_older_checkpoint_forms():
    import random

    import numpy as np

    from snnrun.reproducibility import rng_state, set_rng_state, state_bytes, state_tensor

    random.seed(5)
    torch.manual_seed(5)
    state = rng_state()
    assert isinstance(state["torch"], bytes) and len(state["torch"]) == torch.get_rng_state().numel()
    assert isinstance(state["python"][1], bytes) and len(state["python"][1]) == 625 * 8
    expected = ([random.random() for _ in range(3)], torch.rand(3))
    assert rng_state()["python"] != state["python"]  # the cached form follows the state
    set_rng_state(state)
    assert [random.random() for _ in range(3)] == expected[0] and torch.equal(torch.rand(3), expected[1])
    words = np.frombuffer(state["python"][1], dtype=np.int64)
    torch_state = state_tensor(state["torch"])
    for internal in (torch.from_numpy(words.copy()), words.tolist()):  # older checkpoints: int64 tensor, list
        set_rng_state({"torch": torch_state, "python": [state["python"][0], internal, state["python"][2]]})
        assert [random.random() for _ in range(3)] == expected[0] and torch.equal(torch.rand(3), expected[1])
    g = torch.Generator().manual_seed(3)
    saved = state_bytes(g.get_state())
    draws = torch.rand(4, generator=g)
    g.set_state(state_tensor(saved))
    assert torch.equal(torch.rand(4, generator=g), draws)
    assert state_tensor(g.get_state()).dtype == torch.uint8  # older checkpoints: the state tensor itself

