"""Reward-modulated learning of a two-bit function (after Florian 2007), as a task:
``snnrun experiment=rstdp_xor`` (XOR with escape-noise neurons, learns) and
``snnrun experiment=rstdp_first`` (output = first bit, learns).

Input: two groups of ``group_size`` neurons, one per bit, coded by ``coding``:

- ``rate`` (Florian 2007's rate-coded XOR): a group fires Poisson spikes at ``rate`` Hz when its bit
  is 1 and is silent when it is 0;
- ``tuned``: each input neuron is tuned to one value of its bit (chosen at random with
  ``pattern_seed``): it fires at ``2·rate`` Hz for that value and is silent for the other;
- ``patterns``: each group plays one of two frozen Poisson spike patterns (seeded with
  ``pattern_seed``, ``rate`` Hz) for bit 0 and bit 1, the same in every trial.

With ``rate`` and ``tuned`` the spikes are re-drawn every trial (Bernoulli per step with
``P = rate·dt/1000``, resp. ``2·rate·dt/1000``, generator seeded by ``seed``), so the output varies
from trial to trial; escape-noise neurons (``neuron.escape_noise``) add the same variability with
any coding. That variability is the exploration Florian's rule relies on. The network (config
``network``) sees the four combinations as one batch per trial; the output should fire (spike
count > ``reward.threshold``) iff ``function(x1, x2)`` is 1 (``xor``: x1 ≠ x2, ``or``, ``and``,
``first``: x1). The configured reward (``xor_reward``) modulates the configured local learner
(``mstdpet`` by default) for each trial. Writes ``metrics.csv`` (``trial, reward, accuracy``,
averaged over ``log_every`` trials; the reward is the learner's, accuracy the fraction of the four
patterns answered right) and ``summary.json`` with the first and last rows.

It runs with the run services (:mod:`snnrun.services`): the rows also go to the other
``logger.sinks`` (TensorBoard, MLflow, ...; step = trial), and every ``log_every`` trials the state
is checkpointed (``checkpoints/last.pt``, ``prev.pt``): network weights, the learners' state and
their reward signal's running state, the input noise generator, the rows so far and the RNG state.
``snnrun resume RUN_DIR`` (after SIGINT/SIGTERM, status ``interrupted``, or a crash) continues from
there and ends as the uninterrupted run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from .. import checkpoint
from ..errors import ConfigError
from ..schema import param
from ..services import RunServices


@dataclass
class XorParams:
    trials: int = param(400, ge=1, help="trials (each presents the four input combinations once)")
    group_size: int = param(20, ge=1, help="input neurons per bit")
    rate: float = param(40.0, unit="Hz", gt=0, help="input firing rate (coding: rate, patterns; tuned fires at twice it)")
    log_every: int = param(20, ge=1, help="trials averaged per metrics row")
    pattern_seed: int = param(1, help="seed of the frozen input patterns")
    function: str = param("xor", choices=("xor", "or", "and", "first"), help="target bit of (x1, x2)")
    coding: str = param("patterns", choices=("patterns", "tuned", "rate"),
                        help="patterns: frozen spike patterns per bit value; tuned: neurons tuned to one bit value; "
                             "rate: a group fires for bit 1, silent for 0 (tuned and rate re-drawn every trial)")


FUNCTIONS = {"xor": lambda a, b: a ^ b, "or": lambda a, b: a | b, "and": lambda a, b: a & b,
             "first": lambda a, b: a}
COMBOS = [(0, 0), (0, 1), (1, 0), (1, 1)]


def xor_inputs(p: XorParams, steps: int, dt: float,
               noise: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Spike trains ``[T, 4, 2·group_size]`` for (0,0), (0,1), (1,0), (1,1) and targets ``[4]``.
    With ``p.coding`` tuned or rate the spikes are drawn from ``noise`` (call once per trial)."""
    g = torch.Generator().manual_seed(p.pattern_seed)
    if p.coding == "tuned":
        u = (torch.rand(2, 1, 1, p.group_size, generator=g) < 0.5).float()  # 1: tuned to bit value 1
        prob = (p.rate * 2 * torch.cat([1 - u, u], dim=1) * dt / 1000.0).clamp(max=1.0)  # [bit position, value, 1, n]
        prob = prob.expand(2, 2, steps, p.group_size)
        patterns = (torch.rand(prob.shape, generator=noise) < prob).float()
    elif p.coding == "rate":
        value = torch.tensor([0.0, 1.0]).reshape(1, 2, 1, 1)  # bit 0: silent, bit 1: rate
        prob = (p.rate * dt / 1000.0 * value).clamp(max=1.0).expand(2, 2, steps, p.group_size)
        patterns = (torch.rand(prob.shape, generator=noise) < prob).float()
    else:
        prob = p.rate * dt / 1000.0
        patterns = (torch.rand(2, 2, steps, p.group_size, generator=g) < prob).float()  # [bit position, value, T, n]
    x = torch.stack([torch.cat([patterns[0, a], patterns[1, b]], dim=-1) for a, b in COMBOS], dim=1)
    return x, torch.tensor([FUNCTIONS[p.function](a, b) for a, b in COMBOS])


SECTIONS = {"xor": XorParams}


def _build(cfg: DictConfig):
    """(config, seed, xor params, network, learners) of the task."""
    from ..build import protocol_spec
    from ..learning.local import build_learners
    from ..network import build_network

    spec = protocol_spec(cfg)
    p = spec.sections["xor"]
    net = build_network(spec.network, None, (2 * p.group_size,))
    if any(s.cls.gradient for s in spec.learners):
        raise ConfigError("learner.name: rstdp_xor trains with a local reward-modulated rule (mstdpet, mstdp, ...)")
    return spec.config, spec.seed, p, net, build_learners(list(spec.learners), net)


def check(cfg: DictConfig) -> list[str]:
    """The task's build as a dry run (nothing simulated or written)."""
    _build(cfg)
    return []


#: metrics.csv columns: one row per ``log_every`` trials (means over them) and at the last trial
COLUMNS = ["trial", "reward", "accuracy"]


def run(cfg: DictConfig, run_dir: Path, resume: bool = False) -> dict:
    """Train ``xor.function`` with a reward-modulated rule (module docstring); ``resume`` continues
    from the run directory's last checkpoint."""
    config, seed, p, net, learners = _build(cfg)
    noise = torch.Generator().manual_seed(seed)
    inputs = list(xor_inputs(p, net.time_steps, net.dt, noise))  # [x, target]: re-drawn per trial unless patterns
    threshold = getattr(getattr(learners[0], "reward", None), "params", None)
    threshold = getattr(threshold, "threshold", 0.5)
    services = RunServices.from_config(cfg, run_dir, "rstdp_xor", seed, COLUMNS, "trial")
    services.register_generator("noise", noise)

    def snapshot(trial: int, rows: list[dict]) -> dict:
        return {"model": net.state_dict(), "learners": [lr.state_dict() for lr in learners],  # rewards' state too
                "trial": trial, "rows": rows}

    def body(services: RunServices, state: dict | None) -> dict:
        if state is None:
            rows, done = [], 0
            services.checkpoint(0, snapshot(0, rows))
        else:
            checkpoint.check_fits(net.state_dict(), state["model"], "the model", "the checkpoint")
            net.load_state_dict(state["model"])
            for lr, learner_state in zip(learners, state["learners"]):
                lr.load_state_dict(learner_state)
            rows, done = [dict(r) for r in state["rows"]], int(state["trial"])
        window = []
        for trial in range(done + 1, p.trials + 1):
            services.poll(f"trial {trial}/{p.trials}")
            if p.coding != "patterns" and trial > 1:
                inputs[:] = xor_inputs(p, net.time_steps, net.dt, noise)
            x, target = inputs
            net.reset()
            for lr in learners:
                lr.begin_sample(4)
            net.step_hook = lambda t, now, prev: [lr.on_step(t, now, prev) for lr in learners]
            with torch.no_grad():
                out = net(x)
            net.step_hook = None
            scores = out.spikes[net.output].sum(0).reshape(4, -1)
            reward = 0.0
            for lr in learners:
                reward = lr.end_sample(scores, target).get("reward", reward)
            accuracy = float(((scores[:, -1] > threshold).long() == target).float().mean())
            window.append((reward, accuracy))
            if trial % p.log_every == 0 or trial == p.trials:
                rows.append({"trial": trial, "reward": sum(r for r, _ in window) / len(window),
                             "accuracy": sum(a for _, a in window) / len(window)})
                window = []
                services.log(rows[-1])
                services.checkpoint(trial, snapshot(trial, rows))
        return {"function": p.function, "learner": config["learner"]["name"], "trials": p.trials,
                "first_reward": rows[0]["reward"], "last_reward": rows[-1]["reward"],
                "first_accuracy": rows[0]["accuracy"], "last_accuracy": rows[-1]["accuracy"],
                "message": f"mean reward {rows[0]['reward']:+.2f} (first {p.log_every} trials) -> "
                           f"{rows[-1]['reward']:+.2f} (last {p.log_every}); accuracy {rows[-1]['accuracy']:.2f}"}

    return services.run(body, resume)
