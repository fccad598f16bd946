"""Atomic, checksummed checkpoints that never execute code on load.

A checkpoint is a plain tree of tensors and primitives serialised with
``torch.save`` into memory, written to a temporary file in the same directory,
flushed to disk and renamed over the target, so a crash never leaves a
half-written file under the final name. Next to it, ``<name>.sha256`` holds the
SHA-256 of the file's bytes in ``sha256sum`` format (``sha256sum -c last.pt.sha256``
checks it by hand); :func:`load` verifies it, so a truncated or bit-flipped file
is detected instead of being half-read.

Loading uses ``torch.load(weights_only=True)``: a pickle that would run code is
refused. A run keeps two generations, ``last.pt`` and ``prev.pt``
(:func:`save_rotating`); :func:`load_latest` falls back to ``prev.pt`` with a
warning naming the bad file when ``last.pt`` is missing, truncated or corrupted.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from .errors import SnnrunError

FORMAT_VERSION = 1
LAST, PREVIOUS = "last.pt", "prev.pt"

log = logging.getLogger("snnrun")


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def serialize(payload: dict[str, Any]) -> bytes:
    """The bytes of a checkpoint file holding ``payload`` (``torch.save`` into memory)."""
    buffer = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, **payload}, buffer)
    return buffer.getvalue()


#: files this process wrote: path -> (inode, size, mtime_ns, sha256), so that rotating a file
#: we just wrote and nobody touched since does not read and hash it again
_written: dict[Path, tuple[int, int, int, str]] = {}


def _remember(path: Path, digest: str) -> None:
    st = path.stat()
    _written[path.resolve()] = (st.st_ino, st.st_size, st.st_mtime_ns, digest)


def save(payload: dict[str, Any] | bytes, path: str | os.PathLike) -> Path:
    """Write ``payload`` (or its :func:`serialize` bytes) atomically to ``path`` and its checksum
    to ``path.sha256``.

    A failed write (full disk, read-only directory) raises :class:`SnnrunError` naming the
    file; the previous file under ``path``, if any, is left as it was.
    """
    path = Path(path)
    data = payload if isinstance(payload, bytes) else serialize(payload)
    digest = hashlib.sha256(data).hexdigest()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A stale checksum goes first and the new one last: a crash in between leaves a complete file
        # (atomic rename) without a checksum, never a good file with a wrong checksum.
        checksum_path(path).unlink(missing_ok=True)
        _write_atomic(path, data)
        _write_atomic(checksum_path(path), f"{digest}  {path.name}\n".encode())
        _remember(path, digest)
    except OSError as err:
        raise SnnrunError(f"cannot write checkpoint {path}: {err.strerror or err}") from None
    return path


def save_copy(source: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Make ``path`` a verified copy of the checkpoint ``source`` that this process just saved:
    a hard link (no bytes written; checkpoints are only ever replaced, never changed in place),
    or a byte copy where links are not supported. Atomic like :func:`save`."""
    source, path = Path(source), Path(path)
    known = _written.get(source.resolve())
    if known is None or verify(source) is not None:
        raise SnnrunError(f"cannot copy checkpoint {source}: it is not a verified checkpoint of this run")
    digest = known[3]
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        checksum_path(path).unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
        try:
            os.link(source, tmp)
            os.replace(tmp, path)
        except OSError:
            _write_atomic(path, source.read_bytes())
        _write_atomic(checksum_path(path), f"{digest}  {path.name}\n".encode())
        _remember(path, digest)
    except OSError as err:
        raise SnnrunError(f"cannot write checkpoint {path}: {err.strerror or err}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_rotating(payload: dict[str, Any] | bytes, directory: str | os.PathLike) -> Path:
    """Save ``directory/last.pt``, first moving the current one (if valid) to ``prev.pt``."""
    directory = Path(directory)
    last, prev = directory / LAST, directory / PREVIOUS
    if last.is_file() and verify(last) is None:
        try:  # each step leaves every file that exists either verified or without a checksum
            checksum_path(prev).unlink(missing_ok=True)
            os.replace(last, prev)
            if checksum_path(last).is_file():
                os.replace(checksum_path(last), checksum_path(prev))
            moved = _written.pop(last.resolve(), None)
            if moved is not None:
                _written[prev.resolve()] = moved
        except OSError as err:
            raise SnnrunError(f"cannot rotate checkpoint {last} to {prev}: {err.strerror or err}") from None
    try:
        return save(payload, last)
    except SnnrunError as err:
        kept = f"{prev} is the last good checkpoint" if prev.is_file() else "no earlier checkpoint"
        raise SnnrunError(f"{err}; {kept} (`snnrun resume` falls back to it)") from None


class BackgroundWriter:
    """Runs checkpoint writes on one background thread, one at a time and in order, so the
    training loop does not wait for the disk (hashing, writing and fsync release the GIL).
    :meth:`wait` blocks until the last write is on disk and re-raises its error."""

    def __init__(self):
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None

    def submit(self, fn, *args) -> None:
        self.wait()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="snnrun-checkpoint")
        self._pending = self._pool.submit(fn, *args)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None


def verify(path: str | os.PathLike) -> str | None:
    """``None`` if ``path`` matches its ``.sha256`` file, else why not (missing, truncated, corrupted)."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    sidecar = checksum_path(path)
    if not sidecar.is_file():
        return None  # written before checksums existed (or by hand): torch.load's own checks still apply
    expected = sidecar.read_text().split()[:1]
    known, st = _written.get(path.resolve()), path.stat()
    if known is not None and known[:3] == (st.st_ino, st.st_size, st.st_mtime_ns):
        actual = known[3]  # this process wrote these bytes and the file is unchanged since
    else:
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if expected != [actual]:
        return f"checksum mismatch (sha256 {actual[:12]}…, expected {(expected or ['?'])[0][:12]}…): truncated or corrupted"
    return None


def load(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Verify and load one checkpoint; every failure is a :class:`SnnrunError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise SnnrunError(f"checkpoint not found: {path}")
    problem = verify(path)
    if problem is not None:
        raise SnnrunError(f"checkpoint {path} failed its checksum: {problem}")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols before refusing them
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        text = " ".join(str(err).split())
        detail = text.split("WeightsUnpickler error:")[-1].split("Check the documentation")[0].strip()
        raise SnnrunError(f"refusing to load {path}: it is not a plain tensor checkpoint "
                          f"(torch.load(weights_only=True) refused it: {detail or text[:200]})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise SnnrunError(f"checkpoint {path} is unreadable or truncated: {str(err).splitlines()[0]}") from None
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise SnnrunError(f"checkpoint {path} is not an snnrun checkpoint (format_version missing)")
    return payload


def load_latest(directory: str | os.PathLike, map_location: Any = "cpu") -> tuple[dict[str, Any], Path]:
    """Load ``last.pt``, or ``prev.pt`` with a warning naming the bad ``last.pt``."""
    directory = Path(directory)
    errors = []
    for name in (LAST, PREVIOUS):
        path = directory / name
        try:
            payload = load(path, map_location)
        except SnnrunError as err:
            errors.append(str(err))
            continue
        if errors:
            log.warning("%s; resuming from the previous good checkpoint %s (epoch %s)", errors[0], path,
                        payload.get("epoch"))
        return payload, path
    raise SnnrunError(f"no usable checkpoint in {directory}: " + "; ".join(errors))


def latest_exists(directory: str | os.PathLike) -> bool:
    directory = Path(directory)
    return (directory / LAST).is_file() or (directory / PREVIOUS).is_file()
