"""snnrun: spiking-neural-network experiments as Hydra configs.

The Python API (:mod:`snnrun.api`) is available here: ``snnrun.compose``, ``snnrun.run``,
``snnrun.load_run``, ``snnrun.build_network`` and ``snnrun.build_model``. It is imported on first
use, so ``import snnrun`` (and the ``snnrun`` command) does not load torch or Hydra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: names of :mod:`snnrun.api` available as ``snnrun.<name>`` (imported on first use)
_API = ("compose", "run", "load_run", "build_network", "build_model", "Result", "LoadedRun", "SpikingModel")

if TYPE_CHECKING:
    from .api import LoadedRun, Result, SpikingModel, build_model, build_network, compose, load_run, run  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'snnrun' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_API))
