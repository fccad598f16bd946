"""snnrun: spiking-neural-network experiments as Hydra configs.

The Python API (:mod:`snnrun.api`) is available here: ``snnrun.compose``, ``snnrun.run``,
``snnrun.load_run``, ``snnrun.build_network`` and ``snnrun.build_model``, and the interoperability
functions of :mod:`snnrun.interop`: ``snnrun.export_run`` (NIR, torch.export, safetensors) and
``snnrun.load_nir``. They are imported on first use, so ``import snnrun`` (and the ``snnrun`` command) does not load torch or Hydra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: names of :mod:`snnrun.api` available as ``snnrun.<name>`` (imported on first use)
_API = ("compose", "run", "load_run", "build_network", "build_model", "Result", "LoadedRun", "SpikingModel")

if TYPE_CHECKING:
    from .api import LoadedRun, Result, SpikingModel, build_model, build_network, compose, load_run, run  # noqa: F401
    from .interop import export_run, load_nir  # noqa: F401


#: names of :mod:`snnrun.interop` available as ``snnrun.<name>``
_INTEROP = ("export_run", "load_nir")


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        return getattr(api, name)
    if name in _INTEROP:
        from . import interop

        return getattr(interop, name)
    raise AttributeError(f"module 'snnrun' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_API) + list(_INTEROP))
