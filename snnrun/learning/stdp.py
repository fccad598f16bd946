"""Local learners: pair STDP and its variants, reward-modulated STDP, the tempotron.

Thin classes around the pure functions of :mod:`snnrun.learning.rules` (equations, update
order and discretisation are documented there). A local learner is attached to projections
(``trainable:``; empty = every projection with a weight) and is called by the simulation:
``begin_sample`` before a batch, ``on_step`` after every simulated step with that step's
spikes, ``end_sample`` with the decoder's scores and the labels. It never uses autograd.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

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
            src = previous if t.proj.recurrent else now
            pre = src.get(t.proj.source)
            if pre is None:
                pre = torch.zeros_like(now[t.proj.source])
            pre = t.presynaptic(pre.detach())
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


class _RewardLearner(STDP):
    """Shared by the reward-modulated rules: per-sample accumulation of the pair terms, applied at the
    end of the sample with that sample's reward (the reward is known only when the decoder has
    scored the sample, and is taken as constant over the presentation)."""

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

    def begin_sample(self, batch):
        super().begin_sample(batch)
        for t in self.targets.values():
            t.acc_ltp = t.acc_ltd = None

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
        self.last_reward = float(r.float().mean())
        return {"reward": self.last_reward}


@LEARNERS.register("mstdp")
class MSTDP(_RewardLearner):
    r"""Reward-modulated STDP without eligibility trace (Florian 2007, MSTDP):
    ``dw/dt = γ r(t) ζ(t)``, ``ζ = A+ x_pre s_post − A− x_post s_pre`` (the STDP pair term).
    With a per-sample reward r constant over the presentation the change is ``γ r Σ_t ζ(t)``,
    applied when the sample ends (so a negative reward reverses the STDP window)."""


@dataclass
class MstdpetParams(MstdpParams):
    tau_c: float = param(25.0, unit="ms", gt=0, help="eligibility trace time constant τ_c")


@LEARNERS.register("mstdpet")
class MSTDPET(_RewardLearner):
    r"""Reward-modulated STDP with eligibility trace (Florian 2007, MSTDPET):
    ``τ_c de/dt = −e + ζ(t)``, ``dw/dt = γ r(t) e(t)``. Discretised per step:
    ``e ← e·exp(−dt/τ_c) + ζ/τ_c``, ``Δw = γ r e dt``. With a per-sample reward constant over the
    presentation the change is ``γ r Σ_t e(t)·dt``, applied at the end of the sample; the
    eligibility trace starts at 0 for every sample."""

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
        t.acc_ltp = t.acc_ltp + t.e_ltp * self.dt
        t.acc_ltd = t.acc_ltd + t.e_ltd * self.dt


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
    tau: float = param(15.0, unit="ms", gt=0, help="PSP decay time constant τ")
    tau_s: float = param(3.75, unit="ms", gt=0, help="PSP rise time constant τ_s")
    learning_rate: float = param(1e-3, gt=0, help="λ")


@LEARNERS.register("tempotron")
class Tempotron(LocalLearner):
    r"""Tempotron (Gütig & Sompolinsky 2006). The potential of output neuron i is
    ``V_i(t) = Σ_j w_ij Σ_{t_j} K(t − t_j)``, ``K(t) = V0 (e^{−t/τ} − e^{−t/τ_s})`` with V0 normalising
    the peak of K to 1. Each step the kernels advance (exact decay, then this step's input
    spikes) and the time ``t_max,i`` of each neuron's maximal potential is tracked. When the
    sample ends, output i should have fired iff the label is i (or, with one output, iff the
    label is 1); ``fired`` is whether the network's postsynaptic neuron spiked. On an error,
    ``Δw_ij = ±λ Σ_{t_j < t_max} K(t_max − t_j)`` (+ for a miss, − for a false alarm)."""

    Params = TempotronParams

    def __init__(self, params, network, key="learner"):
        super().__init__(params, network, key)
        for t in self.targets.values():
            if t.weight.dim() != 2:
                raise ConfigError(f"{key}.trainable: the tempotron trains dense projections; '{t.name}' is not")
        ratio = params.tau / params.tau_s
        if ratio == 1:
            raise ConfigError(f"{key}.tau_s: must differ from tau ({params.tau})")
        t_peak = params.tau * params.tau_s * math.log(ratio) / (params.tau - params.tau_s)
        self.v0 = 1.0 / (math.exp(-t_peak / params.tau) - math.exp(-t_peak / params.tau_s))

    def begin_sample(self, batch):
        super().begin_sample(batch)
        for t in self.targets.values():
            t.k_slow = t.k_fast = t.v_max = t.psp_max = t.fired = None

    def update(self, t, pre, post):
        p = self.params
        pre = pre.reshape(pre.shape[0], -1)
        if t.k_slow is None:
            t.k_slow, t.k_fast = torch.zeros_like(pre), torch.zeros_like(pre)
            t.fired = torch.zeros(post.shape[0], t.weight.shape[0], dtype=torch.bool, device=pre.device)
        t.k_slow, t.k_fast = rules.tempotron_kernel_step(t.k_slow, t.k_fast, pre, rules.decay_factor(p.tau, self.dt),
                                                         rules.decay_factor(p.tau_s, self.dt))
        psp = self.v0 * (t.k_slow - t.k_fast)  # [B, in]
        v = psp @ t.weight.data.t()  # [B, out]
        if t.v_max is None:
            t.v_max = v.clone()
            t.psp_max = psp.unsqueeze(1).expand(-1, v.shape[1], -1).clone()
        else:
            better = v > t.v_max
            t.v_max = torch.where(better, v, t.v_max)
            t.psp_max = torch.where(better.unsqueeze(-1), psp.unsqueeze(1), t.psp_max)
        t.fired |= post.reshape(post.shape[0], -1) > 0

    def end_sample(self, scores, target):
        with torch.no_grad():
            for t in self.targets.values():
                if t.fired is None:
                    continue
                n_out = t.weight.shape[0]
                want = (target.reshape(-1, 1) == torch.arange(n_out, device=target.device)) if n_out > 1 \
                    else (target.reshape(-1, 1) == 1)
                error = want.to(t.psp_max.dtype) - t.fired.to(t.psp_max.dtype)
                dw = rules.tempotron_update(t.psp_max, error, self.params.learning_rate)
                if self.params.reduction == "mean":
                    dw = dw / error.shape[0]
                self._write(t, rules.apply_update(t.weight.data, dw, self.constants(t)))
        return {}


def param_names(cls) -> list[str]:
    return [f.name for f in fields(cls.Params)]
