"""The catalogue of components: what ``snnrun list`` prints, and the config files generated from it.

Defaults live in the schemas (each component's ``Params`` dataclass). The files of the
component groups under ``snnrun/configs`` (and ``trainer/default.yaml``, ``logger/default.yaml``)
are rendered from them by :func:`generated_yaml`; ``python scripts/write_component_yaml.py``
rewrites them and ``tests/test_registries.py`` fails when one is stale.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .schema import describe, suggest

#: the packaged config tree
CONFIGS = Path(__file__).resolve().parent / "configs"
#: config groups whose every file is rendered from a registry's schemas: one file per component
#: and one per alias with its own defaults (``stca``). ``data`` is not generated yet: four of its
#: files differ in value from the schemas in ``snnrun/data`` (see ``tests/test_registries.py``).
GENERATED_GROUPS = ("neuron", "encoder", "decoder", "synapse", "reward", "learner")


def registries() -> dict:
    from .data import DATASETS
    from .decoders import DECODERS
    from .encoders import ENCODERS
    from .learning import LEARNERS
    from .neurons import NEURONS
    from .rewards import REWARDS
    from .surrogate import SURROGATES
    from .synapses import SYNAPSES

    return {"neuron": NEURONS, "surrogate": SURROGATES, "synapse": SYNAPSES, "encoder": ENCODERS,
            "decoder": DECODERS, "learner": LEARNERS, "data": DATASETS, "reward": REWARDS}


def print_catalog(group: str | None = None) -> None:
    regs = registries()
    groups = list(regs) + ["optimizer", "scheduler"]
    if group is None:
        for name in groups:
            if name in regs:
                print(f"{name}: {', '.join(regs[name].names())}")
        from .optim import optimizer_classes, scheduler_classes
        print(f"optimizer: {', '.join(sorted(optimizer_classes()))} (torch.optim)")
        print(f"scheduler: {', '.join(sorted(scheduler_classes()))} (torch.optim.lr_scheduler)")
        return
    if group in ("optimizer", "scheduler"):
        from .optim import optimizer_classes, scheduler_classes
        classes = optimizer_classes() if group == "optimizer" else scheduler_classes()
        import inspect
        for name in sorted(classes):
            sig = inspect.signature(classes[name])
            args = ", ".join(f"{n}={p.default!r}" if p.default is not p.empty else n
                             for n, p in sig.parameters.items() if n not in ("params", "optimizer"))
            print(f"{name}({args})")
        return
    if group not in regs:
        raise ConfigError(f"list: unknown group '{group}'{suggest(group, groups)}; groups: {', '.join(groups)}")
    registry = regs[group]
    for name in registry.names(aliases=False):
        cls = registry.get(name)
        aliases = [a for a in registry.names() if a not in registry.names(aliases=False) and registry.get(a) is cls]
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        print(f"{name}" + (f" (aliases: {', '.join(aliases)})" if aliases else "") + (f": {doc}" if doc else ""))
        for field, tp, default, unit, help_text in describe(cls.Params):
            unit_text = f" [{unit}]" if unit else ""
            print(f"    {field}: {tp} = {default!r}{unit_text}  {help_text}".rstrip())
        if group == "neuron":
            print(f"    {operating_range_text(cls)}")
        for alias in aliases:
            if registry.alias_defaults(alias):
                print(f"    {alias}: {name} with {_alias_overrides(registry, alias)}")


def operating_range_text(cls, dt: float = 1.0) -> str:
    """One line on where a neuron model works with its default parameters at ``dt`` (ms): rest,
    threshold and drive (:meth:`snnrun.neurons.base.Neuron.operating_range`)."""
    r = cls(cls.Params(), shape=(1,), dt=dt).operating_range()
    return (f"operating range (defaults, dt = {dt:g} ms): rest {r.v_rest:g} {r.unit}, threshold {r.v_th:g} {r.unit}, "
            f"drive {r.drive:.4g} (input that reaches threshold; kaiming weights onto it are scaled by it)")


def _alias_overrides(registry, name: str) -> str:
    """``key=value`` of an alias's own defaults (null entries of a nested node left out: defaults)."""
    def shown(value):
        return {k: v for k, v in value.items() if v is not None} if isinstance(value, dict) else value
    return ", ".join(f"{k}={shown(v)!r}" for k, v in registry.alias_defaults(name).items())


def settings_schemas() -> dict[str, type]:
    """Single config files generated from a schema (groups without a registry): path -> schema."""
    from .spec import LoggerParams, TrainerParams

    return {"trainer/default.yaml": TrainerParams, "logger/default.yaml": LoggerParams}


def yaml_value(value: Any) -> str:
    """``value`` as one line of YAML (flow style), as it reads back with PyYAML and OmegaConf."""
    def plain(v):
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    text = yaml.safe_dump(plain(value), default_flow_style=True, sort_keys=False, width=math.inf, allow_unicode=True)
    return text.strip().removesuffix("...").strip()


def render_yaml(schema: type, name: str | None = None, header: list[str] = (),
                overrides: dict | None = None) -> str:
    """The config file of ``schema``: ``header`` comment lines, ``name:``, then every field with its
    default (``overrides`` first: an alias's own defaults) and a ``# [unit] help`` comment."""
    lines = list(header)
    if name is not None:
        lines.append(f"name: {name}")
    overrides = overrides or {}
    for field, _, default, unit, help_text in describe(schema):
        required = isinstance(default, str) and default == "???" and field not in overrides
        value = "???" if required else yaml_value(overrides.get(field, default))
        comment = " ".join(x for x in (f"[{unit}]" if unit else "", " ".join(help_text.split())) if x)
        lines.append(f"{field}: {value}" + (f"   # {comment}" if comment else ""))
    return "\n".join(lines) + "\n"


def _header(path: Path, default: str) -> list[str]:
    """An existing file's leading comment lines (hand-written, kept), else ``# default``."""
    if path.exists():
        kept = []
        for line in path.read_text().splitlines():
            if not line.startswith("#"):
                break
            kept.append(line.rstrip())
        if kept:
            return kept
    return [f"# {default}"] if default else []


def _first_doc_line(obj: Any) -> str:
    doc = (obj.__doc__ or "").strip()
    return doc.splitlines()[0].strip() if doc else ""


def generated_yaml(root: Path = CONFIGS) -> dict[Path, str]:
    """Every generated config file under ``root`` -> the text it must hold."""
    files: dict[Path, str] = {}
    regs = registries()
    for group in GENERATED_GROUPS:
        registry = regs[group]
        canonical = registry.names(aliases=False)
        for name in registry.names():
            cls = registry.get(name)
            overrides = registry.alias_defaults(name)
            if name not in canonical and not overrides:
                continue  # a plain alias shares its component's file
            path = root / group / f"{name}.yaml"
            doc = _first_doc_line(cls) if name in canonical else \
                f"{name}: alias of {cls.registry_name} with {overrides}"
            files[path] = render_yaml(cls.Params, name, _header(path, doc), overrides)
    for relative, schema in settings_schemas().items():
        path = root / relative
        files[path] = render_yaml(schema, None, _header(path, _first_doc_line(schema)))
    return files


def stale_yaml(root: Path = CONFIGS) -> list[str]:
    """Generated files under ``root`` that are missing or differ from their schema, and files in a
    generated group that no registered component accounts for (one line each)."""
    expected = generated_yaml(root)
    problems = []
    for path, text in expected.items():
        relative = path.relative_to(root)
        if not path.exists():
            problems.append(f"{relative}: missing")
        elif path.read_text() != text:
            problems.append(f"{relative}: differs from its schema")
    for group in GENERATED_GROUPS:
        for path in sorted((root / group).glob("*.yaml")):
            if path not in expected:
                problems.append(f"{path.relative_to(root)}: no registered {group} (or alias with its own defaults) "
                                f"of that name")
    return problems
