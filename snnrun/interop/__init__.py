"""Interoperability: a trained network as a NIR graph, a plain-torch program or safetensors weights,
and a NIR graph from another library as an snnrun network (docs/interop.md).

Needs the optional extra ``nir`` (``pip install 'snnrun[nir]'``: ``nir``, ``safetensors``); the
plain-torch export needs torch alone. Nothing here is imported by ``import snnrun``.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

from .runs import CHECKPOINTS, FORMATS


def export_run(run_dir: str | PathLike, format: str = "nir", output: str | PathLike | None = None,
               checkpoint: str = "best", nir_dt: float | None = None) -> list[Path]:
    """Export the network of the run in ``run_dir`` (its ``checkpoints/<checkpoint>.pt``, verified).

    ``format``: ``nir`` (a NIR graph, :func:`snnrun.interop.nir.to_nir`; ``nir_dt`` is one step's
    duration in the graph's time unit, default ``dt/1000``: seconds), ``torch`` (a ``torch.export``
    program loadable with torch alone, plus a JSON of its inputs, outputs and config) or
    ``safetensors`` (the weights plus a JSON of the graph). ``output`` defaults to
    ``RUN_DIR/export/network.<ext>``. Returns the files written."""
    from .runs import export
    return export(run_dir, format, output, checkpoint, nir_dt)


def load_nir(source: Any, dt: float = 1.0, duration: float | None = None, nir_dt: float | None = None,
             input_shape: tuple[int, ...] | None = None, output: str | list[str] | None = None,
             spike_fn=None):
    """A :class:`snnrun.network.Network` built from a NIR graph (a path or a ``nir.NIRGraph``),
    simulated at ``dt`` ms for ``duration`` ms (default 25 ms); ``nir_dt`` as in
    :func:`export_run`. The same build as the config ``network: {from_nir: PATH, dt: ...}``."""
    from .nir import load_nir as _load
    return _load(source, dt=dt, duration=duration, nir_dt=nir_dt, input_shape=input_shape, output=output,
                 spike_fn=spike_fn)


__all__ = ["export_run", "load_nir", "FORMATS", "CHECKPOINTS"]
