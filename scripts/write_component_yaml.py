"""(Re)write the generated config files from their schemas: defaults live in the schemas.

Every component of the groups in ``snnrun.catalog.GENERATED_GROUPS`` (neuron, encoder, decoder,
synapse, reward, learner) gets ``snnrun/configs/<group>/<name>.yaml`` (aliases with their own
defaults, such as ``learner/stca.yaml``, too), and ``trainer/default.yaml`` / ``logger/default.yaml``
are rendered from ``TrainerParams`` / ``LoggerParams``: a header comment (an existing file's
leading comment lines are kept; a new file gets the first line of the docstring), ``name:``, then
every field with its default and a ``# [unit] help`` comment.

Usage:
    python scripts/write_component_yaml.py           # rewrite stale or missing files
    python scripts/write_component_yaml.py --check   # write nothing; exit 1 listing stale files
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from snnrun.catalog import CONFIGS, generated_yaml, stale_yaml


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 listing stale files")
    parser.add_argument("--root", type=Path, default=CONFIGS, help="config tree (default: the packaged one)")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_yaml(args.root)
        for line in stale:
            print(line)
        if stale:
            print(f"{len(stale)} stale config file(s); run: python scripts/write_component_yaml.py", file=sys.stderr)
            return 1
        return 0
    for path, text in generated_yaml(args.root).items():
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print("wrote", path.relative_to(args.root))
    for line in stale_yaml(args.root):  # what writing cannot fix: files of no registered component
        print("warning:", line, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
