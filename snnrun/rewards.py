"""Reward signals for reward-modulated learners (``reward: {name: global_reward}``).

A reward is built as ``cls(params, dt=...)``. Per sample (or step) the learner calls
``reward(scores, target) -> r [B]`` with the decoder's class scores and the labels,
then reads ``level()`` for the modulating signal: the raw reward for ``global_reward``
and ``xor_reward``; for ``da_reward`` a dopamine concentration that jumps by each reward
and decays with ``tau_d``. ``reset()`` clears state between runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .registry import Registry
from .schema import param

REWARDS = Registry("reward")


class Reward:
    #: the attributes that carry over from one delivery to the next (saved in checkpoints)
    STATE: tuple[str, ...] = ("last",)

    def __init__(self, params, dt: float = 1.0):
        self.params = params
        self.dt = dt
        self.last: torch.Tensor | None = None

    def state_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.STATE}

    def load_state_dict(self, state: dict) -> None:
        for name in self.STATE:
            setattr(self, name, state.get(name))

    def __call__(self, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.last = self.compute(scores, target)
        return self.last

    def compute(self, scores, target) -> torch.Tensor:
        raise NotImplementedError

    def level(self) -> torch.Tensor:
        return self.last if self.last is not None else torch.zeros(1)

    def reset(self) -> None:
        self.last = None


@REWARDS.register("global_reward")
class GlobalReward(Reward):
    """``r = reward`` when the predicted class (argmax of the scores) is the label, else
    ``−punishment`` (SPAIC's Global_Reward)."""

    @dataclass
    class Params:
        reward: float = param(1.0, help="reward for a correct prediction")
        punishment: float = param(1.0, help="magnitude of the negative reward for a wrong one")

    def compute(self, scores, target):
        correct = scores.argmax(-1) == target
        return torch.where(correct, torch.full_like(target, 1, dtype=scores.dtype) * self.params.reward,
                           torch.full_like(target, 1, dtype=scores.dtype) * -self.params.punishment)


@REWARDS.register("xor_reward")
class XorReward(Reward):
    """For the XOR task (Florian 2007): the output 'fires' when its score (spike count of a single
    output neuron) exceeds ``threshold``. ``signal: decision``: ``r = +reward`` when firing matches the
    target bit (1 for x1 ≠ x2), else ``−punishment``. ``signal: target``: ``r = +reward`` for a sample
    whose target is 1 and ``−punishment`` for one whose target is 0, whatever the output did: Florian's
    reward for each output spike, when the learner delivers it at the output spikes
    (``reward_at: output_spikes``); ``threshold`` then only defines the task's accuracy."""

    @dataclass
    class Params:
        threshold: float = param(0.5, help="score above which the output counts as firing")
        reward: float = param(1.0)
        punishment: float = param(1.0)
        signal: str = param("decision", choices=("decision", "target"),
                            help="decision: +reward iff firing matches the target; target: +reward for target 1, "
                                 "-punishment for target 0 (the sign of each output spike's reward)")

    def compute(self, scores, target):
        if self.params.signal == "target":
            good = target.reshape(-1).bool()
        else:
            fired = scores.reshape(scores.shape[0], -1)[:, -1] > self.params.threshold
            good = fired == target.bool()
        return torch.where(good, torch.full(good.shape, self.params.reward, dtype=scores.dtype, device=scores.device),
                           torch.full(good.shape, -self.params.punishment, dtype=scores.dtype, device=scores.device))


@REWARDS.register("da_reward")
class DopamineReward(Reward):
    r"""Dopamine with decay (Izhikevich 2007): ``τ_d dD/dt = −D + Σ r_k δ(t − t_k)``.

    Each call adds the correctness reward (as ``global_reward``) to the concentration D,
    after decaying it by ``exp(−elapsed/τ_d)``; ``elapsed`` defaults to one sample of
    ``interval`` ms. ``level()`` returns D [B]."""

    STATE = ("last", "concentration")

    @dataclass
    class Params:
        tau_d: float = param(200.0, unit="ms", gt=0, help="dopamine decay time constant")
        reward: float = param(1.0)
        punishment: float = param(1.0)
        interval: float = param(250.0, unit="ms", gt=0, help="time between two reward deliveries")

    def __init__(self, params, dt=1.0):
        super().__init__(params, dt)
        self.concentration: torch.Tensor | None = None

    def compute(self, scores, target):
        correct = scores.argmax(-1) == target
        r = torch.where(correct, torch.full(correct.shape, self.params.reward, dtype=scores.dtype, device=scores.device),
                        torch.full(correct.shape, -self.params.punishment, dtype=scores.dtype, device=scores.device))
        decay = math.exp(-self.params.interval / self.params.tau_d)
        if self.concentration is None or self.concentration.shape != r.shape:
            self.concentration = torch.zeros_like(r)
        self.concentration = self.concentration * decay + r
        return r

    def step(self, steps: int = 1) -> torch.Tensor:
        """Decay D over ``steps`` simulation steps of dt (between deliveries)."""
        if self.concentration is not None:
            self.concentration = self.concentration * math.exp(-steps * self.dt / self.params.tau_d)
        return self.level()

    def level(self):
        return self.concentration if self.concentration is not None else torch.zeros(1)

    def reset(self):
        super().reset()
        self.concentration = None
