"""Neuron models, chosen by name: ``neuron: {name: lif, tau_m: 20.0}``."""

from .base import NEURONS, Neuron, SpikingParams
from . import adaptive, glif, hh, lif, nonlinear  # noqa: F401  (register the models)

__all__ = ["NEURONS", "Neuron", "SpikingParams"]
