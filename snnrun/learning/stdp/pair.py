"""Pair STDP (all-to-all and nearest-spike, its registered aliases) and the rule that does not learn."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...schema import param
from .. import rules
from ..base import LEARNERS
from .learner import LocalLearner, LocalParams


@dataclass
class StdpParams(LocalParams):
    mode: str = param("all_to_all", choices=("all_to_all", "nearest"), help="trace: x+=1 per spike, or x=1 (nearest spike)")
    order: str = param("weights_first", choices=("weights_first", "traces_first"),
                       help="update weights from the traces before (weights_first) or after this step's spikes are added")
    tau_plus: float = param(20.0, unit="ms", gt=0, help="presynaptic trace time constant (potentiation window)")
    tau_minus: float = param(20.0, unit="ms", gt=0, help="postsynaptic trace time constant (depression window)")
    a_plus: float = param(1.0, ge=0, help="potentiation amplitude A+")
    a_minus: float = param(1.0, ge=0, help="depression amplitude A-")
    weight_dependence: str = param("additive", choices=("additive", "multiplicative"),
                                   help="additive, or multiplicative soft bounds f+=w_max-w, f-=w-w_min")


@LEARNERS.register("stdp")
class STDP(LocalLearner):
    """Trace-based pair STDP (Morrison et al. 2008): ``Δw = lr_post·A+·f+(w)·x_pre·s_post −
    lr_pre·A−·f−(w)·x_post·s_pre`` every step; ``mode`` all_to_all or nearest; order, same-step
    pairs and trace decay as in :mod:`snnrun.learning.rules`. ``w_norm`` rescales each
    postsynaptic neuron's incoming weights before every sample (or step)."""

    Params = StdpParams
    engine_rule = "stdp"  # snnrun.engine runs it (declared per class: subclasses must declare their own)

    def update(self, t, pre, post):
        w, t.x_pre, t.x_post, _ = rules.stdp_step(t.weight.data, pre, post, t.x_pre, t.x_post,
                                                  self.constants(t), t.outer)
        self._write(t, w)


LEARNERS.alias("nearest_online_stdp", "stdp", mode="nearest")
LEARNERS.alias("full_online_stdp", "stdp", mode="all_to_all")
LEARNERS.alias("postpre", "stdp", order="traces_first", mode="nearest", lr=[1e-4, 1e-2])


@LEARNERS.register("noop")
class NoOp(LocalLearner):
    """No learning: only weight decay and the bounds (and ``w_norm``) are applied each step
    (synapticflow's NoOp)."""

    engine_rule = "noop"  # snnrun.engine runs it (STDP with zero amplitudes: decay and bounds only)

    def update(self, t, pre, post):
        c = self.constants(t)
        self._write(t, rules.apply_update(t.weight.data, torch.zeros_like(t.weight.data), c))
