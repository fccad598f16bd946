"""Local learners: pair STDP and its variants, reward-modulated STDP, the tempotron.

Thin classes around the pure functions of :mod:`snnrun.learning.rules` (equations, update
order and discretisation are documented there). A local learner is attached to projections
(``trainable:``; empty = every projection with a weight) and is called by the simulation:
``begin_sample`` before a batch, ``on_step`` after every simulated step with that step's
spikes, ``end_sample`` with the decoder's scores and the labels. It never uses autograd.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch

from ..errors import ConfigError
from ..schema import param
from . import rules
from .base import LEARNERS, Learner


@dataclass
class LocalParams:
    trainable: list = param([], help="projections trained; empty = every projection with a weight")
    lr: list = param([1.0, 1.0], help="(pre, post) learning rates: scale depression at pre spikes, potentiation at post spikes")
    w_min: float | None = param(None, help="lower weight bound (null: the synapse's w_min)")
    w_max: float | None = param(None, help="upper weight bound (null: the synapse's w_max)")
    boundary: str = param("hard", choices=("hard", "soft"), help="hard clamp or soft exponential saturation at the bounds")
    weight_decay: float = param(0.0, unit="1/ms", ge=0, help="w <- w*exp(-weight_decay*dt) each step")
    w_norm: float | None = param(None, help="scale each postsynaptic neuron's incoming weights to sum to this")
    norm_every: str = param("sample", choices=("sample", "step"), help="when w_norm is applied")
    reduction: str = param("sum", choices=("sum", "mean"), help="combine the batch's updates by sum or mean")


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


class _Target:
    """One trained projection: its weighted stage, the stages before it, and the correlation."""

    def __init__(self, name, proj, key):
        weighted = [i for i, s in enumerate(proj.stages) if isinstance(getattr(s, "weight", None), torch.nn.Parameter)]
        if len(weighted) != 1 or weighted[0] != len(proj.stages) - 1:
            raise ConfigError(f"{key}.trainable: projection '{name}' needs exactly one weighted synapse, as its last "
                              f"stage, for a local rule")
        self.name, self.proj = name, proj
        self.stage = proj.stages[weighted[0]]
        self.before = list(proj.stages)[:weighted[0]]
        kind = getattr(self.stage, "registry_name", "")
        if self.stage.weight.dim() == 2 and kind in ("dense", "full", "linear", "recurrent", ""):
            self.outer = rules.dense_outer
        elif self.stage.weight.dim() == 4:
            p = self.stage.params
            if p.groups != 1:
                raise ConfigError(f"{key}.trainable: conv2d projection '{name}' has groups={p.groups}; "
                                  f"local rules support groups=1")
            self.outer = rules.conv2d_outer(p.kernel_size, p.stride, p.padding)
        else:
            raise ConfigError(f"{key}.trainable: projection '{name}' ({kind}) is not dense or conv2d")
        self.x_pre = self.x_post = None

    @property
    def weight(self) -> torch.Tensor:
        return self.stage.weight

    def presynaptic_at(self, now: dict, previous: dict) -> torch.Tensor:
        """This step's presynaptic input (detached) from the step's spikes ``now`` (``previous`` for a
        recurrent projection, zeros at the first step), through the stages before the weight."""
        pre = (previous if self.proj.recurrent else now).get(self.proj.source)
        if pre is None:
            pre = torch.zeros_like(now[self.proj.source])
        return self.presynaptic(pre.detach())

    def presynaptic(self, spikes: torch.Tensor) -> torch.Tensor:
        for stage in self.before:
            spikes = stage(spikes)
        return spikes


class LocalLearner(Learner):
    """Base of local rules: resolves ``trainable`` to projections and drives the per-step hook."""

    gradient = False
    local = True
    Params = LocalParams

    def __init__(self, params, network, key="learner"):
        super().__init__(params, network, key)
        if len(params.lr) != 2:
            raise ConfigError(f"{key}.lr: expected a (pre, post) pair, got {params.lr!r}")
        explicit = bool(params.trainable)
        self.targets: dict[str, _Target] = {}
        for name, module in self.modules.items():
            if name not in network.projections:
                if explicit:
                    raise ConfigError(f"{key}.trainable: '{name}' is a population; local rules train projections")
                continue
            if not explicit and not any(isinstance(getattr(s, "weight", None), torch.nn.Parameter) for s in module.stages):
                continue
            self.targets[name] = _Target(name, module, key)
        if not self.targets:
            raise ConfigError(f"{key}.trainable: no projection with a weight to train")
        self.dt = network.dt
        self.epochs = None  # (first, last) 1-based epochs when active; set by the builder

    # constants for the pure step
    def constants(self, target: _Target) -> rules.StdpConstants:
        p = self.params
        sp = target.stage.params
        return rules.StdpConstants(
            a_plus=getattr(p, "a_plus", 0.0), a_minus=getattr(p, "a_minus", 0.0),
            decay_pre=rules.decay_factor(getattr(p, "tau_plus", 20.0), self.dt),
            decay_post=rules.decay_factor(getattr(p, "tau_minus", 20.0), self.dt),
            lr_pre=float(p.lr[0]), lr_post=float(p.lr[1]), mode=getattr(p, "mode", "all_to_all"),
            order=getattr(p, "order", "weights_first"), weight_dependence=getattr(p, "weight_dependence", "additive"),
            boundary=p.boundary,
            w_min=p.w_min if p.w_min is not None else getattr(sp, "w_min", None),
            w_max=p.w_max if p.w_max is not None else getattr(sp, "w_max", None),
            decay_weight=math.exp(-p.weight_decay * self.dt), reduction=p.reduction)

    def active(self, epoch: int) -> bool:
        """Whether the rule learns in 1-based ``epoch``."""
        return self.epochs is None or self.epochs[0] <= epoch <= self.epochs[1]

    def begin_sample(self, batch: int) -> None:
        for t in self.targets.values():
            t.x_pre = t.x_post = None
            if self.params.w_norm is not None:
                self._normalise(t)

    def on_step(self, step: int, now: dict, previous: dict) -> None:
        for t in self.targets.values():
            pre = t.presynaptic_at(now, previous)
            post = now[t.proj.target].detach().to(pre.dtype)
            if t.x_pre is None:
                t.x_pre, t.x_post = torch.zeros_like(pre), torch.zeros_like(post)
            with torch.no_grad():
                self.update(t, pre, post)
                if self.params.w_norm is not None and self.params.norm_every == "step":
                    self._normalise(t)

    def update(self, t: _Target, pre: torch.Tensor, post: torch.Tensor) -> None:
        raise NotImplementedError

    def end_sample(self, scores: torch.Tensor, target: torch.Tensor) -> dict:
        return {}

    def _normalise(self, t: _Target) -> None:
        with torch.no_grad():
            t.weight.copy_(rules.normalise(t.weight, self.params.w_norm))

    def _write(self, t: _Target, w: torch.Tensor) -> None:
        t.weight.data.copy_(w)


@LEARNERS.register("stdp")
class STDP(LocalLearner):
    """Trace-based pair STDP (Morrison et al. 2008): ``Δw = lr_post·A+·f+(w)·x_pre·s_post −
    lr_pre·A−·f−(w)·x_post·s_pre`` every step; ``mode`` all_to_all or nearest; order, same-step
    pairs and trace decay as in :mod:`snnrun.learning.rules`. ``w_norm`` rescales each
    postsynaptic neuron's incoming weights before every sample (or step)."""

    Params = StdpParams

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

    def update(self, t, pre, post):
        c = self.constants(t)
        self._write(t, rules.apply_update(t.weight.data, torch.zeros_like(t.weight.data), c))


def _batched_outer(post_like, pre_like):
    """Per-sample ``post[b, i]·pre[b, j]`` → ``[B, out, in]`` (reward rules keep samples apart)."""
    return torch.einsum("bi,bj->bij", post_like.reshape(post_like.shape[0], -1), pre_like.reshape(pre_like.shape[0], -1))


@dataclass
class MstdpParams(StdpParams):
    reward: dict = param({"name": "global_reward"}, help="reward signal (rewards registry)")
    gamma: float = param(1.0, ge=0, help="learning rate γ of the reward-modulated update")
    reward_at: str = param("sample", choices=("sample", "output_spikes"),
                           help="sample: the sample's reward r multiplies the eligibility of the whole presentation; "
                                "output_spikes: r is delivered at each spike of the output population (Florian 2007), "
                                "so it multiplies the eligibility at those steps (and the logged reward is r times "
                                "the output spike count)")


class _RewardLearner(STDP):
    """Shared by the reward-modulated rules: per-sample accumulation of the pair terms, applied at the
    end of the sample with that sample's reward (the reward is known only when the decoder has
    scored the sample, and is taken as constant over the presentation).

    ``reward_at: output_spikes`` delivers the reward as a train of pulses, one of size r at each
    spike of the network's output population(s) (Florian 2007's XOR: ``r(t) = Σ_k r δ(t − t_k)``):
    each step's term is weighted by ``n_t``, the number of output spikes of that sample at step t,
    so only what was eligible when the output fired is reinforced or punished. The reward a sample
    received (logged, ``end_sample``'s ``reward``) is then r times its number of output spikes."""

    Params = MstdpParams

    def __init__(self, params, network, key="learner"):
        super().__init__(params, network, key)
        from ..rewards import REWARDS

        self.reward = REWARDS.build(params.reward, f"{key}.reward", dt=self.dt)
        for t in self.targets.values():
            if t.weight.dim() != 2:
                raise ConfigError(f"{key}.trainable: reward-modulated rules support dense projections; "
                                  f"'{t.name}' is not")
        self.last_reward: float | None = None
        self.delivery: torch.Tensor | None = None  # n_t [B, 1, 1] with reward_at: output_spikes
        self.delivered_spikes: torch.Tensor | None = None  # Σ_t n_t [B]

    def begin_sample(self, batch):
        super().begin_sample(batch)
        self.delivery = self.delivered_spikes = None
        for t in self.targets.values():
            t.acc_ltp = t.acc_ltd = None

    def on_step(self, step, now, previous):
        if self.params.reward_at == "output_spikes":
            n = sum(now[name].detach().reshape(now[name].shape[0], -1).sum(1) for name in self.network.outputs)
            self.delivery = n.reshape(-1, 1, 1)
            self.delivered_spikes = n if self.delivered_spikes is None else self.delivered_spikes + n
        super().on_step(step, now, previous)

    def delivered(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [B, out, in] weighted by this step's output spikes ``n_t`` (``reward_at: output_spikes``)."""
        return x if self.delivery is None else x * self.delivery.to(x.dtype)

    def pair_terms(self, t, pre, post):
        """Per-sample (ltp, ltd) of this step and the advanced traces (order as in STDP)."""
        c = self.constants(t)
        x_pre, x_post = t.x_pre * c.decay_pre, t.x_post * c.decay_post
        if c.order == "traces_first":
            x_pre, x_post = rules.update_trace(x_pre, pre, c.mode), rules.update_trace(x_post, post, c.mode)
        ltp, ltd = _batched_outer(post, x_pre), _batched_outer(x_post, pre)
        if c.order != "traces_first":
            x_pre, x_post = rules.update_trace(x_pre, pre, c.mode), rules.update_trace(x_post, post, c.mode)
        t.x_pre, t.x_post = x_pre, x_post
        return ltp, ltd

    def update(self, t, pre, post):
        ltp, ltd = self.pair_terms(t, pre, post)
        ltp, ltd = self.delivered(ltp), self.delivered(ltd)
        t.acc_ltp = ltp if t.acc_ltp is None else t.acc_ltp + ltp
        t.acc_ltd = ltd if t.acc_ltd is None else t.acc_ltd + ltd

    def modulated(self, t, r: torch.Tensor) -> torch.Tensor:
        c = self.constants(t)
        f_plus, f_minus = rules.weight_factors(t.weight.data, c)
        rr = r.to(t.acc_ltp.dtype).reshape(-1, 1, 1)
        dw = (c.lr_post * c.a_plus * f_plus * (rr * t.acc_ltp).sum(0)
              - c.lr_pre * c.a_minus * f_minus * (rr * t.acc_ltd).sum(0))
        return dw / r.shape[0] if c.reduction == "mean" else dw

    def end_sample(self, scores, target):
        if not any(t.acc_ltp is not None for t in self.targets.values()):
            return {}
        r = self.reward(scores.detach(), target)
        level = self.reward.level().to(scores.device)
        with torch.no_grad():
            for t in self.targets.values():
                if t.acc_ltp is None:
                    continue
                self._write(t, rules.apply_update(t.weight.data, self.params.gamma * self.modulated(t, level),
                                                  self.constants(t)))
        if self.delivered_spikes is not None:
            r = r * self.delivered_spikes.to(r.dtype)
        self.last_reward = float(r.float().mean())
        return {"reward": self.last_reward}


@LEARNERS.register("mstdp")
class MSTDP(_RewardLearner):
    r"""Reward-modulated STDP without eligibility trace (Florian 2007, MSTDP):
    ``dw/dt = γ r(t) ζ(t)``, ``ζ = A+ x_pre s_post − A− x_post s_pre`` (the STDP pair term).
    With a per-sample reward r constant over the presentation the change is ``γ r Σ_t ζ(t)``,
    applied when the sample ends (so a negative reward reverses the STDP window); with
    ``reward_at: output_spikes`` it is ``γ r Σ_t n_t ζ(t)``, ``n_t`` the output spikes at step t."""


@dataclass
class MstdpetParams(MstdpParams):
    tau_c: float = param(25.0, unit="ms", gt=0, help="eligibility trace time constant τ_c")


@LEARNERS.register("mstdpet")
class MSTDPET(_RewardLearner):
    r"""Reward-modulated STDP with eligibility trace (Florian 2007, MSTDPET):
    ``τ_c de/dt = −e + ζ(t)``, ``dw/dt = γ r(t) e(t)``. Discretised per step:
    ``e ← e·exp(−dt/τ_c) + ζ/τ_c``, ``Δw = γ r e dt``. With a per-sample reward constant over the
    presentation the change is ``γ r Σ_t e(t)·dt``, applied at the end of the sample; the
    eligibility trace starts at 0 for every sample. With ``reward_at: output_spikes`` (a pulse of
    size r at each output spike) the change is ``γ r Σ_t n_t e(t)``, ``n_t`` the output spikes at step t."""

    Params = MstdpetParams

    def begin_sample(self, batch):
        super().begin_sample(batch)
        for t in self.targets.values():
            t.e_ltp = t.e_ltd = None

    def update(self, t, pre, post):
        ltp, ltd = self.pair_terms(t, pre, post)
        decay = rules.decay_factor(self.params.tau_c, self.dt)
        if t.e_ltp is None:
            t.e_ltp, t.e_ltd = torch.zeros_like(ltp), torch.zeros_like(ltd)
            t.acc_ltp, t.acc_ltd = torch.zeros_like(ltp), torch.zeros_like(ltd)
        t.e_ltp = rules.eligibility_step(t.e_ltp, ltp, decay, self.params.tau_c)
        t.e_ltd = rules.eligibility_step(t.e_ltd, ltd, decay, self.params.tau_c)
        if self.delivery is None:
            t.acc_ltp = t.acc_ltp + t.e_ltp * self.dt
            t.acc_ltd = t.acc_ltd + t.e_ltd * self.dt
        else:
            t.acc_ltp = t.acc_ltp + self.delivered(t.e_ltp)
            t.acc_ltd = t.acc_ltd + self.delivered(t.e_ltd)


@dataclass
class RewardSwitchParams(MstdpParams):
    a_plus_punish: float = param(1.0, ge=0, help="amplitude of depression for post-after-pre pairs when r < 0")
    a_minus_punish: float = param(1.0, ge=0, help="amplitude of potentiation for pre-after-post pairs when r < 0")


@LEARNERS.register("reward_switch_stdp")
class RewardSwitchSTDP(_RewardLearner):
    r"""Reward switches the window: for ``r ≥ 0`` Hebbian STDP scaled by r
    (``+A+`` post-after-pre, ``−A−`` pre-after-post); for ``r < 0`` anti-Hebbian STDP scaled by |r|
    (``−A+_punish`` post-after-pre, ``+A−_punish`` pre-after-post). Applied at the end of each
    sample with that sample's reward."""

    Params = RewardSwitchParams

    def modulated(self, t, r):
        c = self.constants(t)
        p = self.params
        f_plus, f_minus = rules.weight_factors(t.weight.data, c)
        rr = r.to(t.acc_ltp.dtype).reshape(-1, 1, 1)
        pos, neg = rr.clamp(min=0), (-rr).clamp(min=0)
        ltp = (c.a_plus * pos - p.a_plus_punish * neg) * t.acc_ltp
        ltd = (c.a_minus * pos - p.a_minus_punish * neg) * t.acc_ltd
        dw = c.lr_post * f_plus * ltp.sum(0) - c.lr_pre * f_minus * ltd.sum(0)
        return dw / r.shape[0] if c.reduction == "mean" else dw


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


def param_names(cls) -> list[str]:
    return [f.name for f in fields(cls.Params)]
