"""Every registered component builds from its default YAML, and each YAML mirrors its schema."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import yaml

from snnrun.catalog import registries
from snnrun.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "snnrun" / "configs"
#: registry kind -> config group directory
GROUPS = {"neuron": "neuron", "encoder": "encoder", "decoder": "decoder", "learner": "learner",
          "data": "data", "synapse": "synapse", "reward": "reward", "surrogate": None}


def _yaml_files():
    for kind, group in GROUPS.items():
        if group and (CONFIGS / group).is_dir():
            for path in sorted((CONFIGS / group).glob("*.yaml")):
                yield pytest.param(kind, path, id=f"{group}/{path.stem}")


def _tiny_network():
    from snnrun.network import build_network

    node = {"dt": 1.0, "duration": 5.0,
            "populations": {"inp": {"shape": None}, "hid": {"shape": 6}, "out": {"shape": 3}},
            "projections": {"a": {"from": "inp", "to": "hid"}, "b": {"from": "hid", "to": "out"}},
            "output": "out"}
    return build_network(node, {"name": "lif"}, (4,))


def build(kind: str, node: dict):
    registry = registries()[kind]
    runtime = {
        "neuron": dict(shape=(3, 4), dt=0.1),
        "encoder": dict(dt=1.0, time_steps=5),
        "decoder": dict(dt=1.0, num_classes=3),
        "learner": dict(network=_tiny_network()),
        "synapse": dict(in_shape=(2, 8, 8), target_shape=(2, 8, 8), dt=1.0),
    }.get(kind, {})
    return registry.build(node, kind, **runtime)


@pytest.mark.parametrize("kind,path", list(_yaml_files()))
def test_yaml_mirrors_schema_and_builds(kind, path):
    node = yaml.safe_load(path.read_text())
    if node is None or "name" not in node:
        pytest.fail(f"{path} has no `name`")
    registry = registries()[kind]
    cls = registry.get(node["name"])
    fields = {f.name for f in dataclasses.fields(cls.Params)}
    assert set(node) - {"name"} == fields, f"{path} keys differ from {cls.__name__}.Params"
    component = build(kind, node)
    assert type(component) is cls


@pytest.mark.parametrize("kind", [k for k, g in GROUPS.items() if g])
def test_every_registered_name_has_a_yaml(kind):
    group = CONFIGS / GROUPS[kind]
    registry = registries()[kind]
    declared = set()
    if group.is_dir():
        declared = {yaml.safe_load(p.read_text()).get("name") for p in group.glob("*.yaml")}
    missing = [n for n in registry.names(aliases=False) if n not in declared]
    assert not missing, f"{kind}: no YAML in configs/{GROUPS[kind]}/ for {missing}"


@pytest.mark.parametrize("kind", list(GROUPS))
def test_unknown_name_lists_valid_names(kind):
    registry = registries()[kind]
    first = registry.names()[0]
    with pytest.raises(ConfigError) as err:
        registry.get(first + "x", f"{kind}.name")
    assert f"{kind}.name: unknown {registry.kind} '{first}x'" in str(err.value)
    assert first in str(err.value)


def test_surrogates_build_from_defaults():
    surrogates = registries()["surrogate"]
    x = torch.linspace(-1, 1, 11)
    for name in surrogates.names(aliases=False):
        fn = surrogates.build({"name": name}, "learner.surrogate")
        assert torch.equal(fn(x), (x >= 0).float())


def test_data_yamls_hold_out_the_schemas_validation_split():
    """Every shipped dataset config holds out the schema's default validation split (same values)."""
    from snnrun.data.base import LoaderParams

    defaults = {f.name: f.default for f in dataclasses.fields(LoaderParams)}
    assert defaults["val_fraction"] == 0.1 and defaults["val_seed"] == 0
    for path in sorted((CONFIGS / "data").glob("*.yaml")):
        node = yaml.safe_load(path.read_text())
        assert (node["val_fraction"], node["val_seed"]) == (defaults["val_fraction"], defaults["val_seed"]), path.name


def test_trainer_yaml_never_selects_on_the_test_set():
    from snnrun.build import TrainerParams

    node = yaml.safe_load((CONFIGS / "trainer" / "default.yaml").read_text())
    fields = {f.name: f.default for f in dataclasses.fields(TrainerParams)}
    assert set(node) == set(fields)
    assert node["monitor"] == fields["monitor"] == "auto" and node["select_on_test"] is fields["select_on_test"] is False
    for path in sorted((CONFIGS / "hparams_search").glob("*.yaml")):
        text = path.read_text()
        monitor = (yaml.safe_load(text).get("trainer") or {}).get("monitor", "auto")
        assert monitor in ("auto", "val/accuracy") and "test/" not in text.split("SNNRUN_OBJECTIVES:")[-1], path.name
