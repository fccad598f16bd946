"""A checkpoint's checksum file ``<name>.sha256`` (``sha256sum`` format) and checking a file against it."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

#: the digest of a ``sha256sum`` line (``<hex>  <name>``, or ``<hex> *<name>`` in binary mode)
_DIGEST = re.compile(rb"[0-9a-fA-F]{64}")


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check(path: Path) -> tuple[str, str, str | None]:
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


def verified_digest(path: Path) -> str | None:
    """The SHA-256 of ``path`` if it matches its checksum file, else None."""
    state, _, digest = check(Path(path))
    return digest if state == "ok" else None


def verify(path: str | os.PathLike) -> str | None:
    """``None`` if ``path`` matches its ``.sha256`` file, else why not: missing, unverified (no
    valid checksum file), or truncated/corrupted. Reads and hashes the whole file every time."""
    state, why, _ = check(Path(path))
    if state == "ok":
        return None
    return f"unverified: {why}" if state == "unverified" else why
