"""Atomic checkpoints that never execute code on load.

A checkpoint is a plain tree of tensors and primitives written with
``torch.save`` to a temporary file in the same directory, flushed to disk and
renamed over the target, so a crash never leaves a half-written file. Loading
uses ``torch.load(weights_only=True)``: a pickle that would run code is refused.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from .errors import SnnrunError

FORMAT_VERSION = 1


def save(payload: dict[str, Any], path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save({"format_version": FORMAT_VERSION, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SnnrunError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise SnnrunError(f"refusing to load {path}: it is not a plain tensor checkpoint "
                          f"(weights_only load failed: {str(err).splitlines()[0]})") from None
    except (RuntimeError, EOFError, OSError) as err:
        raise SnnrunError(f"checkpoint {path} is unreadable or truncated: {str(err).splitlines()[0]}") from None
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise SnnrunError(f"checkpoint {path} is not an snnrun checkpoint (format_version missing)")
    return payload
