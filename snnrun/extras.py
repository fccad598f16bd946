"""The install command for an optional extra, as it works for how this snnrun was installed.

snnrun is installed from a checkout (``bootstrap.py`` or ``pip install -e .``) or from a git or file
URL, not from PyPI, so ``pip install snnrun[x]`` would fail: the hint names the source pip recorded
(PEP 610 ``direct_url.json``).
"""

from __future__ import annotations

import json
import shlex
import sys
from importlib import metadata
from urllib.parse import unquote, urlparse


def install_command(extra: str) -> str:
    """A shell command that adds ``extra`` to this installation of snnrun."""
    pip = f"{shlex.quote(sys.executable)} -m pip install"
    # an egg-info in a checkout on sys.path has no direct_url.json; the installed dist-info has
    raw = next(filter(None, (d.read_text("direct_url.json") for d in metadata.distributions(name="snnrun"))), None)
    info = json.loads(raw) if raw else {}
    url = info.get("url", "")
    if url.startswith("file://"):
        path = unquote(urlparse(url).path)
        editable = "-e " if info.get("dir_info", {}).get("editable") else ""
        return f"{pip} {editable}{shlex.quote(f'{path}[{extra}]')}"
    if url:
        vcs = info.get("vcs_info", {}).get("vcs")
        source = f"{vcs}+{url}" if vcs else url
        return f"{pip} {shlex.quote(f'snnrun[{extra}] @ {source}')}"
    return f"{pip} -e '.[{extra}]'  (in the snnrun checkout)"


def needs(extra: str, what: str) -> str:
    """``"<what> needs the optional extra '<extra>': <install command>"``, for error messages."""
    return f"{what} needs the optional extra '{extra}': {install_command(extra)}"
