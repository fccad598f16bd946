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


@pytest.mark.parametrize("node,message", [
    ({"steps": 10 ** 23}, "neuron.steps: 100000000000000000000000 is out of range; integers here must lie in "
                          "[-2**63, 2**63 - 1]"),
    ({"steps": 1e23}, "neuron.steps: 1e+23 is out of range; integers here must lie in [-2**63, 2**63 - 1]"),
    ({"steps": -2 ** 64}, "neuron.steps: -18446744073709551616 is out of range"),
    ({"tau_m": 10 ** 400}, "neuron.tau_m: 1000000000000000000000… (401 digits) is too large for a number"),
    ({"tau_m": 1e308}, "neuron.tau_m: 1e+308 ms is out of range; a time must be at most 1e+12 ms"),
    ({"tau_m": float("inf")}, "neuron.tau_m: expected a finite number, got inf"),
    ({"maybe": 10 ** 400}, "neuron.maybe: 1000000000000000000000… (401 digits) is too large for a number"),
])
def test_overflowing_numbers_are_one_line_errors(node, message):
    with pytest.raises(ConfigError) as err:
        parse_params(Example, node, "neuron")
    assert str(err.value).startswith(message) and len(str(err.value).splitlines()) == 1


@pytest.mark.parametrize("override,message", [
    ("seed=1e23", "seed: expected an integer, got 1e+23"),
    ("seed=100000000000000000000000", "seed: 100000000000000000000000 is out of range"),
    ("data.batch_size=1e23", "data.batch_size: 1e+23 is out of range"),
    ("data.batch_size=100000000000000000000000", "data.batch_size: 100000000000000000000000 is out of range"),
    ("data.test_batch_size=1e23", "data.test_batch_size: 1e+23 is out of range"),
    ("neuron.refractory=1e308", "neuron.refractory: 1e+308 ms is out of range"),
    ("network.duration=1e300", "network.duration: 1e+300 ms is out of range"),
    ("network.dt=1e-300", "network.duration: 8.0 ms is 8e+300 steps of dt = 1e-300 ms"),
])
def test_overflowing_overrides_are_config_errors_naming_the_key(override, message):
    from conftest import TINY, compose_config
    from snnrun.build import build_experiment

    with pytest.raises(ConfigError) as err:
        build_experiment(compose_config(TINY + [override]))
    assert str(err.value).startswith(message) and len(str(err.value).splitlines()) == 1


def test_a_refractory_period_longer_than_any_run_does_not_overflow():
    from snnrun.neurons.base import refractory_steps

    assert refractory_steps(1e12, 1e-9) == 2 ** 31 - 1 and refractory_steps(5.0, 1.0) == 5
