"""Reward-modulated STDP: MSTDP and MSTDPET (Florian 2007), and STDP whose window the reward's sign switches."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...errors import ConfigError
from ...schema import param
from .. import rules
from ..base import LEARNERS
from .pair import STDP, StdpParams


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
        from ...rewards import REWARDS

        self.reward = REWARDS.build(params.reward, f"{key}.reward", dt=self.dt)
        for t in self.targets.values():
            if t.weight.dim() != 2:
                raise ConfigError(f"{key}.trainable: reward-modulated rules support dense projections; "
                                  f"'{t.name}' is not")
        self.last_reward: float | None = None
        self.delivery: torch.Tensor | None = None  # n_t [B, 1, 1] with reward_at: output_spikes
        self.delivered_spikes: torch.Tensor | None = None  # Σ_t n_t [B]

    def state_dict(self) -> dict:
        return {**super().state_dict(), "reward": self.reward.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.reward.load_state_dict(state.get("reward", {}))

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

    engine_rule = "mstdp"  # snnrun.engine accumulates Σ_t ζ (per class: not inherited); end_sample applies r


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
    engine_rule = "mstdpet"  # snnrun.engine accumulates Σ_t e(t)·dt; end_sample applies r

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
    engine_rule = "mstdp"  # snnrun.engine accumulates as for mstdp; its own end_sample switches the window

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
