"""Backpropagation through time with surrogate spike gradients."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..losses import RateRegParams, RateRegularizer, get_loss
from ..schema import defaults, param
from ..surrogate import build_surrogate, surrogate_node
from .base import LEARNERS, Learner


@LEARNERS.register("bptt")
class BPTT(Learner):
    """Surrogate-gradient BPTT: autograd through the unrolled simulation, with the
    Heaviside spike's derivative replaced by ``surrogate``'s (STBP, Wu et al. 2018;
    STCA, Gu et al. 2019; SuperSpike, Zenke & Ganguli 2018). The optimizer and
    scheduler apply to the parameters of ``trainable`` (default: all)."""

    gradient = True

    @dataclass
    class Params:
        loss: str = param("cross_entropy", help="loss on decoder scores: cross_entropy, mse_count, nll, first_spike_time")
        loss_options: dict = param({}, help="keyword options of the loss (e.g. {on: 20, off: 2} for mse_count)")
        surrogate: dict = param(surrogate_node("atan"),
                                help="spike function's surrogate gradient (snnrun list surrogate): its name and "
                                     "any of its parameters; null = the surrogate's own default")
        trainable: list = param([], help="projections/populations trained; empty = all")
        max_grad_norm: float | None = param(None, help="clip the gradient norm (null = no clipping)")
        rate_reg: dict = param(defaults(RateRegParams),
                               help="firing-rate regulariser added to the training loss: weight [1/Hz^2] · Σ_pop "
                                    "mean_i (r_i - target)^2, r_i in Hz (per neuron, or per: population); target_hz: "
                                    "{population: Hz} or one rate for every hidden population; weight 0 = off")

    def __init__(self, params, network, key="learner"):
        super().__init__(params, network, key)
        self.loss_fn = get_loss(params.loss, f"{key}.loss")
        import inspect

        allowed = [n for n in inspect.signature(self.loss_fn).parameters][2:]
        for name in params.loss_options:
            if name not in allowed:
                from ..errors import ConfigError
                raise ConfigError(f"{key}.loss_options.{name}: {params.loss} has no option '{name}'; "
                                  f"valid: {', '.join(allowed) or '(none)'}")
        self.rate_reg = RateRegularizer.build(params.rate_reg, network, f"{key}.rate_reg")  # None: off
        if self.rate_reg is not None:  # its populations' spikes stay differentiable under network.recompute_steps
            network.differentiated.update(self.rate_reg.targets)

    def loss(self, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(scores, target, **self.params.loss_options)

    def penalty(self, out) -> torch.Tensor | None:
        """The firing-rate regulariser of ``out``'s spikes (:class:`snnrun.losses.RateRegularizer`)."""
        return None if self.rate_reg is None else self.rate_reg(out.spikes)

    def surrogate(self):
        return build_surrogate(self.params.surrogate, f"{self.key}.surrogate")


LEARNERS.alias("stbp", "bptt", surrogate=surrogate_node("sigmoid"))  # alpha 4 (Wu et al. 2018)
LEARNERS.alias("stca", "bptt", surrogate=surrogate_node("rectangle"))  # width 1 (Gu et al. 2019)
LEARNERS.alias("sbp", "bptt", surrogate=surrogate_node("fast_sigmoid"))  # slope 25 (Zenke & Ganguli 2018)
