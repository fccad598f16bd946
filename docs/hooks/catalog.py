"""MkDocs hook: the component catalogue, generated at build time from the code.

Every registered component (``snnrun.catalog.registries()``, the data behind ``snnrun list``)
gets a section with its aliases, its class docstring (equations included) and a table of its
``Params`` schema: each parameter's type, default, unit, allowed range or choices and help.
The pages exist only in the build (``catalog/*.md``); nothing is written to ``docs/``, so the
catalogue cannot drift from the schemas. :func:`pages` is plain Python, so tests can render the
pages without MkDocs.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing

from rst_docstrings import to_markdown  # docs/hooks/ is on sys.path while MkDocs loads hooks

#: registry group -> (page title, how a config chooses it)
GROUPS = {
    "neuron": ("Neuron models", "`neuron=NAME` (every population's default model) or a population's "
                                "`neuron: {name: NAME, ...}`"),
    "surrogate": ("Surrogate gradients", "`learner.surrogate: {name: NAME, ...}` of a gradient learner"),
    "synapse": ("Synapses", "a projection's `synapse: {name: NAME, ...}`, or a list of such stages"),
    "encoder": ("Encoders", "`encoder=NAME`"),
    "decoder": ("Decoders", "`decoder=NAME`"),
    "learner": ("Learning rules", "`learner=NAME`, or an entry `learners.KEY: {name: NAME, ...}`"),
    "data": ("Datasets", "`data=NAME`"),
    "reward": ("Rewards", "`reward: {name: NAME, ...}` of a reward-modulated learner"),
}
#: API reference pages (docs/reference/): a component class links to its entry when its module is here
API_MODULES = ("snnrun.neurons", "snnrun.surrogate", "snnrun.synapses", "snnrun.encoders", "snnrun.decoders",
               "snnrun.learning", "snnrun.data", "snnrun.rewards", "snnrun.build")
GENERATED = ("Generated when the site is built from the registered classes and their `Params` "
             "schemas: the same data as `snnrun list {group}`.")


def _cell(value: object) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


def _code(text: str) -> str:
    ticks = "``" if "`" in text else "`"
    pad = " " if ticks == "``" else ""
    return f"{ticks}{pad}{text}{pad}{ticks}".replace("|", "\\|")


def _number(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _allowed(field: dataclasses.Field, hint: object) -> str:
    meta = field.metadata
    parts = []
    choices = meta.get("choices")
    if choices is None:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        literal = [a for a in args if typing.get_origin(a) is typing.Literal]
        if typing.get_origin(hint) is typing.Literal:
            choices = typing.get_args(hint)
        elif literal:
            choices = typing.get_args(literal[0])
    if choices is not None:
        parts.append("one of " + ", ".join(_code(str(c)) for c in choices))
    for key, symbol in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
        if meta.get(key) is not None:
            parts.append(f"{symbol} {_number(meta[key])}")
    return "; ".join(parts)


def params_table(schema: type) -> str:
    """A Markdown table of ``schema``'s fields: type, default, unit, range/choices, help."""
    from snnrun.catalog import yaml_value
    from snnrun.schema import describe

    fields = {f.name: f for f in dataclasses.fields(schema)}
    if not fields:
        return "No parameters.\n"
    hints = typing.get_type_hints(schema)
    rows = ["| parameter | type | default | unit | allowed | description |", "|---|---|---|---|---|---|"]
    for name, type_name, default, unit, help_text in describe(schema):
        shown = "required" if isinstance(default, str) and default == "???" else _code(yaml_value(default))
        rows.append(f"| `{name}` | {_cell(type_name)} | {shown} | {_cell(unit)} | "
                    f"{_allowed(fields[name], hints[name])} | {_cell(help_text)} |")
    return "\n".join(rows) + "\n"


def _api_link(cls: type) -> str:
    module, name = cls.__module__, cls.__qualname__
    if "." in name or name.startswith("_") or not module.startswith(API_MODULES) or not cls.__dict__.get("__doc__"):
        return ""  # mkdocstrings shows public objects with a docstring only
    return f"API: [`{module}.{name}`][{module}.{name}]\n\n"


def _docstring(obj: object) -> str:
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else obj.__doc__
    return to_markdown(inspect.cleandoc(doc)) + "\n\n" if doc else ""


def _summary(cls: type) -> str:
    """The docstring's first line, or its first paragraph when that line does not end a sentence."""
    lines = _docstring(cls).strip().splitlines()
    if not lines or lines[0].rstrip().endswith("."):
        return lines[0] if lines else ""
    paragraph = []
    for line in lines:
        if not line.strip():
            break
        paragraph.append(line.strip())
    return " ".join(paragraph)


def group_page(group: str, registry) -> str:
    title, how = GROUPS.get(group, (group.capitalize(), f"`{group}: {{name: NAME}}`"))
    lines = [f"# {title}", "", f"Chosen with {how}. " + GENERATED.format(group=group), ""]
    canonical = registry.names(aliases=False)
    lines += ["| name | aliases | summary |", "|---|---|---|"]
    aliases_of = {}
    for name in canonical:
        cls = registry.get(name)
        aliases_of[name] = [a for a in registry.names() if a not in canonical and registry.get(a) is cls]
        summary = _summary(cls)
        lines.append(f"| [`{name}`](#{name}) | {', '.join(f'`{a}`' for a in aliases_of[name])} | "
                     f"{_cell(summary)} |")
    lines.append("")
    for name in canonical:
        cls = registry.get(name)
        lines += [f"## `{name}` {{#{name}}}", ""]
        if aliases_of[name]:
            lines += ["Aliases: " + ", ".join(f"`{a}`" for a in aliases_of[name]) + ".", ""]
        lines += [_docstring(cls) + _api_link(cls) + params_table(cls.Params)]
        if group == "neuron":
            from snnrun.catalog import operating_range_text
            text = operating_range_text(cls)
            lines += [text[0].upper() + text[1:] + ".", ""]
        for alias in aliases_of[name]:
            own = registry.alias_defaults(alias)
            if own:
                from snnrun.catalog import yaml_value
                changed = ", ".join(f"`{k}: {yaml_value(v)}`" for k, v in own.items())
                lines += [f"`{alias}` is `{name}` with {changed}.", ""]
    return "\n".join(lines).rstrip() + "\n"


def optim_page() -> str:
    from snnrun.optim import optimizer_classes, scheduler_classes

    lines = ["# Optimizers and schedulers", "",
             "Any class of `torch.optim` (`optimizer.name=NAME`) and of `torch.optim.lr_scheduler` "
             "(`scheduler.name=NAME`); the other keys of the node are passed as keyword arguments and "
             "checked against the class's signature. Generated when the site is built from the torch "
             "installed there: the same data as `snnrun list optimizer` and `snnrun list scheduler`.", ""]
    for title, classes, skip in (("Optimizers", optimizer_classes(), "params"),
                                 ("Schedulers", scheduler_classes(), "optimizer")):
        lines += [f"## {title}", "", "| name | arguments (defaults) |", "|---|---|"]
        for name in sorted(classes):
            sig = inspect.signature(classes[name])
            args = ", ".join(f"{n}={p.default!r}" if p.default is not p.empty else n
                             for n, p in sig.parameters.items() if n != skip)
            lines.append(f"| `{name}` | {_code(args) if args else ''} |")
        lines.append("")
    return "\n".join(lines)


def settings_page() -> str:
    from snnrun.catalog import settings_schemas

    lines = ["# Trainer and logger settings", "",
             "Config groups without a registry: one settings file each, rendered from its schema "
             "(`snnrun/configs/<file>`). Generated when the site is built.", ""]
    for path, schema in settings_schemas().items():
        group = path.split("/")[0]
        lines += [f"## `{group}`", "", f"`{path}`: {_docstring(schema).strip()}", "", params_table(schema)]
    return "\n".join(lines)


def index_page(regs: dict) -> str:
    lines = ["# Component catalogue", "",
             "Every component snnrun can build by name, with each parameter's default, unit, allowed range "
             "and meaning, and each model's equations. These pages are generated when the site is built, "
             "from the registered classes and their `Params` schemas (`snnrun/catalog.py`), so they always "
             "match the code; `snnrun list GROUP` prints the same data in a terminal.", "",
             "| group | components |", "|---|---|"]
    for group, registry in regs.items():
        title = GROUPS.get(group, (group,))[0]
        names = ", ".join(f"`{n}`" for n in registry.names(aliases=False))
        lines.append(f"| [{title}]({group}.md) | {names} |")
    lines += ["| [Optimizers and schedulers](optim.md) | `torch.optim`, `torch.optim.lr_scheduler` |",
              "| [Trainer and logger settings](settings.md) | `trainer`, `logger` |", ""]
    return "\n".join(lines)


def pages() -> dict[str, str]:
    """``catalog/<page>.md`` -> Markdown, for every group of :func:`snnrun.catalog.registries`."""
    from snnrun.catalog import registries

    regs = registries()
    out = {"catalog/index.md": index_page(regs)}
    for group, registry in regs.items():
        out[f"catalog/{group}.md"] = group_page(group, registry)
    out["catalog/optim.md"] = optim_page()
    out["catalog/settings.md"] = settings_page()
    return out


def on_files(files, config):
    from mkdocs.structure.files import File

    for path, text in pages().items():
        files.append(File.generated(config, path, content=text))
    return files

