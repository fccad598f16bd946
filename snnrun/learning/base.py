"""Learner base: a learning rule attached to parts of the network (``trainable:``)."""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError
from ..registry import Registry

LEARNERS = Registry("learner")


class Learner:
    """Built as ``cls(params, network=..., key=...)``.

    ``params.trainable`` lists projection or population names; empty means the
    whole network. Gradient learners (``gradient = True``) expose ``parameters()``
    for the optimizer and ``loss(scores, target)``; local learners update weights
    themselves.
    """

    gradient = False

    def __init__(self, params, network, key: str = "learner"):
        self.params = params
        self.network = network
        self.key = key
        self.modules = self._resolve(list(getattr(params, "trainable", []) or []))

    def _resolve(self, names: list[str]) -> dict[str, nn.Module]:
        if not names:
            return {**dict(self.network.projections), **{n: p for n, p in self.network.populations.items() if not p.is_input}}
        found = {}
        for name in names:
            if name in self.network.projections:
                found[name] = self.network.projections[name]
            elif name in self.network.populations:
                found[name] = self.network.populations[name]
            else:
                valid = ", ".join(list(self.network.projections) + list(self.network.populations))
                raise ConfigError(f"{self.key}.trainable: no projection or population '{name}'; valid: {valid}")
        return found

    def parameters(self) -> list[nn.Parameter]:
        seen, params = set(), []
        for module in self.modules.values():
            for p in module.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    params.append(p)
        return params

    def penalty(self, out):
        """A gradient learner's regularisation term on a batch's network output (``NetworkOutput``),
        added to its loss in training, or None."""
        return None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
