"""Shared fixtures: compose configs through Hydra's compose API, tiny experiments."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

# A kernel that fails to build while a compiler is present fails the tests (snnrun.kernels.strict).
os.environ.setdefault("SNNRUN_STRICT_KERNELS", "1")

ROOT = Path(__file__).resolve().parents[1]
#: the MNIST subset (5000 train / 1000 test digits) where this checkout's machine keeps it; tests that
#: need it are skipped without it. The MNIST experiments read $SNNRUN_MNIST_NPZ (default ./mnist_6k.npz).
MNIST = Path(os.environ.get("SNNRUN_MNIST_NPZ") or ROOT.parent / "shared" / "data" / "mnist_6k.npz")
if MNIST.is_file():
    os.environ.setdefault("SNNRUN_MNIST_NPZ", str(MNIST))

#: overrides that make any classification experiment run in about a second
TINY = ["data=synthetic", "trainer.epochs=2", "optimizer.lr=0.05", "network.duration=8", "network.populations.hidden.shape=16",
        "trainer.progress=false", "device=cpu", "plots=off"]


def compose_config(overrides=(), config_name: str = "config"):
    """Compose the packaged config tree with ``overrides`` (Hydra compose API)."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module="snnrun.configs", version_base="1.3"):
            return compose(config_name=config_name, overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()


@pytest.fixture(autouse=True)
def _no_hydra_guard_left_behind():
    """A test that runs the CLI in-process installs snnrun's Hydra hooks; later tests compose
    without them."""
    yield
    from snnrun.targets import uninstall_hydra_guard
    uninstall_hydra_guard()


@pytest.fixture
def tiny_cfg():
    return lambda *extra: compose_config(TINY + list(extra))


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 120):
    """Run ``python -m snnrun ARGS`` in a subprocess; returns the CompletedProcess."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    if env and "HYDRA_FULL_ERROR" in env:
        full_env["HYDRA_FULL_ERROR"] = env["HYDRA_FULL_ERROR"]
    return subprocess.run([sys.executable, "-m", "snnrun", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def compiled(extension):
    """The compiled module of a kernel (``snnrun.kernels.Extension``). Skips only where no C++
    compiler exists; where one does, a failed build raises (strict mode) and fails the test."""
    from snnrun.kernels import compiler

    if compiler() is None:
        pytest.skip("no C++ compiler here: only the torch reference paths run")
    module = extension.load()
    assert module is not None, f"kernel {extension.name} did not build: {extension.error}"
    return module
