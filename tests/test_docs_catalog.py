"""The documentation site's component catalogue (docs/hooks/catalog.py) covers every registered
component and parameter, and the docstring conversion renders equations (no MkDocs needed)."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest

from snnrun.catalog import registries, settings_schemas

HOOKS = Path(__file__).resolve().parents[1] / "docs" / "hooks"


@pytest.fixture(scope="module")
def hooks():
    sys.path.insert(0, str(HOOKS))  # as MkDocs does while it loads a hook
    try:
        spec = importlib.util.spec_from_file_location("snnrun_docs_catalog", HOOKS / "catalog.py")
        catalog = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(catalog)
        import rst_docstrings
    finally:
        sys.path.remove(str(HOOKS))
    yield catalog, rst_docstrings
    sys.modules.pop("rst_docstrings", None)


def test_every_component_and_parameter_has_its_row(hooks):
    catalog, _ = hooks
    pages = catalog.pages()
    regs = registries()
    assert set(pages) == {"catalog/index.md", "catalog/optim.md", "catalog/settings.md",
                          *(f"catalog/{group}.md" for group in regs)}
    for group, registry in regs.items():
        page = pages[f"catalog/{group}.md"]
        for name in registry.names(aliases=False):
            assert f"## `{name}` {{#{name}}}" in page, (group, name)
            section = page.split(f"## `{name}` {{#{name}}}")[1].split("\n## ")[0]
            for field in dataclasses.fields(registry.get(name).Params):
                assert f"| `{field.name}` |" in section, (group, name, field.name)
        for alias in registry.names():
            assert f"`{alias}`" in page, (group, alias)
    for path, schema in settings_schemas().items():
        for field in dataclasses.fields(schema):
            assert f"| `{field.name}` |" in pages["catalog/settings.md"], (path, field.name)


def test_a_row_shows_default_unit_range_and_help(hooks):
    catalog, _ = hooks
    page = catalog.pages()["catalog/neuron.md"]
    lif = page.split("## `lif` {#lif}")[1].split("\n## ")[0]
    default = {f.name: f.default for f in dataclasses.fields(registries()["neuron"].get("lif").Params)}["tau_m"]
    assert f"| `tau_m` | float | `{default}` | ms | > 0 | membrane time constant |" in lif
    assert "| `reset` | str | `hard` |  | one of `hard`, `soft` |" in lif
    assert "$$\n\\tau_m \\frac{dv}{dt} = -(v - v_{rest}) + R\\,I(t)" in lif  # the docstring's equation
    assert "API: [`snnrun.neurons.lif.LIF`][snnrun.neurons.lif.LIF]" in lif


def test_rst_math_and_roles_become_markdown(hooks):
    _, rst = hooks
    text = ("Leaky.\n\n.. math:: a = b, \\quad\n          c = d\n\nThe step is :func:`lif_step`; "
            ":class:`~snnrun.errors.ConfigError` and :math:`x^2`.")
    assert rst.to_markdown(text) == ("Leaky.\n\n$$\na = b, \\quad\nc = d\n$$\n\nThe step is `lif_step`; "
                                     "`ConfigError` and \\(x^2\\).")
