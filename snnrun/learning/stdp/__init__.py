"""Local learners: pair STDP and its variants, reward-modulated STDP, the tempotron.

Thin classes around the pure functions of :mod:`snnrun.learning.rules` (equations, update
order and discretisation are documented there). A local learner is attached to projections
(``trainable:``; empty = every projection with a weight) and is called by the simulation:
``begin_sample`` before a batch, ``on_step`` after every simulated step with that step's
spikes, ``end_sample`` with the decoder's scores and the labels. It never uses autograd.
"""

from __future__ import annotations

from dataclasses import fields

from .learner import LocalLearner, LocalParams
from .pair import STDP, NoOp, StdpParams
from .reward import MSTDP, MSTDPET, MstdpetParams, MstdpParams, RewardSwitchParams, RewardSwitchSTDP
from .tempotron import Tempotron, TempotronParams

__all__ = ["LocalParams", "LocalLearner", "StdpParams", "STDP", "NoOp", "MstdpParams", "MSTDP", "MstdpetParams",
           "MSTDPET", "RewardSwitchParams", "RewardSwitchSTDP", "TempotronParams", "Tempotron", "param_names"]


def param_names(cls) -> list[str]:
    return [f.name for f in fields(cls.Params)]
