"""Seeds, RNG state capture/restore, and the versions recorded with every run."""

from __future__ import annotations

import functools
import platform
import random
import subprocess
from pathlib import Path

import numpy as np
import torch

from . import __version__


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def rng_state() -> dict:
    """All global RNG states as bytes and primitives (loadable with ``weights_only=True``; bytes
    pickle as one object, a tensor as a zip record of its own: a third of the time to save)."""
    state = {"torch": state_bytes(torch.get_rng_state()), "python": _python_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state_tensor(state["torch"]))
    version, internal, gauss = state["python"]
    if isinstance(internal, bytes):
        internal = np.frombuffer(internal, dtype=np.int64).tolist()
    elif isinstance(internal, torch.Tensor):  # older checkpoints: an int64 tensor, or a list of ints
        internal = internal.tolist()
    random.setstate((version, tuple(int(v) for v in internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def state_bytes(state: torch.Tensor) -> bytes:
    """A generator's state tensor (``get_state()``, uint8) as bytes."""
    return state.numpy().tobytes()


def state_tensor(state: bytes | torch.Tensor) -> torch.Tensor:
    """The uint8 tensor ``set_state()`` takes, from :func:`state_bytes` (or an older tensor form)."""
    return torch.frombuffer(bytearray(state), dtype=torch.uint8) if isinstance(state, bytes) else state


def _python_state() -> list:
    """``random``'s state with its 625 words as int64 bytes (one object to pickle, not 625)."""
    version, internal, gauss = random.getstate()
    return [version, np.array(internal, dtype=np.int64).tobytes(), gauss]


def git_commit(path: Path | None = None) -> str | None:
    """The commit of the snnrun source checkout, when it is one (asked once per process: it is
    the commit of the code that was imported, and every checkpoint records it)."""
    return _git_commit(path or Path(__file__).resolve().parent)


@functools.lru_cache(maxsize=None)
def _git_commit(path: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def versions() -> dict:
    """What ran: Python, torch and snnrun versions and the source commit (fixed for the process)."""
    return dict(_versions())


@functools.lru_cache(maxsize=None)
def _versions() -> dict:
    import hydra
    import omegaconf

    return {"python": platform.python_version(), "torch": str(torch.__version__), "snnrun": __version__,
            "numpy": np.__version__, "hydra": hydra.__version__, "omegaconf": omegaconf.__version__,
            "git_commit": git_commit()}
