"""Atomic, checksummed checkpoints that never execute code on load.

A checkpoint is a plain tree of tensors and primitives serialised with
``torch.save`` into memory, written to a temporary file ``.<name>.tmp-<PID>`` in the
same directory, flushed to disk and renamed over the target, so a crash never leaves
a half-written file under the final name (:func:`remove_stale_temporaries` deletes
the temporary files such a crash leaves). Next to it, ``<name>.sha256`` holds the
SHA-256 of the file's bytes in ``sha256sum`` format, naming that file
(``cd checkpoints && sha256sum -c *.sha256`` checks them by hand). :func:`verify`
always reads and hashes the file, so a truncated or bit-flipped file is detected
instead of being half-read; a file without a valid checksum file is *unverified*.

Loading uses ``torch.load(weights_only=True)``: a pickle that would run code is
refused. A run keeps two generations, ``last.pt`` and ``prev.pt``
(:func:`save_rotating`); :func:`load_latest` falls back to ``prev.pt`` with a
warning naming the bad file when ``last.pt`` is missing, truncated, corrupted or
unverified, and refuses unverified checkpoints when none verifies, unless they are
trusted explicitly (``snnrun resume RUN_DIR --trust-unverified``).

This module writes checkpoints and keeps the two generations; the checksum files are
:mod:`snnrun.checkpoint.checksum`, loading one file :mod:`snnrun.checkpoint.loading`,
background writes :mod:`snnrun.checkpoint.background` and the temporaries
:mod:`snnrun.checkpoint.temporaries`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
from pathlib import Path
from typing import Any

from ..errors import SnnrunError
from .background import BackgroundWriter
from .checksum import checksum_path, verified_digest, verify
from .loading import FORMAT_VERSION, UnverifiedCheckpoint, check_fits, load, load_checked
from .temporaries import holds_run_lock, remove_stale_temporaries, temporary_path

__all__ = ["FORMAT_VERSION", "LAST", "PREVIOUS", "TRUST_FLAG", "BackgroundWriter", "UnverifiedCheckpoint",
           "check_fits", "checksum_path", "holds_run_lock", "latest_exists", "load", "load_latest",
           "remove_stale_temporaries", "save", "save_copy", "save_rotating", "serialize", "take_trust_flag",
           "trust_unverified", "verify"]

LAST, PREVIOUS = "last.pt", "prev.pt"
#: the ``snnrun resume`` option that accepts checkpoints without a valid checksum file
TRUST_FLAG = "--trust-unverified"

log = logging.getLogger("snnrun")

#: whether :func:`load_latest` accepts unverified checkpoints when not told (``snnrun resume --trust-unverified``)
_trust_unverified = False


# --- writing ----------------------------------------------------------------------------------
def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it and rename it over ``path``.
    Plain ``os`` calls: the fewest system calls, since each one lets the training loop's thread
    wait for the GIL while this runs on the background writer."""
    tmp = temporary_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def serialize(payload: dict[str, Any]) -> bytes:
    """The bytes of a checkpoint file holding ``payload`` (``torch.save`` into memory)."""
    import torch

    buffer = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, **payload}, buffer)
    return buffer.getvalue()


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
        # (atomic rename) without a checksum (unverified), never a good file with a wrong checksum.
        checksum_path(path).unlink(missing_ok=True)
        _write_atomic(path, data)
        _write_checksum(path, digest)
    except OSError as err:
        raise SnnrunError(f"cannot write checkpoint {path}: {err.strerror or err}") from None
    return path


def _write_checksum(path: Path, digest: str) -> None:
    """``path.sha256``: one ``sha256sum`` line naming ``path`` itself (relative, as ``sha256sum -c`` wants)."""
    _write_atomic(checksum_path(path), f"{digest}  {path.name}\n".encode())


def save_copy(source: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Make ``path`` a verified copy of the verified checkpoint ``source``: a hard link (no bytes
    written; checkpoints are only ever replaced, never changed in place), or a byte copy where
    links are not supported. Atomic like :func:`save`; ``path.sha256`` names ``path``."""
    source, path = Path(source), Path(path)
    digest = verified_digest(source)
    if digest is None:
        raise SnnrunError(f"cannot copy checkpoint {source}: it is not a verified checkpoint of this run")
    tmp = temporary_path(path)
    try:
        checksum_path(path).unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
        try:
            os.link(source, tmp)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
            _write_atomic(path, source.read_bytes())
        _write_checksum(path, digest)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise SnnrunError(f"cannot write checkpoint {path}: {err.strerror or err}") from None
    return path


# --- the two generations: last.pt and prev.pt --------------------------------------------------
def save_rotating(payload: dict[str, Any] | bytes, directory: str | os.PathLike) -> Path:
    """Save ``directory/last.pt``, first moving the current one to ``prev.pt`` if it verifies
    (an unverified or damaged ``last.pt`` is overwritten; ``prev.pt`` stays the good one)."""
    directory = Path(directory)
    last, prev = directory / LAST, directory / PREVIOUS
    digest = verified_digest(last)
    try:
        if digest is not None:  # a crash after any step leaves last.pt or prev.pt verified with the newest state
            try:
                _write_checksum(prev, digest)  # prev.pt.sha256 names prev.pt and holds last.pt's digest
                os.replace(last, prev)
                checksum_path(last).unlink(missing_ok=True)
            except OSError as err:
                raise SnnrunError(f"cannot rotate checkpoint {last} to {prev}: {err.strerror or err}") from None
        return save(payload, last)
    except SnnrunError as err:
        good = next((p for p in (last, prev) if verify(p) is None), None)
        kept = f"{good} is the last good checkpoint (`snnrun resume` continues from it)" if good else \
            "no verified checkpoint is left"
        raise SnnrunError(f"{err}; {kept}") from None


def trust_unverified(enabled: bool = True) -> None:
    """Make :func:`load_latest` (so ``Runner.fit(resume=True)``) accept unverified checkpoints in
    this process when its caller does not say (``snnrun resume RUN_DIR --trust-unverified``)."""
    global _trust_unverified
    _trust_unverified = bool(enabled)


def take_trust_flag(args: list[str]) -> list[str]:
    """``args`` without ``--trust-unverified``; if it was there, :func:`trust_unverified` is on."""
    if TRUST_FLAG in args:
        trust_unverified()
    return [a for a in args if a != TRUST_FLAG]


def load_latest(directory: str | os.PathLike, map_location: Any = "cpu",
                trust_unverified: bool | None = None) -> tuple[dict[str, Any], Path]:
    """Load ``last.pt``, or ``prev.pt`` with a warning naming the bad ``last.pt``.

    Only checkpoints that match their checksum file are loaded, unless ``trust_unverified``
    (default: what :func:`trust_unverified` set, off) accepts those without a valid checksum
    file too, newest first, with a warning. When only unverified ones are left the error is
    :class:`UnverifiedCheckpoint`, naming the file and ``--trust-unverified``; a file that
    differs from its checksum is never loaded."""
    directory = Path(directory)
    trust = _trust_unverified if trust_unverified is None else trust_unverified
    errors: list[str] = []
    unverified: list[tuple[Path, str]] = []
    for name in (LAST, PREVIOUS):
        path = directory / name
        try:
            payload, state = load_checked(path, map_location, require_checksum=not trust)
        except UnverifiedCheckpoint as err:
            errors.append(str(err))
            unverified.append((path, err.why))
            continue
        except SnnrunError as err:
            errors.append(str(err))
            continue
        if state != "ok":
            log.warning("%s has no valid checksum file; loading it anyway (%s): its bytes are not checked", path,
                        TRUST_FLAG)
        if errors:
            log.warning("%s; resuming from the previous good checkpoint %s (epoch %s)", errors[0], path,
                        payload.get("epoch"))
        return payload, path
    if unverified:
        (first, why), others = unverified[0], [e for e in errors if not e.startswith(f"{unverified[0][0]} ")]
        raise UnverifiedCheckpoint(f"{first}: unverified ({why}) and no checkpoint in {directory} verifies"
                                   f"{' (' + '; '.join(others) + ')' if others else ''}; to resume from it anyway: "
                                   f"snnrun resume {directory.parent} {TRUST_FLAG}")
    raise SnnrunError(f"no usable checkpoint in {directory}: " + "; ".join(errors))


def latest_exists(directory: str | os.PathLike) -> bool:
    directory = Path(directory)
    return (directory / LAST).is_file() or (directory / PREVIOUS).is_file()
