from __future__ import annotations

from dataclasses import dataclass

import pytest

from snnrun.errors import ConfigError
from snnrun.schema import describe, param, parse_params


@dataclass
class Example:
    tau_m: float = param(20.0, unit="ms", gt=0, help="membrane time constant")
    steps: int = param(5, ge=1)
    reset: str = param("hard", choices=("hard", "soft"))
    flag: bool = param(False)
    sizes: list = param([1, 2])
    maybe: float | None = param(None)


def test_defaults_and_coercion():
    p = parse_params(Example, {"tau_m": 10, "maybe": 3}, "neuron")
    assert p.tau_m == 10.0 and isinstance(p.tau_m, float)
    assert p.maybe == 3.0 and p.steps == 5 and p.sizes == [1, 2]


@pytest.mark.parametrize("node,message", [
    ({"tau_mm": 3}, "neuron.tau_mm: unknown key (did you mean `tau_m`?)"),
    ({"tau_m": "abc"}, "neuron.tau_m: expected a number, got 'abc'"),
    ({"tau_m": 0}, "neuron.tau_m: 0.0 is out of range; it must be > 0"),
    ({"steps": 0}, "neuron.steps: 0 is out of range; it must be >= 1"),
    ({"steps": 2.5}, "neuron.steps: expected an integer, got 2.5"),
    ({"reset": "sofft"}, "neuron.reset: 'sofft' is not allowed; choose one of hard, soft (did you mean `soft`?)"),
    ({"flag": "yes"}, "neuron.flag: expected true or false, got 'yes'"),
    ({"sizes": 3}, "neuron.sizes: expected a list, got 3"),
])
def test_errors_name_the_full_key(node, message):
    with pytest.raises(ConfigError) as err:
        parse_params(Example, node, "neuron")
    assert str(err.value).startswith(message)


def test_missing_required_field():
    @dataclass
    class Needs:
        path: str = param(help="file to read")

    with pytest.raises(ConfigError, match=r"data\.path: missing required value"):
        parse_params(Needs, {}, "data")


def test_describe_lists_units_and_defaults():
    rows = {r[0]: r for r in describe(Example)}
    assert rows["tau_m"][2] == 20.0 and rows["tau_m"][3] == "ms"
    assert rows["sizes"][2] == [1, 2]
