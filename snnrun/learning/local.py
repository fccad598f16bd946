"""Running several learners in one experiment, and calling local rules from the simulation.

Config: the usual ``learner:`` node plus an optional top-level ``learners:`` mapping
``name -> learner spec``. Every spec may carry ``epochs: [first, last]`` (1-based, inclusive)
restricting the epochs in which it learns, so "STDP features in epoch 1, then a supervised
readout" is one config::

    learner: {name: bptt, trainable: [hid_out], epochs: [2, 5]}
    learners:
      features: {name: stdp, trainable: [inp_hid], epochs: [1, 1], w_norm: 20.0}

At most one gradient learner (it owns the optimizer and the spike function's surrogate).
Local learners are called by the network after every simulated step (``network.step_hook``),
which makes the network simulate step by step while they learn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch

from ..errors import ConfigError
from .base import LEARNERS, Learner


@dataclass
class LearnerSpec:
    key: str
    cls: type
    params: Any
    epochs: tuple[int, int] | None


def _epochs(value, key) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value) or value[0] > value[1]):
        raise ConfigError(f"{key}.epochs: expected [first, last] 1-based epochs (first <= last), got {value!r}")
    return int(value[0]), int(value[1])


def parse_learners(config: Mapping) -> list[LearnerSpec]:
    """Validate ``learner`` and ``learners`` (without building): the specs in order."""
    nodes = [("learner", config["learner"])]
    extra = config.get("learners")
    if extra is not None:
        if not isinstance(extra, Mapping):
            raise ConfigError(f"learners: expected a mapping name -> learner spec, got {extra!r}")
        nodes += [(f"learners.{name}", node) for name, node in extra.items() if node is not None]
    specs = []
    for key, node in nodes:
        if not isinstance(node, Mapping):
            raise ConfigError(f"{key}: expected a mapping with a `name`, got {node!r}")
        node = dict(node)
        epochs = _epochs(node.pop("epochs", None), key)
        cls, params = LEARNERS.parse(node, key)
        specs.append(LearnerSpec(key, cls, params, epochs))
    gradient = [s.key for s in specs if s.cls.gradient]
    if len(gradient) > 1:
        raise ConfigError(f"{gradient[1]}: only one gradient learner per experiment (already have {gradient[0]})")
    return specs


def build_learners(specs: list[LearnerSpec], network) -> list[Learner]:
    learners = []
    for spec in specs:
        learner = spec.cls(spec.params, network=network, key=spec.key)
        learner.epochs = spec.epochs
        learners.append(learner)
    return learners


def is_active(learner: Learner, epoch: int) -> bool:
    """``epoch`` is 1-based (the epoch being trained)."""
    span = getattr(learner, "epochs", None)
    return span is None or span[0] <= epoch <= span[1]


class _Disabled:
    """Stands in for the gradient learner when none is active: no loss, no optimizer step."""

    gradient = False


def gradient_learner(learners: list[Learner], epoch: int, train: bool):
    """The gradient learner that trains in this epoch (for evaluation: the gradient learner, if
    any, so its loss is reported), else a stand-in with ``gradient = False``."""
    for learner in learners:
        if learner.gradient and (not train or is_active(learner, epoch)):
            return learner
    return _Disabled()


def local_learners(learners: list[Learner], epoch: int) -> list[Learner]:
    return [lr for lr in learners if getattr(lr, "local", False) and is_active(lr, epoch)]


def begin_batch(exp, active: list[Learner], batch: int) -> list[Learner]:
    """Attach the local learners ``active`` in this epoch (:func:`local_learners`; none when
    evaluating) to the network for this batch, or detach them."""
    for learner in active:
        learner.begin_sample(batch)
    if active:
        def hook(step: int, now: dict, previous: dict) -> None:
            for learner in active:
                learner.on_step(step, now, previous)
        exp.network.step_hook = hook
    else:
        exp.network.step_hook = None
    return active


def end_batch(exp, active: list[Learner], scores: torch.Tensor, target: torch.Tensor) -> dict:
    """Let the local learners finish the sample (rewards, normalisation); returns their metrics."""
    exp.network.step_hook = None
    metrics: dict[str, float] = {}
    for learner in active:
        metrics.update(learner.end_sample(scores, target) or {})
    return metrics
