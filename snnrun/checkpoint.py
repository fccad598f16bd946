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
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import pickle
import re
import stat
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .errors import SnnrunError

FORMAT_VERSION = 1
LAST, PREVIOUS = "last.pt", "prev.pt"
#: the ``snnrun resume`` option that accepts checkpoints without a valid checksum file
TRUST_FLAG = "--trust-unverified"

log = logging.getLogger("snnrun")

#: temporary files of :func:`_write_atomic`: ``.<name>.tmp-<PID of the writer>``
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>[0-9]+)$")
#: the digest of a ``sha256sum`` line (``<hex>  <name>``, or ``<hex> *<name>`` in binary mode)
_DIGEST = re.compile(rb"[0-9a-fA-F]{64}")
#: whether :func:`load_latest` accepts unverified checkpoints when not told (``snnrun resume --trust-unverified``)
_trust_unverified = False


class UnverifiedCheckpoint(SnnrunError):
    """A checkpoint has no valid checksum file, so its bytes cannot be checked, and nothing better is there."""

    def __init__(self, message: str, why: str = ""):
        super().__init__(message)
        self.why = why  # e.g. "no checksum file last.pt.sha256"


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it and rename it over ``path``.
    Plain ``os`` calls: the fewest system calls, since each one lets the training loop's thread
    wait for the GIL while this runs on the background writer."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
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
    digest = _verified_digest(source)
    if digest is None:
        raise SnnrunError(f"cannot copy checkpoint {source}: it is not a verified checkpoint of this run")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
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


def save_rotating(payload: dict[str, Any] | bytes, directory: str | os.PathLike) -> Path:
    """Save ``directory/last.pt``, first moving the current one to ``prev.pt`` if it verifies
    (an unverified or damaged ``last.pt`` is overwritten; ``prev.pt`` stays the good one)."""
    directory = Path(directory)
    last, prev = directory / LAST, directory / PREVIOUS
    digest = _verified_digest(last)
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


def _alive(pid: int) -> bool:
    """Whether process ``pid`` may still be running (True when that cannot be told)."""
    if pid == os.getpid():
        return True
    if pid <= 0 or os.name == "nt":  # Windows: os.kill(pid, 0) would terminate the process
        return pid > 0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OverflowError:  # not a possible PID
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    return True


def remove_stale_temporaries(directory: str | os.PathLike, exclusive: bool = False) -> list[Path]:
    """Delete the temporary files ``.<name>.tmp-<PID>`` that a write killed midway left in
    ``directory``: those whose writer is no longer alive or, with ``exclusive`` (the caller holds
    the run directory's lock, so no other process writes there, and none of its own writes is
    running), all of them. Returns the removed paths."""
    directory = Path(directory)
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    removed = []
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        if not exclusive and _alive(int(match["pid"])):
            continue
        path = Path(entry.path)
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as err:
            log.warning("cannot remove the stale temporary file %s: %s", path, err.strerror or err)
            continue
        removed.append(path)
    if removed:
        log.info("removed %d temporary file(s) left by interrupted checkpoint writes in %s: %s", len(removed),
                 directory, ", ".join(p.name for p in removed))
    return removed


def holds_run_lock(run_dir: str | os.PathLike) -> bool:
    """Whether this process holds ``run_dir``'s writer lock (:mod:`snnrun.runlock`)."""
    from . import runlock

    return os.path.realpath(run_dir) in getattr(runlock, "_held", {})


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check(path: Path) -> tuple[str, str, str | None]:
    """``(state, why, digest)``; state is ``ok`` (``digest`` is the file's), ``missing``,
    ``unverified`` (no valid checksum file) or ``corrupted`` (the bytes differ from the checksum).
    Always reads and hashes the file: nothing is remembered between calls."""
    sidecar = checksum_path(path)
    try:
        st = os.stat(path)
    except OSError:
        return "missing", "missing", None
    if not stat.S_ISREG(st.st_mode):
        return "missing", "missing", None
    try:
        fields = sidecar.read_bytes().split()
    except FileNotFoundError:
        return "unverified", f"no checksum file {sidecar.name}", None
    except OSError as err:
        return "unverified", f"its checksum file {sidecar.name} is unreadable ({err.strerror or err})", None
    if not fields or not _DIGEST.fullmatch(fields[0]):
        return "unverified", f"its checksum file {sidecar.name} holds no sha256sum line", None
    expected = fields[0].decode().lower()
    try:
        actual = _sha256(path)
    except OSError as err:
        return "corrupted", f"unreadable ({err.strerror or err})", None
    if actual != expected:
        return "corrupted", (f"checksum mismatch (sha256 {actual[:12]}…, expected {expected[:12]}…): "
                             f"truncated or corrupted"), None
    return "ok", "", actual


def _verified_digest(path: Path) -> str | None:
    """The SHA-256 of ``path`` if it matches its checksum file, else None."""
    state, _, digest = _check(Path(path))
    return digest if state == "ok" else None


def verify(path: str | os.PathLike) -> str | None:
    """``None`` if ``path`` matches its ``.sha256`` file, else why not: missing, unverified (no
    valid checksum file), or truncated/corrupted. Reads and hashes the whole file every time."""
    state, why, _ = _check(Path(path))
    if state == "ok":
        return None
    return f"unverified: {why}" if state == "unverified" else why


def load(path: str | os.PathLike, map_location: Any = "cpu", require_checksum: bool = False) -> dict[str, Any]:
    """Verify and load one checkpoint; every failure is a :class:`SnnrunError` naming the file.

    A file whose bytes differ from its checksum file is refused. A file without a valid checksum
    file (unverified) is refused with :class:`UnverifiedCheckpoint` when ``require_checksum``,
    else loaded (``torch.load``'s own checks still apply)."""
    return _load(Path(path), map_location, require_checksum)[0]


def _load(path: Path, map_location: Any, require_checksum: bool) -> tuple[dict[str, Any], str]:
    """:func:`load`, also returning the file's state (``ok`` or ``unverified``)."""
    import torch

    if not path.is_file():
        raise SnnrunError(f"checkpoint not found: {path}")
    state, why, _ = _check(path)
    if state == "unverified" and require_checksum:
        raise UnverifiedCheckpoint(f"{path} is unverified ({why})", why)
    if state not in ("ok", "unverified"):
        raise SnnrunError(f"checkpoint {path} failed its checksum: {why}")
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
    return payload, state


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
            payload, state = _load(path, map_location, require_checksum=not trust)
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


def check_fits(expected: dict[str, Any], saved: dict[str, Any], what: str, source: str | os.PathLike) -> None:
    """Raise a one-line :class:`SnnrunError` unless the tensors ``saved`` (a ``state_dict`` from the
    checkpoint ``source``) fit the ``state_dict`` ``expected`` of ``what`` as the config builds it:
    the same names and, for each, the same shape."""
    missing = [k for k in expected if k not in saved]
    extra = [k for k in saved if k not in expected]

    def names(keys: list[str]) -> str:
        return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")

    if missing or extra:
        parts = ([f"this config has {names(missing)}, which the checkpoint lacks"] if missing else []) + \
                ([f"the checkpoint has {names(extra)}, which this config lacks"] if extra else [])
        raise SnnrunError(f"resume: {what} does not fit {source}: {'; '.join(parts)} (the model changed: "
                          f"start a new run)")
    for key, value in expected.items():
        old, new = tuple(getattr(saved[key], "shape", ())), tuple(getattr(value, "shape", ()))
        if old != new:
            raise SnnrunError(f"resume: {what} parameter {key} has shape {list(old)} in {source} but {list(new)} in "
                              f"this config (the model changed: its weights cannot be carried over; start a new run)")
