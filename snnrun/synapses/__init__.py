"""Synapse types used by projections: ``synapse: {name: dense, init: kaiming}``."""

from .base import SYNAPSES, Synapse, WeightParams, init_weight
from . import dense  # noqa: F401

__all__ = ["SYNAPSES", "Synapse", "WeightParams", "init_weight"]
