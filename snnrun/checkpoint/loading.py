"""Loading one checkpoint file: checked against its checksum, ``torch.load(weights_only=True)``,
and its tensors checked against the model they are loaded into."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import Any

from ..errors import SnnrunError
from .checksum import check

FORMAT_VERSION = 1


class UnverifiedCheckpoint(SnnrunError):
    """A checkpoint has no valid checksum file, so its bytes cannot be checked, and nothing better is there."""

    def __init__(self, message: str, why: str = ""):
        super().__init__(message)
        self.why = why  # e.g. "no checksum file last.pt.sha256"


def load(path: str | os.PathLike, map_location: Any = "cpu", require_checksum: bool = False) -> dict[str, Any]:
    """Verify and load one checkpoint; every failure is a :class:`SnnrunError` naming the file.

    A file whose bytes differ from its checksum file is refused. A file without a valid checksum
    file (unverified) is refused with :class:`UnverifiedCheckpoint` when ``require_checksum``,
    else loaded (``torch.load``'s own checks still apply)."""
    return load_checked(Path(path), map_location, require_checksum)[0]


def load_checked(path: Path, map_location: Any, require_checksum: bool) -> tuple[dict[str, Any], str]:
    """:func:`load`, also returning the file's state (``ok`` or ``unverified``)."""
    import torch

    if not path.is_file():
        raise SnnrunError(f"checkpoint not found: {path}")
    state, why, _ = check(path)
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
