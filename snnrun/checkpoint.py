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

import contextlib
import hashlib
import io
import logging
import os
import pickle
import stat
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


def _write_atomic(path: Path, data: bytes) -> os.stat_result:
    """Write ``data`` to a temporary file beside ``path``, fsync it and rename it over ``path``;
    returns the file's stat. Plain ``os`` calls: the fewest system calls, since each one lets the
    training loop's thread wait for the GIL while this runs on the background writer."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return st


def serialize(payload: dict[str, Any]) -> bytes:
    """The bytes of a checkpoint file holding ``payload`` (``torch.save`` into memory)."""
    buffer = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, **payload}, buffer)
    return buffer.getvalue()


#: files this process wrote: absolute path -> (identity of the file, identity of its checksum
#: file, sha256), identity = (inode, size, mtime_ns); a file we wrote whose two files nobody
#: touched since is verified by two stat calls, not by reading and hashing it again
_written: dict[str, tuple[tuple[int, int, int], tuple[int, int, int], str]] = {}


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_ino, st.st_size, st.st_mtime_ns


def _key(path: Path) -> str:
    return os.path.abspath(path)


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
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
        # A stale checksum goes first and the new one last: a crash in between leaves a complete file
        # (atomic rename) without a checksum, never a good file with a wrong checksum.
        checksum_path(path).unlink(missing_ok=True)
        st = _write_atomic(path, data)
        _written[_key(path)] = (_identity(st), _identity(_write_checksum(path, digest)), digest)
    except OSError as err:
        raise SnnrunError(f"cannot write checkpoint {path}: {err.strerror or err}") from None
    return path


def _write_checksum(path: Path, digest: str) -> os.stat_result:
    return _write_atomic(checksum_path(path), f"{digest}  {path.name}\n".encode())


def save_copy(source: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Make ``path`` a verified copy of the checkpoint ``source`` that this process just saved:
    a hard link (no bytes written; checkpoints are only ever replaced, never changed in place),
    or a byte copy where links are not supported. Atomic like :func:`save`."""
    source, path = Path(source), Path(path)
    known = _written.get(_key(source))
    if known is None or verify(source) is not None:
        raise SnnrunError(f"cannot copy checkpoint {source}: it is not a verified checkpoint of this run")
    digest = known[2]
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        checksum_path(path).unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
        try:
            os.link(source, tmp)
            os.replace(tmp, path)
            identity = known[0]  # the same inode
        except OSError:
            tmp.unlink(missing_ok=True)
            identity = _identity(_write_atomic(path, source.read_bytes()))
        _written[_key(path)] = (identity, _identity(_write_checksum(path, digest)), digest)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise SnnrunError(f"cannot write checkpoint {path}: {err.strerror or err}") from None
    return path


def save_rotating(payload: dict[str, Any] | bytes, directory: str | os.PathLike) -> Path:
    """Save ``directory/last.pt``, first moving the current one (if valid) to ``prev.pt``."""
    directory = Path(directory)
    last, prev = directory / LAST, directory / PREVIOUS
    if verify(last) is None:
        try:  # each step leaves every file that exists either verified or without a checksum
            checksum_path(prev).unlink(missing_ok=True)
            os.replace(last, prev)
            with contextlib.suppress(FileNotFoundError):
                os.replace(checksum_path(last), checksum_path(prev))
            moved = _written.pop(_key(last), None)
            if moved is not None:
                _written[_key(prev)] = moved
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
    path, sidecar = Path(path), checksum_path(Path(path))
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    if not stat.S_ISREG(st.st_mode):
        return "missing"
    known = _written.get(_key(path))
    try:
        side = os.stat(sidecar)
    except FileNotFoundError:
        return None  # written before checksums existed (or by hand): torch.load's own checks still apply
    if known is not None and (known[0], known[1]) == (_identity(st), _identity(side)):
        return None  # this process wrote both files and neither changed since
    expected = sidecar.read_text().split()[:1]
    if known is not None and known[0] == _identity(st):
        actual = known[2]  # this process wrote these bytes and the file is unchanged since
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
