"""The tempotron (Gütig & Sompolinsky 2006) on the projections into the output population."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from ...errors import ConfigError
from ...schema import param
from .. import rules
from ..base import LEARNERS
from .learner import LocalLearner, LocalParams


@dataclass
class TempotronParams(LocalParams):
    trainable: list = param([], help="projections trained, all into the output population (network.output); "
                                     "empty = every projection into it with a weight")
    lr: list = param([1.0, 1.0], help="unused by the tempotron (its rate is learning_rate; miss_weight scales misses)")
    tau: float = param(15.0, unit="ms", gt=0, help="PSP decay time constant τ")
    tau_s: float = param(3.75, unit="ms", gt=0, help="PSP rise time constant τ_s")
    learning_rate: float = param(3e-3, gt=0, help="λ")
    miss_weight: float | None = param(None, gt=0, help="λ factor of a miss (potentiation); null: C-1 with C classes "
                                                      "(each neuron sees C-1 negative classes per positive one), 1 "
                                                      "with one output")


@LEARNERS.register("tempotron")
class Tempotron(LocalLearner):
    r"""Tempotron (Gütig & Sompolinsky 2006) on the projections into the output population; the
    earlier projections keep their initial weights (a fixed random spiking feature layer).

    The potential of output neuron i is ``V_i(t) = Σ_j w_ij Σ_{t_j} K(t − t_j)`` (j over the
    inputs of every trained projection), ``K(t) = V0 (e^{−t/τ} − e^{−t/τ_s})`` with V0 normalising
    the peak of K to 1. Each step the kernels advance (exact decay over dt, then this step's input
    spikes add 1, so a spike counts from the next step) and ``t_max,i``, the time of neuron i's
    maximal potential, is tracked over the steps at which some input's PSP is non-zero (a neuron
    whose inputs sum negative still has a t_max with input, so a miss can potentiate it).

    Classes: with C classes and N outputs, neuron i is a binary tempotron for class ``i // (N/C)``
    (one neuron per class for the spike-count decoder) and should fire iff that is the label; with
    one output, iff the label is 1. ``fired`` is whether the network's output neuron spiked during
    the sample. When the sample ends, on an error ``Δw_ij = λ·ε_i·Σ_{t_j < t_max,i} K(t_max,i − t_j)``
    with ``ε_i = +m`` for a miss and ``−1`` for a false alarm, summed over the batch
    (``reduction: mean`` divides by its size). ``m = miss_weight``, by default C − 1: each neuron
    is shown C − 1 negative classes per positive one, and m restores the balance of Gütig &
    Sompolinsky's tasks (half the patterns +, half −); with m = 1 a neuron settles where its misses
    balance the false alarms of all the other classes, and often leaves a sample with no spike."""

    Params = TempotronParams

    def __init__(self, params, network, key="learner"):
        if len(network.outputs) > 1:
            raise ConfigError(f"{key}: the tempotron needs a single output population (network.output), "
                              f"not {network.outputs}")
        output = network.output
        if params.trainable:
            wrong = [n for n in params.trainable if n in network.projections and network.projections[n].target != output]
            if wrong:
                name = wrong[0]
                raise ConfigError(f"{key}.trainable: the tempotron trains projections into the output population "
                                  f"'{output}' (its teacher is the label); '{name}' goes to "
                                  f"'{network.projections[name].target}'")
        else:
            into = [n for n, proj in network.projections.items() if proj.target == output
                    and any(isinstance(getattr(s, "weight", None), torch.nn.Parameter) for s in proj.stages)]
            if not into:
                raise ConfigError(f"{key}.trainable: no projection with a weight into the output population "
                                  f"'{output}' (network.output) to train")
            params = replace(params, trainable=into)
        super().__init__(params, network, key)
        for t in self.targets.values():
            if t.weight.dim() != 2:
                raise ConfigError(f"{key}.trainable: the tempotron trains dense projections; '{t.name}' is not")
        self.output = output
        ratio = params.tau / params.tau_s
        if ratio == 1:
            raise ConfigError(f"{key}.tau_s: must differ from tau ({params.tau})")
        t_peak = params.tau * params.tau_s * math.log(ratio) / (params.tau - params.tau_s)
        self.v0 = 1.0 / (math.exp(-t_peak / params.tau) - math.exp(-t_peak / params.tau_s))
        self.v_max = self.fired = None

    def begin_sample(self, batch):
        super().begin_sample(batch)
        self.v_max = self.fired = None
        for t in self.targets.values():
            t.k_slow = t.k_fast = t.psp_max = None

    def on_step(self, step, now, previous):
        p = self.params
        decay_slow, decay_fast = rules.decay_factor(p.tau, self.dt), rules.decay_factor(p.tau_s, self.dt)
        v, psps = None, []
        with torch.no_grad():
            for t in self.targets.values():
                pre = t.presynaptic_at(now, previous)
                pre = pre.reshape(pre.shape[0], -1).to(t.weight.dtype)
                if t.k_slow is None:
                    t.k_slow, t.k_fast = torch.zeros_like(pre), torch.zeros_like(pre)
                t.k_slow, t.k_fast = rules.tempotron_kernel_step(t.k_slow, t.k_fast, pre, decay_slow, decay_fast)
                psp = self.v0 * (t.k_slow - t.k_fast)  # [B, in]
                psps.append(psp)
                term = psp @ t.weight.data.t()  # [B, out]: V_i(t), summed over the trained projections
                v = term if v is None else v + term
            post = now[self.output].detach()
            post = post.reshape(post.shape[0], -1) > 0
            if self.v_max is None:
                self.v_max = torch.full_like(v, -math.inf)
                self.fired = torch.zeros_like(post)
            driven = torch.stack([(psp != 0).any(1) for psp in psps]).any(0)  # [B]: some input has a PSP
            better = (v > self.v_max) & driven.unsqueeze(1)
            self.v_max = torch.where(better, v, self.v_max)
            for t, psp in zip(self.targets.values(), psps):
                if t.psp_max is None:
                    t.psp_max = torch.zeros(psp.shape[0], v.shape[1], psp.shape[1], dtype=psp.dtype, device=psp.device)
                t.psp_max = torch.where(better.unsqueeze(-1), psp.unsqueeze(1), t.psp_max)
            self.fired |= post

    def wanted(self, target: torch.Tensor, classes: int) -> torch.Tensor:
        """``[B, N]`` bool: which of the N output neurons should fire for each label."""
        n_out = self.fired.shape[1]
        if n_out == 1:
            return target.reshape(-1, 1) == 1
        if n_out % classes:
            raise ConfigError(f"{self.key}: the output population '{self.output}' has {n_out} neurons, not a "
                              f"multiple of the {classes} classes")
        group = torch.arange(n_out, device=target.device) // (n_out // classes)
        return target.reshape(-1, 1) == group

    def miss_factor(self, classes: int) -> float:
        """The λ factor m of a miss: ``miss_weight``, or C − 1 (1 with one output)."""
        if self.params.miss_weight is not None:
            return float(self.params.miss_weight)
        return 1.0 if self.fired.shape[1] == 1 else float(max(classes - 1, 1))

    def end_sample(self, scores, target):
        if self.fired is None:
            return {}
        with torch.no_grad():
            classes = scores.shape[-1]
            want, fired = self.wanted(target, classes), self.fired
            dtype = self.v_max.dtype
            error = self.miss_factor(classes) * (want & ~fired).to(dtype) - (~want & fired).to(dtype)
            for t in self.targets.values():
                dw = rules.tempotron_update(t.psp_max, error, self.params.learning_rate)
                if self.params.reduction == "mean":
                    dw = dw / error.shape[0]
                self._write(t, rules.apply_update(t.weight.data, dw, self.constants(t)))
        return {"tempotron_errors": float((want != fired).float().mean())}
