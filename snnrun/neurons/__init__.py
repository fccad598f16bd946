"""Neuron models, chosen by name: ``neuron: {name: lif, tau_m: 20.0}``."""

from .base import NEURONS, Neuron, SpikingParams
from . import lif  # noqa: F401  (registers lif, if, leaky)

__all__ = ["NEURONS", "Neuron", "SpikingParams"]
