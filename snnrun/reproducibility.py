"""Seeds, RNG state capture/restore, and the versions recorded with every run."""

from __future__ import annotations

import functools
import platform
import random
import subprocess
from pathlib import Path

import torch

from . import __version__


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def rng_state() -> dict:
    """All global RNG states, as tensors and primitives (loadable with ``weights_only=True``)."""
    state = {"torch": torch.get_rng_state(), "python": _python_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    internal = internal.tolist() if isinstance(internal, torch.Tensor) else internal  # list: older checkpoints
    random.setstate((version, tuple(int(v) for v in internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state():
    """``random``'s state with its 625 words as one int64 tensor (one object to pickle, not 625)."""
    version, internal, gauss = random.getstate()
    return [version, torch.tensor(internal, dtype=torch.int64), gauss]


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
    return {"python": platform.python_version(), "torch": str(torch.__version__), "snnrun": __version__,
            "git_commit": git_commit()}
