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

    write = checkpoint._write_atomic

    def full_disk(path, data):  # the rotation goes through; the new last.pt does not fit
        if path.name == "last.pt":
            raise OSError(28, "No space left on device")
        write(path, data)

    monkeypatch.setattr(checkpoint, "_write_atomic", full_disk)
    with pytest.raises(SnnrunError, match=r"cannot write checkpoint .*last.pt: No space left on device; "
                                          r".*prev.pt is the last good checkpoint"):
        checkpoint.save_rotating(payload(3), tmp_path)
    monkeypatch.undo()
    state, used = checkpoint.load_latest(tmp_path)
    assert state["epoch"] == 2 and used.name == "prev.pt"


def test_rotation_after_a_crash_between_file_and_checksum(tmp_path):
    """A run killed after writing last.pt but before its .sha256: that last.pt is unverified, so it
    is overwritten by the next save instead of replacing the verified prev.pt."""
    checkpoint.save_rotating(payload(1), tmp_path)
    checkpoint.save_rotating(payload(2), tmp_path)
    (tmp_path / "last.pt.sha256").unlink()  # killed before the checksum of epoch 2 was written
    assert checkpoint.load_latest(tmp_path)[0]["epoch"] == 1
    checkpoint.save_rotating(payload(3), tmp_path)
    assert checkpoint.load(tmp_path / "prev.pt")["epoch"] == 1 and checkpoint.load(tmp_path / "last.pt")["epoch"] == 3
    assert [checkpoint.verify(tmp_path / n) for n in ("last.pt", "prev.pt")] == [None, None]
    checkpoint.save_rotating(payload(4), tmp_path)
    assert checkpoint.load_latest(tmp_path)[0]["epoch"] == 4
    assert checkpoint.load(tmp_path / "prev.pt")["epoch"] == 3


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



# --- unverified checkpoints, checksum files, stale temporaries --------------------------------------


def flip_a_weight(path):
    """Flip one bit inside the tensor data: torch.load still reads the file, the weights are wrong."""
    data = bytearray(path.read_bytes())
    marker = torch.full((64, 64), 5.0).numpy().tobytes()[:16]  # the start of the stored weights
    at = bytes(data).index(marker) + 100
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_checkpoint_without_its_checksum_is_unverified_and_resume_falls_back_to_prev(tmp_path, caplog):
    checkpoint.save_rotating(payload(4), tmp_path)
    checkpoint.save_rotating(payload(5), tmp_path)
    (tmp_path / "last.pt.sha256").unlink()  # deleting the checksum no longer switches verification off
    flip_a_weight(tmp_path / "last.pt")
    assert "unverified" in checkpoint.verify(tmp_path / "last.pt")
    with caplog.at_level(logging.WARNING, logger="snnrun"):
        state, used = checkpoint.load_latest(tmp_path)
    assert used.name == "prev.pt" and state["epoch"] == 4
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert f"{tmp_path / 'last.pt'} is unverified (no checksum file last.pt.sha256)" in warning
    assert "previous good checkpoint" in warning


@pytest.mark.parametrize("sidecar", [None, "", "not a checksum\n", "\xff\xfe garbage"])
def test_nothing_verifies_is_refused_unless_trusted(tmp_path, caplog, monkeypatch, sidecar):
    checkpoint.save_rotating(payload(4), tmp_path)
    checkpoint.save_rotating(payload(5), tmp_path)
    for name in ("last.pt", "prev.pt"):
        side = tmp_path / f"{name}.sha256"
        side.unlink()
        if sidecar is not None:
            side.write_bytes(sidecar.encode("latin-1"))
    with pytest.raises(checkpoint.UnverifiedCheckpoint) as err:
        checkpoint.load_latest(tmp_path)
    message = str(err.value)
    assert len(message.splitlines()) == 1 and message.startswith(f"{tmp_path / 'last.pt'}: unverified")
    assert "--trust-unverified" in message and "prev.pt" in message
    with caplog.at_level(logging.WARNING, logger="snnrun"):
        state, used = checkpoint.load_latest(tmp_path, trust_unverified=True)
    assert used.name == "last.pt" and state["epoch"] == 5
    assert "--trust-unverified" in caplog.text and str(tmp_path / "last.pt") in caplog.text
    # what `snnrun resume RUN --trust-unverified` does: the flag is taken out and trusted for this process
    monkeypatch.setattr(checkpoint, "_trust_unverified", False)
    assert checkpoint.take_trust_flag(["run", "--trust-unverified", "trainer.epochs=3"]) == ["run", "trainer.epochs=3"]
    assert checkpoint.load_latest(tmp_path)[0]["epoch"] == 5
    assert checkpoint.take_trust_flag(["run"]) == ["run"]


def test_a_corrupted_file_is_refused_even_when_unverified_ones_are_trusted(tmp_path):
    checkpoint.save_rotating(payload(4), tmp_path)
    (tmp_path / "last.pt").write_bytes(b"garbage")  # its checksum file says otherwise
    with pytest.raises(SnnrunError, match=r"no usable checkpoint in .*last.pt failed its checksum"):
        checkpoint.load_latest(tmp_path, trust_unverified=True)


def test_each_checksum_file_names_its_own_file_and_sha256sum_accepts_them(tmp_path):
    import shutil
    import subprocess

    for epoch in range(3):
        last = checkpoint.save_rotating(payload(epoch), tmp_path)
    checkpoint.save_copy(last, tmp_path / "best.pt")
    for name in ("last.pt", "prev.pt", "best.pt"):
        digest, named = (tmp_path / f"{name}.sha256").read_text().split()
        assert named == name and digest == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
    if shutil.which("sha256sum") is None:
        pytest.skip("no sha256sum binary here")
    sidecars = sorted(p.name for p in tmp_path.glob("*.sha256"))
    check = subprocess.run(["sha256sum", "-c", *sidecars], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert sorted(check.stdout.split()) == sorted(["best.pt:", "last.pt:", "prev.pt:"] + ["OK"] * 3)


def test_verify_always_reads_the_file(tmp_path):
    """No cache: a file changed in place with its size, inode and mtime restored still fails."""
    path = checkpoint.save(payload(3), tmp_path / "last.pt")
    before = os.stat(path)
    with open(path, "r+b") as f:  # same inode, same size
        f.seek(before.st_size - 10)
        byte = f.read(1)
        f.seek(before.st_size - 10)
        f.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns and os.stat(path).st_ino == before.st_ino
    assert "checksum mismatch" in checkpoint.verify(path)
    assert not hasattr(checkpoint, "_written")


def test_a_crash_inside_a_rotation_leaves_a_verified_checkpoint(tmp_path):
    checkpoint.save_rotating(payload(1), tmp_path)
    checkpoint.save_rotating(payload(2), tmp_path)
    digest = (tmp_path / "last.pt.sha256").read_text().split()[0]
    # killed after prev.pt.sha256 got last.pt's digest, before the rename: last.pt still verifies
    (tmp_path / "prev.pt.sha256").write_text(f"{digest}  prev.pt\n")
    assert checkpoint.load_latest(tmp_path)[0]["epoch"] == 2
    # killed after the rename: last.pt is gone, prev.pt verifies with the new epoch
    os.replace(tmp_path / "last.pt", tmp_path / "prev.pt")
    state, used = checkpoint.load_latest(tmp_path)
    assert state["epoch"] == 2 and used.name == "prev.pt"
    checkpoint.save_rotating(payload(3), tmp_path)
    assert [checkpoint.verify(tmp_path / n) for n in ("last.pt", "prev.pt")] == [None, None]
    assert checkpoint.load(tmp_path / "prev.pt")["epoch"] == 2


def dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporary_files_of_dead_writers_are_removed(tmp_path):
    checkpoint.save_rotating(payload(1), tmp_path)
    dead, alive = dead_pid(), os.getppid()
    names = [f".last.pt.tmp-{dead}", f".last.pt.sha256.tmp-{dead}", f".best.pt.tmp-{alive}",
             f".prev.pt.tmp-{os.getpid()}"]
    for name in names:
        (tmp_path / name).write_bytes(b"half a checkpoint")
    (tmp_path / "notes.tmp-1").write_text("not ours")
    removed = checkpoint.remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted(names[:2])
    assert sorted(p.name for p in tmp_path.iterdir() if ".tmp-" in p.name) == sorted(names[2:] + ["notes.tmp-1"])
    # the run directory's lock holder knows no other process writes there: every temporary file goes
    checkpoint.remove_stale_temporaries(tmp_path, exclusive=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "last.pt.sha256", "notes.tmp-1"]
    assert checkpoint.remove_stale_temporaries(tmp_path / "nowhere") == []
