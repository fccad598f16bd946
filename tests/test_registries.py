"""Every registered component builds from its default YAML, and each YAML holds its schema's defaults.

Defaults live in the schemas: the files of the generated groups are rendered from them
(``python scripts/write_component_yaml.py``) and must equal that rendering; the other config
files with a schema are compared with it value by value.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from snnrun.catalog import GENERATED_GROUPS, generated_yaml, registries, render_yaml, stale_yaml
from snnrun.errors import ConfigError
from snnrun.schema import defaults

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


# --- defaults live in the schemas ---------------------------------------------------------

GENERATED = generated_yaml()
REGENERATE = "defaults live in the schema: run `python scripts/write_component_yaml.py`"


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("path", sorted(GENERATED), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_config_file_is_generated_from_its_schema(path):
    """Values, order and comments: the file is exactly what the generator writes for its schema."""
    assert path.exists(), f"{path.relative_to(CONFIGS)} is missing; {REGENERATE}"
    assert path.read_text() == GENERATED[path], f"{path.relative_to(CONFIGS)} is stale; {REGENERATE}"


def test_generated_groups_hold_only_generated_files():
    assert not stale_yaml(), f"{stale_yaml()}; {REGENERATE}"
    for group in GENERATED_GROUPS:
        assert {p for p in (CONFIGS / group).glob("*.yaml")} <= set(GENERATED), group


@pytest.mark.parametrize("path", sorted(GENERATED), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_generated_text_reads_back_as_the_schema_defaults(path):
    """The rendering itself is faithful: what Hydra (OmegaConf) reads is the schema's defaults."""
    node = OmegaConf.to_container(OmegaConf.create(GENERATED[path]))
    assert yaml.safe_load(GENERATED[path]) == node
    group = path.parent.name
    if group in GENERATED_GROUPS:
        registry = registries()[group]
        cls = registry.get(node.pop("name"))
        expected = {**defaults(cls.Params), **registry.alias_defaults(path.stem)}
    else:
        from snnrun.catalog import settings_schemas

        expected = defaults(settings_schemas()[f"{group}/{path.name}"])
    assert node == _plain(expected)


def test_the_generator_check_finds_stale_files_and_rewrites_them(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("write_component_yaml",
                                                  CONFIGS.parents[1] / "scripts" / "write_component_yaml.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    for group in [*GENERATED_GROUPS, "trainer", "logger"]:
        (tmp_path / group).mkdir()
        for path in (CONFIGS / group).glob("*.yaml"):
            (tmp_path / group / path.name).write_text(path.read_text())
    assert script.main(["--check", "--root", str(tmp_path)]) == 0
    lif = tmp_path / "neuron" / "lif.yaml"
    lif.write_text(lif.read_text().replace("tau_m: 5.0", "tau_m: 7.0"))
    (tmp_path / "encoder" / "poisson.yaml").unlink()
    capsys.readouterr()
    assert script.main(["--check", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "neuron/lif.yaml: differs from its schema" in out and "encoder/poisson.yaml: missing" in out
    assert script.main(["--root", str(tmp_path)]) == 0
    assert "tau_m: 5.0   # [ms] membrane time constant" in lif.read_text()
    assert lif.read_text().startswith("# leaky integrate-and-fire")  # a hand-written header is kept
    assert script.main(["--check", "--root", str(tmp_path)]) == 0


def test_render_yaml_writes_flow_values_units_and_help():
    from dataclasses import dataclass

    from snnrun.schema import param

    @dataclass
    class Example:
        """An example. More text."""
        tau: float = param(2.0, unit="ms", help="time   constant")
        pair: tuple = param((1, 2))
        opts: dict = param({"name": "atan", "alpha": 2.0}, help="nested")
        text: str = param("null", help="a string that looks like null")

    text = render_yaml(Example, "ex", ["# An example. More text."])
    assert text == ("# An example. More text.\nname: ex\ntau: 2.0   # [ms] time constant\npair: [1, 2]\n"
                    "opts: {name: atan, alpha: 2.0}   # nested\ntext: 'null'   # a string that looks like null\n")
    assert OmegaConf.to_container(OmegaConf.create(text))["text"] == "null"


#: (file, key) pairs of the data group whose YAML value (what a run uses) still differs from the
#: schema in snnrun/data: the fix belongs in the schema (set the YAML's value there), after which
#: the entry must go and the data group can join GENERATED_GROUPS.
DATA_PENDING: set[tuple[str, str]] = set()  # (dataset, key) pairs whose YAML may differ from the schema: none


def _differences(node: dict, expected: dict, nested: dict | None = None) -> dict:
    out = {}
    for key, value in node.items():
        default = expected.get(key, "<not in the schema>")
        if nested and key in nested:
            default = _plain({**defaults(nested[key]), **(default or {})})
            value = _plain({**defaults(nested[key]), **(value or {})})
        if _plain(value) != _plain(default):
            out[key] = (value, default)
    return out


@pytest.mark.parametrize("path", sorted((CONFIGS / "data").glob("*.yaml")), ids=lambda p: f"data/{p.stem}")
def test_data_yaml_values_equal_the_schema_defaults(path):
    """The data group is not generated; its files hold the schema's defaults value by value."""
    node = yaml.safe_load(path.read_text())
    cls = registries()["data"].get(node.pop("name"))
    differ = _differences(node, defaults(cls.Params))
    pending = {key for stem, key in DATA_PENDING if stem == path.stem}
    assert set(differ) - pending == set(), f"data/{path.name}: YAML value != schema default: {differ}"
    assert pending - set(differ) == set(), f"data/{path.name}: {pending - set(differ)} agree now: drop from DATA_PENDING"


def test_settings_yaml_variants_agree_with_their_schemas_in_value():
    """Config files with a schema that are not generated: monitors/plots defaults equal the
    schemas (nested spike metrics included); the logger variants only add sinks."""
    from snnrun.build import LoggerParams
    from snnrun.monitors import MonitorsParams
    from snnrun.plots import PlotsParams
    from snnrun.spike_metrics import SpikeMetricsParams

    for relative, schema, nested in [("monitors/default.yaml", MonitorsParams, {"metrics": SpikeMetricsParams}),
                                     ("plots/default.yaml", PlotsParams, None)]:
        node = yaml.safe_load((CONFIGS / relative).read_text())
        assert set(node) == set(defaults(schema)), relative
        assert _differences(node, defaults(schema), nested) == {}, relative
    base = defaults(LoggerParams)
    for path in sorted((CONFIGS / "logger").glob("*.yaml")):
        node = yaml.safe_load(path.read_text())
        assert set(node) <= set(base), path.name
        assert set(_differences(node, base)) <= {"sinks"}, path.name
        assert node["sinks"][:len(base["sinks"])] == base["sinks"], path.name
