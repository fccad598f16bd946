"""Reward-modulated learning of XOR (after Florian 2007), as a task: ``snnrun experiment=rstdp_xor``.

Input: two groups of ``group_size`` neurons, one per bit; each group plays one of two frozen
Poisson spike patterns (seeded, ``rate`` Hz over the presentation) for bit 0 and bit 1. The
network (config ``network``: input → hidden → one output neuron) sees the four combinations
as one batch per trial; the output should fire (spike count > ``reward.threshold``) iff
x1 ≠ x2. The configured reward (``xor_reward``: +1 when right, −1 when wrong) modulates the
configured local learner (``mstdpet`` by default) at the end of each trial. Writes
``metrics.csv`` (``trial, reward, accuracy``, averaged over ``log_every`` trials) and
``summary.json`` with the mean reward of the first and last ``log_every`` trials.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from ..errors import ConfigError
from ..reproducibility import seed_everything, versions
from ..schema import param, parse_params
from ..tasks import register_task


@dataclass
class XorParams:
    trials: int = param(400, ge=1, help="trials (each presents the four input combinations once)")
    group_size: int = param(20, ge=1, help="input neurons per bit")
    rate: float = param(40.0, unit="Hz", gt=0, help="firing rate of the frozen input patterns")
    log_every: int = param(20, ge=1, help="trials averaged per metrics row")
    pattern_seed: int = param(1, help="seed of the frozen input patterns")


def xor_inputs(p: XorParams, steps: int, dt: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Spike trains ``[T, 4, 2·group_size]`` for (0,0), (0,1), (1,0), (1,1) and targets ``[4]``."""
    g = torch.Generator().manual_seed(p.pattern_seed)
    prob = p.rate * dt / 1000.0
    patterns = (torch.rand(2, 2, steps, p.group_size, generator=g) < prob).float()  # [bit position, value, T, n]
    combos = [(0, 0), (0, 1), (1, 0), (1, 1)]
    x = torch.stack([torch.cat([patterns[0, a], patterns[1, b]], dim=-1) for a, b in combos], dim=1)
    return x, torch.tensor([a ^ b for a, b in combos])


@register_task("rstdp_xor", config_keys=("xor",))
def rstdp_xor(cfg: DictConfig, run_dir: Path, resume: bool = False) -> dict:
    """Train XOR with a reward-modulated rule (module docstring)."""
    from ..build import to_container
    from ..network import build_network
    from .local import build_learners, parse_learners

    config = to_container(cfg)
    seed = int(config.get("seed", 0) or 0)
    seed_everything(seed)
    p = parse_params(XorParams, config.get("xor") or {}, "xor")
    net = build_network(config["network"], config.get("neuron"), (2 * p.group_size,))
    specs = parse_learners(config)
    if any(s.cls.gradient for s in specs):
        raise ConfigError("learner.name: rstdp_xor trains with a local reward-modulated rule (mstdpet, mstdp, ...)")
    learners = build_learners(specs, net)
    x, target = xor_inputs(p, net.time_steps, net.dt)
    rows, window = [], []
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for trial in range(1, p.trials + 1):
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
        threshold = getattr(getattr(learners[0], "reward", None), "params", None)
        threshold = getattr(threshold, "threshold", 0.5)
        accuracy = float(((scores[:, -1] > threshold).long() == target).float().mean())
        window.append((reward, accuracy))
        if trial % p.log_every == 0 or trial == p.trials:
            rows.append({"trial": trial, "reward": sum(r for r, _ in window) / len(window),
                         "accuracy": sum(a for _, a in window) / len(window)})
            window = []
    with open(run_dir / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["trial", "reward", "accuracy"])
        writer.writeheader()
        writer.writerows(rows)
    summary = {"status": "completed", "task": "rstdp_xor", "learner": config["learner"]["name"], "trials": p.trials,
               "first_reward": rows[0]["reward"], "last_reward": rows[-1]["reward"],
               "first_accuracy": rows[0]["accuracy"], "last_accuracy": rows[-1]["accuracy"], "seed": seed,
               "versions": versions(), "run_dir": str(run_dir),
               "message": f"mean reward {rows[0]['reward']:+.2f} (first {p.log_every} trials) -> "
                          f"{rows[-1]['reward']:+.2f} (last {p.log_every}); accuracy {rows[-1]['accuracy']:.2f}"}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
