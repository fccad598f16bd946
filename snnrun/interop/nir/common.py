"""What NIR export and import share: the ``nir`` module, values rounded to a config's decimals,
parameter arrays and node metadata."""

from __future__ import annotations

import numpy as np
import torch

from ...errors import SnnrunError


def require_nir():
    """The ``nir`` module, or a one-line error saying which extra installs it."""
    try:
        import nir
    except ImportError:
        raise SnnrunError("NIR support needs the `nir` package: pip install 'snnrun[nir]'") from None
    return nir


def clean(x: float) -> float:
    """``x`` rounded to 12 significant digits: unit conversions give back the decimal values of a
    config (``0.005 · 1000`` is ``5.0``), far below any physical precision."""
    return float(f"{float(x):.12g}")


def full(shape, value) -> np.ndarray:
    """A float64 array of ``shape`` holding ``value`` everywhere."""
    return np.full(tuple(shape), float(value), dtype=np.float64)


def array(value) -> np.ndarray:
    """``value`` (a tensor, array or sequence) as a NumPy array."""
    return np.asarray(value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value)


def node_meta(node) -> dict:
    """A node's metadata with text values as ``str``."""
    meta = getattr(node, "metadata", None) or {}
    return {str(k): (v.decode() if isinstance(v, bytes) else v) for k, v in dict(meta).items()}
