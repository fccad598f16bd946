"""Synapse types used by projections: ``synapse: {name: dense, init: kaiming}``."""

from .base import SYNAPSES, Synapse, WeightParams, constrain, init_weight
from . import conv, dense, temporal  # noqa: F401  (register the synapses)

__all__ = ["SYNAPSES", "Synapse", "WeightParams", "constrain", "init_weight"]
