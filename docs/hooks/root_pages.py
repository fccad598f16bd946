"""MkDocs hook: the repository's top-level Markdown files as site pages, without copies.

``CONTRIBUTING.md`` and ``BENCHMARKS.md`` stay where they are (GitHub shows them there); the
build adds them as ``contributing.md`` and ``benchmarks.md``. Links are written for browsing the
repository (``docs/speed.md`` links ``../BENCHMARKS.md``, a root file links ``docs/kernels.md``);
:func:`on_page_markdown` maps each such link to the page it becomes on the site, so both work and
``mkdocs build --strict`` still checks every one of them.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: repository file -> its page in the site
PAGES = {"CONTRIBUTING.md": "contributing.md", "BENCHMARKS.md": "benchmarks.md"}
_LINK = re.compile(r"(\]\()([^)\s#]+)(#[^)\s]*)?(\))")


def on_files(files, config):
    from mkdocs.structure.files import File

    for source, page in PAGES.items():
        files.append(File.generated(config, page, abs_src_path=str(ROOT / source)))
    return files


def _repo_path(page_src: str) -> str:
    """The repository path of a page's source (``speed.md`` -> ``docs/speed.md``)."""
    inverse = {page: source for source, page in PAGES.items()}
    return inverse.get(page_src, posixpath.join("docs", page_src))


def on_page_markdown(markdown, page, config, files):
    src = page.file.src_uri
    here = posixpath.dirname(_repo_path(src))

    def fix(match: re.Match) -> str:
        open_, target, anchor, close = match.groups()
        if "://" in target or target.startswith(("/", "mailto:")):
            return match.group(0)
        in_repo = posixpath.normpath(posixpath.join(here, target))
        if in_repo in PAGES:
            site = PAGES[in_repo]
        elif in_repo.startswith("docs/"):
            site = in_repo[len("docs/"):]
        else:
            return match.group(0)
        relative = posixpath.relpath(site, posixpath.dirname(src) or ".")
        return f"{open_}{relative}{anchor or ''}{close}"

    return _LINK.sub(fix, markdown)

