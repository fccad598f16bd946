"""The README's commands run as written (at reduced size: fewer batches, no progress bar).

Every ``snnrun ...`` line of the README's ```bash blocks is run in order in one working directory,
so the tour's commands see the run directories the earlier ones wrote. Training runs get
``trainer.limit_train_batches=2 trainer.limit_test_batches=2`` and one epoch unless they set one; commands that need the MNIST subset
are skipped when it is absent (stated in the skip reason).
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MNIST, ROOT, run_cli

SUBCOMMANDS = {"validate", "resume", "reproduce", "compare", "plot", "list", "doctor", "export"}
REDUCE = ["trainer.limit_train_batches=2", "trainer.limit_test_batches=2", "trainer.progress=false"]
NEEDS_MNIST = ("experiment=diehl_cook", "experiment=mnist", "data=mnist")


def readme_commands(path: Path = ROOT / "README.md") -> list[list[str]]:
    """The ``snnrun`` command lines of the README's bash blocks, comments stripped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("snnrun"):
                commands.append(shlex.split(line)[1:])
    return commands


def reduced(args: list[str]) -> list[str]:
    """The command at test size: training runs (not sub-commands or inspection) get REDUCE."""
    if args and args[0] in SUBCOMMANDS or any(a in ("--cfg", "--info", "--help", "-h") for a in args):
        return args
    epochs = [] if any(a.startswith("trainer.epochs=") for a in args) else ["trainer.epochs=1"]
    return args + REDUCE + epochs + (["plots=off"] if not any(a.startswith("plots") for a in args) else [])


def test_readme_has_the_tour_and_the_one_cycle_example():
    commands = [" ".join(c) for c in readme_commands()]
    assert any(c.startswith("resume ") for c in commands) and any(c.startswith("reproduce ") for c in commands)
    assert any("scheduler.name=OneCycleLR" in c for c in commands)


@pytest.mark.slow
def test_readme_commands_run_as_written(tmp_path):
    pytest.importorskip("matplotlib", reason="the tour's `snnrun plot` needs the plots extra")
    failures = []
    for args in readme_commands():
        line = " ".join(args)
        if any(key in line for key in NEEDS_MNIST) and not MNIST.exists():
            continue  # the MNIST subset is not part of a clean clone: checked by scripts/check_mnist.sh
        if "--config-dir" in args:  # the example points at the user's own folder: give it one
            (tmp_path / "my_configs" / "experiment").mkdir(parents=True, exist_ok=True)
            (tmp_path / "my_configs" / "experiment" / "mine.yaml").write_text(
                "# @package _global_\ntrainer:\n  epochs: 1\n")
        if args[0] == "export" and importlib.util.find_spec("nir") is None:
            continue  # the nir extra is not installed here (CI installs it)
        out = run_cli(*reduced(args), cwd=tmp_path, timeout=300)
        if out.returncode != 0:
            failures.append(f"snnrun {line}: exit {out.returncode}: {out.stderr.strip()[-400:]}")
    assert not failures, "\n".join(failures)


def test_readme_python_example_runs(tmp_path):
    """The README's ```python block, with its compose() overrides reduced, in a fresh interpreter."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks, "the README shows the Python API"
    reduction = ", ".join(f'"{o}"' for o in REDUCE + ["plots=off"])
    code = "\n".join(blocks).replace("snnrun.compose([", f"snnrun.compose([{reduction}, ")
    code += "\nimport torch\nx = torch.rand(3, 64)\nassert model(x).shape == (3, 10)\nprint('ok')\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
