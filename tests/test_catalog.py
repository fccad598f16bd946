"""`snnrun list` prints the defaults a run uses (defaults live in the schemas)."""

from __future__ import annotations

import re

from conftest import compose_config

from snnrun.build import build_experiment
from snnrun.catalog import print_catalog


def listed_defaults(capsys, group: str) -> dict[str, dict[str, str]]:
    """``snnrun list GROUP`` as {component: {field: printed default}}."""
    capsys.readouterr()
    print_catalog(group)
    table: dict[str, dict[str, str]] = {}
    component = None
    for line in capsys.readouterr().out.splitlines():
        if not line.startswith(" "):
            component = re.match(r"[\w-]+", line).group(0)
            table[component] = {}
        elif match := re.match(r"    (\w+): \S+ = (\S+)", line):
            table[component][match.group(1)] = match.group(2)
    return table


def test_listed_lif_defaults_are_what_the_default_experiment_builds(capsys):
    listed = listed_defaults(capsys, "neuron")["lif"]
    exp = build_experiment(compose_config(["device=cpu", "plots=off"]))
    neuron = exp.network.populations["hidden"].neuron
    assert neuron.registry_name == "lif"
    assert float(listed["tau_m"]) == neuron.params.tau_m == 5.0
    for field, printed in listed.items():  # every other LIF field too
        assert printed == repr(getattr(neuron.params, field)), field


def test_list_shows_the_defaults_of_an_alias(capsys):
    print_catalog("learner")
    out = capsys.readouterr().out
    assert "    stca: bptt with surrogate={'name': 'rectangle'}" in out  # its width: rectangle's default
    assert "    postpre: stdp with order='traces_first', mode='nearest', lr=[0.0001, 0.01]" in out
