"""Learners: gradient (BPTT and its aliases) and local rules, attached to parts of the network."""

from .base import LEARNERS, Learner
from . import bptt  # noqa: F401
from . import stdp  # noqa: F401

__all__ = ["LEARNERS", "Learner"]
