"""Typed parameter schemas: each component declares a ``Params`` dataclass.

The dataclass is the schema its YAML file mirrors. :func:`parse_params` turns a
config mapping into an instance, naming the full config key of any unknown key
(with a "did you mean" suggestion), wrong type, out-of-range value or missing field.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any, Mapping

from .errors import ConfigError


def param(default: Any = dataclasses.MISSING, *, unit: str = "", help: str = "",
          gt: float | None = None, ge: float | None = None, lt: float | None = None,
          le: float | None = None, choices: tuple | None = None) -> Any:
    """A dataclass field with unit, help text and allowed range for validation and ``snnrun list``."""
    metadata = {"unit": unit, "help": help, "gt": gt, "ge": ge, "lt": lt, "le": le, "choices": choices}
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def suggest(name: str, valid: typing.Iterable[str]) -> str:
    """Return ``" (did you mean `x`?)"`` for a near miss, else an empty string."""
    valid = list(valid)
    same_letters = [v for v in valid if str(v).lower() == str(name).lower()]
    close = same_letters or difflib.get_close_matches(str(name), valid, n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


#: the integers a config value may hold (64-bit, as torch and numpy store them)
INT_MIN, INT_MAX = -2 ** 63, 2 ** 63 - 1
#: the longest time a ``unit="ms"`` value may hold (about 32 years): longer ones overflow step counts
MAX_TIME_MS = 1e12


def _shown(value: Any) -> str:
    """``value`` for an error message: a huge integer is cut to its first digits."""
    try:
        text = str(value)
    except ValueError:  # beyond Python's integer-to-text limit
        return "an integer of thousands of digits"
    return f"{text[:22]}… ({len(text.lstrip('-'))} digits)" if len(text) > 40 else text


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and return it converted (int -> float, list -> tuple)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key)
            except ConfigError as err:
                errors.append(err)
        if len(errors) == 1:  # `T | None`: T's own message
            raise errors[0]
        allowed = " or ".join(_type_name(a) for a in args)
        raise ConfigError(f"{key}: expected {allowed}, got {_shown(value) if isinstance(value, int) else repr(value)}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, typing.Sequence):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        item = args[0] if args else Any
        items = [coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if not (isinstance(value, float) and value.is_integer()):
                raise ConfigError(f"{key}: expected an integer, got {value!r}")
            shown, value = value, int(value)
        else:
            shown = _shown(value)
        if not INT_MIN <= value <= INT_MAX:  # torch, numpy and the seeds take 64-bit integers
            raise ConfigError(f"{key}: {shown} is out of range; integers here must lie in [-2**63, 2**63 - 1]")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            value = float(value)
        except OverflowError:  # an integer beyond the float range
            raise ConfigError(f"{key}: {_shown(value)} is too large for a number") from None
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    return value


def _check_range(value: Any, meta: Mapping, key: str) -> None:
    if value is None:
        return
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{key}: {value!r} is not allowed; choose one of {', '.join(map(str, choices))}"
                          + suggest(str(value), map(str, choices)))
    numbers = value if isinstance(value, (list, tuple)) else [value]
    for number in numbers:
        if not isinstance(number, (int, float)) or isinstance(number, bool):
            continue
        if meta.get("unit") == "ms" and abs(number) > MAX_TIME_MS:
            raise ConfigError(f"{key}: {number:g} ms is out of range; a time must be at most {MAX_TIME_MS:g} ms")
        bounds = [("gt", lambda a, b: a > b, ">"), ("ge", lambda a, b: a >= b, ">="),
                  ("lt", lambda a, b: a < b, "<"), ("le", lambda a, b: a <= b, "<=")]
        for name, ok, symbol in bounds:
            limit = meta.get(name)
            if limit is not None and not ok(number, limit):
                raise ConfigError(f"{key}: {value!r} is out of range; it must be {symbol} {limit}")


def parse_params(schema: type, node: Mapping[str, Any] | None, key: str) -> Any:
    """Build ``schema`` (a dataclass) from ``node``; every error names ``key.<field>``."""
    if node is not None and not isinstance(node, Mapping):
        raise ConfigError(f"{key}: expected a mapping of {', '.join(f.name for f in dataclasses.fields(schema))}, "
                          f"got {node!r}")
    node = dict(node or {})
    fields = {f.name: f for f in dataclasses.fields(schema)}
    hints = typing.get_type_hints(schema)
    for name in node:
        if name not in fields:
            valid = ", ".join(fields) or "(none)"
            raise ConfigError(f"{key}.{name}: unknown key{suggest(name, fields)}; valid keys: {valid}")
    values = {}
    for name, field in fields.items():
        full = f"{key}.{name}"
        if name not in node:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{full}: missing required value ({field.metadata.get('help', '')})".rstrip(" ()"))
            continue
        value = coerce(node[name], hints[name], full)
        _check_range(value, field.metadata, full)
        values[name] = value
    return schema(**values)


def describe(schema: type) -> list[tuple[str, str, Any, str, str]]:
    """Rows of (name, type, default, unit, help) for ``snnrun list``."""
    rows = []
    hints = typing.get_type_hints(schema)
    for field in dataclasses.fields(schema):
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = "???"
        rows.append((field.name, _type_name(hints[field.name]), default,
                     field.metadata.get("unit", ""), field.metadata.get("help", "")))
    return rows


def defaults(schema: type) -> dict[str, Any]:
    """The default value of every field (``???`` for required ones)."""
    return {name: default for name, _, default, _, _ in describe(schema)}
