"""Device selection: ``device=auto|cpu|cuda|cuda:N|mps``."""

from __future__ import annotations

import torch

from .errors import DeviceError


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an absent accelerator is a clear error."""
    name = str(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"device: '{name}' is not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device: '{name}' requested but CUDA is not available here; use device=cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device: '{name}' requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif device.type == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise DeviceError(f"device: '{name}' requested but MPS is not available here; use device=cpu or auto")
    elif device.type != "cpu":
        raise DeviceError(f"device: '{name}' is not supported; use auto, cpu, cuda, cuda:N or mps")
    return device
