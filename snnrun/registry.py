"""One registry per component kind: names (and aliases) -> classes with a ``Params`` schema."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

from .errors import ConfigError
from .schema import parse_params, suggest


@dataclasses.dataclass
class NoParams:
    """Schema of a component without parameters."""


@dataclasses.dataclass(frozen=True)
class Component:
    """A parsed component node: its config key, registered class and typed parameters. Building it
    (:meth:`build`) supplies what only the network knows (shapes, ``dt``...)."""

    key: str
    cls: type
    params: Any

    @property
    def name(self) -> str:
        return self.cls.registry_name

    def build(self, **runtime: Any) -> Any:
        return self.cls(self.params, **runtime)


class Registry:
    """Named implementations of one component kind (``neuron``, ``encoder``...).

    A registered class has a ``Params`` dataclass (its schema) and is built as
    ``cls(params, **runtime)``, where ``runtime`` holds what the network supplies
    (shapes, ``dt``...). Config nodes look like ``{name: lif, tau_m: 20.0}``.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._classes: dict[str, type] = {}
        self._aliases: dict[str, str] = {}
        self._alias_defaults: dict[str, dict] = {}

    def register(self, name: str, *aliases: str) -> Callable[[type], type]:
        def decorate(cls: type) -> type:
            if name in self._classes or name in self._aliases:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            if not hasattr(cls, "Params"):
                cls.Params = NoParams
            cls.registry_name = name
            self._classes[name] = cls
            for alias in aliases:
                self._aliases[alias] = name
            return cls
        return decorate

    def alias(self, alias: str, name: str, **defaults: Any) -> None:
        """Register ``alias`` for ``name`` with its own parameter defaults (e.g. ``stca``)."""
        self._aliases[alias] = name
        self._alias_defaults[alias] = defaults

    def names(self, aliases: bool = True) -> list[str]:
        return sorted(self._classes) + (sorted(self._aliases) if aliases else [])

    def __contains__(self, name: str) -> bool:
        return name in self._classes or name in self._aliases

    def get(self, name: Any, key: str = "name") -> type:
        if not isinstance(name, str):
            raise ConfigError(f"{key}: expected the name of a {self.kind} (a string), got {name!r}; "
                              f"valid names: {', '.join(self.names())}")
        if name in self._classes:
            return self._classes[name]
        if name in self._aliases:
            return self._classes[self._aliases[name]]
        valid = ", ".join(self.names())
        raise ConfigError(f"{key}: unknown {self.kind} '{name}'{suggest(str(name), self.names())}; "
                          f"valid names: {valid}")

    def alias_defaults(self, name: str) -> dict:
        return dict(self._alias_defaults.get(name, {}))

    def parse(self, node: Mapping[str, Any] | None, key: str) -> tuple[type, Any]:
        """Validate ``node`` and return (class, params) without building anything."""
        if node is None or not isinstance(node, Mapping):
            raise ConfigError(f"{key}: expected a mapping with a `name`, got {node!r}")
        node = dict(node)
        if "name" not in node:
            raise ConfigError(f"{key}.name: missing; valid names: {', '.join(self.names())}")
        name = node.pop("name")
        cls = self.get(name, f"{key}.name")
        merged = {**self.alias_defaults(name), **node}
        return cls, parse_params(cls.Params, merged, key)

    def component(self, node: Mapping[str, Any] | None, key: str) -> Component:
        """Validate ``node``: the :class:`Component` it names, not yet built."""
        return Component(key, *self.parse(node, key))

    def build(self, node: Mapping[str, Any] | None, key: str, **runtime: Any) -> Any:
        """Validate ``node`` and build the component with ``runtime`` arguments."""
        return self.component(node, key).build(**runtime)
