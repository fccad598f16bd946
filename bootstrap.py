#!/usr/bin/env python3
"""Set up what is missing in ./.venv, then run snnrun or its tests. Needs only Python >= 3.10.

    python3 bootstrap.py run [overrides ...]   set up, then train the default experiment (or `snnrun overrides`)
    python3 bootstrap.py test [pytest args]    set up (with the dev extra), then run the test suite
    python3 bootstrap.py setup                 set up only

Options (before the command): --extras plots,tensorboard (extras beside dev), --torch BUILD.
BUILD chooses the torch wheel: ``cpu`` (the default without an NVIDIA driver), ``cu126``/``cu128``/...
(PyTorch's CUDA wheel index of that name) or ``pypi`` (PyPI's default wheel, a CUDA build on Linux;
the default when ``nvidia-smi`` is found). ``SNNRUN_TORCH`` and ``SNNRUN_EXTRAS`` set the same.

Each step is skipped when already done: the venv, torch at the pinned version and build, the
package with its extras (a stamp of pyproject.toml and the extras), and the compiled kernels.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
TORCH_VERSION = os.environ.get("TORCH_VERSION", "2.13.0")
STAMP = VENV / ".snnrun-setup"


def say(msg: str) -> None:
    print(f"bootstrap: {msg}", flush=True)


def sh(*cmd: str | Path, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, check=check)


def venv_python(code: str) -> str | None:
    """What ``code`` prints in the venv's Python, or None if it fails."""
    out = subprocess.run([str(PY), "-c", code], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def default_build() -> str:
    return "pypi" if shutil.which("nvidia-smi") else "cpu"


def installed_torch() -> tuple[str, str] | None:
    """(version, 'cpu' or 'cuda X') of the venv's torch, None if it has none."""
    got = venv_python("import torch; print(torch.__version__, torch.version.cuda or 'cpu')")
    if not got:
        return None
    version, cuda = got.split()
    return version, cuda if cuda == "cpu" else f"cuda {cuda}"


def torch_matches(build: str) -> bool:
    got = installed_torch()
    if got is None or got[0].split("+")[0] != TORCH_VERSION:
        return False
    if build == "pypi":
        return True
    return (got[1] == "cpu") == (build == "cpu")


def install_torch(build: str) -> None:
    if torch_matches(build):
        return
    pip = [PY, "-m", "pip", "install", "-q", "--retries", "1"]
    if build == "pypi":
        say(f"installing torch=={TORCH_VERSION} from PyPI (on Linux a CUDA build of several GB)")
        sh(*pip, f"torch=={TORCH_VERSION}")
    else:
        say(f"installing torch=={TORCH_VERSION}+{build} (PyTorch's {build} wheel index)")
        sh(*pip, f"torch=={TORCH_VERSION}+{build}", "--extra-index-url", f"https://download.pytorch.org/whl/{build}")


def setup(extras: list[str], build: str) -> None:
    start = time.perf_counter()
    if not PY.exists():
        say(f"creating {VENV.name}/ with Python {sys.version.split()[0]}")
        sh(sys.executable, "-m", "venv", VENV)
        sh(PY, "-m", "pip", "install", "-q", "--upgrade", "pip", check=False)
    install_torch(build)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + ",".join(sorted(extras)).encode()).hexdigest()
    if not (STAMP.exists() and STAMP.read_text() == wanted and venv_python("import snnrun") is not None):
        say(f"installing snnrun with extras [{','.join(extras)}]")
        constraint = VENV / "torch-constraint.txt"
        constraint.write_text(f"torch=={installed_torch()[0]}\n")  # never let an extra replace the chosen torch
        sh(PY, "-m", "pip", "install", "-q", "-c", constraint, "-e", f".[{','.join(extras)}]")
        STAMP.write_text(wanted)
    sh(PY, "-m", "snnrun.kernels")  # compile the C++ fast paths once (cached per environment and CPU)
    version, kind = installed_torch()
    say(f"ready in {time.perf_counter() - start:.0f} s: torch {version} ({kind}), "
        f"snnrun {venv_python('import snnrun; print(snnrun.__version__)')} in {VENV.name}/")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bootstrap.py", description=__doc__.split("\n\n")[0],
                                     allow_abbrev=False)
    parser.add_argument("--extras", default=os.environ.get("SNNRUN_EXTRAS", ""),
                        help="comma-separated extras beside dev (see pyproject.toml)")
    parser.add_argument("--torch", default=os.environ.get("SNNRUN_TORCH") or default_build(),
                        help="torch wheel: cpu, cuXYZ or pypi (default: %(default)s)")
    parser.add_argument("command", choices=["setup", "run", "test"])
    args, rest = parser.parse_known_args(argv)
    extras = sorted({"dev", *filter(None, args.extras.split(","))})
    setup(extras, args.torch)
    if args.command == "run":
        return subprocess.call([str(BIN / "snnrun"), *rest], cwd=ROOT)
    if args.command == "test":
        return subprocess.call([str(PY), "-m", "pytest", *rest], cwd=ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
