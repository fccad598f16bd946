"""snnrun's docstrings as Markdown for the documentation site.

The docstrings are written for reading in an editor and with ``help()``: Google-style sections
(``Args:``, ``Returns:``), double-backtick code, Sphinx roles (``:func:`lif_step```) and
``.. math::`` directives holding each model's equations. :func:`to_markdown` rewrites the last two
so MkDocs renders them: a role becomes inline code, a ``.. math::`` block (with its indented
continuation lines) a ``$$ ... $$`` block for ``pymdownx.arithmatex``, ``:math:`x``` ``\\(x\\)``.

Used by ``docs/hooks/catalog.py`` (the component catalogue) and, as a Griffe extension
(``RstDocstrings``, listed in ``mkdocs.yml``), by mkdocstrings for the API reference.
"""

from __future__ import annotations

import re

try:  # mkdocstrings' loader; absent when only the catalogue is rendered (the tests)
    from griffe import Extension
except ImportError:  # pragma: no cover - griffe comes with mkdocstrings[python]
    Extension = object

_ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|data|attr|exc|obj|const|ref):`(~?)([^`]+)`")
_INLINE_MATH = re.compile(r":math:`([^`]+)`")
_MATH = re.compile(r"^(\s*)\.\. math::\s*(.*)$")


def _role(match: re.Match) -> str:
    short, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def to_markdown(text: str) -> str:
    """``text`` (a cleaned docstring) with its reST math and roles in Markdown."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _MATH.match(lines[i])
        if not match:
            line = _INLINE_MATH.sub(lambda m: f"\\({m.group(1)}\\)", lines[i])
            out.append(_ROLE.sub(_role, line))
            i += 1
            continue
        indent, first = match.groups()
        body = [first] if first.strip() else []
        i += 1
        while i < len(lines) and (not lines[i].strip() and not body or
                                  lines[i].strip() and len(lines[i]) - len(lines[i].lstrip()) > len(indent)):
            if lines[i].strip():
                body.append(lines[i].strip())
            i += 1
        if out and out[-1].strip():
            out.append("")
        out += [f"{indent}$$", *(f"{indent}{b}" for b in body), f"{indent}$$"]
        if i < len(lines) and lines[i].strip():
            out.append("")
    return "\n".join(out)


class RstDocstrings(Extension):
    """Griffe extension: every docstring through :func:`to_markdown` before mkdocstrings parses it."""

    def on_object(self, *, obj, **kwargs) -> None:  # noqa: ARG002 - Griffe's signature
        if getattr(obj, "is_alias", False):
            return
        docstring = getattr(obj, "docstring", None)
        if docstring is not None and docstring.value:
            docstring.value = to_markdown(docstring.value)
