"""Compiled fast paths: C++ kernels (``csrc/``) with torch reference paths that give the same
results; :mod:`snnrun.kernels.loader` builds them and decides which path runs."""

from __future__ import annotations

from .loader import (EXTENSIONS, Extension, KernelBuildError, cache_root, compiler, cpu_features,  # noqa: F401
                     report as _report, reset_usage, strict)
from . import loader


def all_kernels() -> dict[str, Extension]:
    """Every kernel, by name (importing each kernel module registers it)."""
    from . import bernoulli, hh, lif_scan, spike_linear, step_engine  # noqa: F401
    return EXTENSIONS


def report() -> dict:
    """Per kernel: whether it is built here and which path ran in this process; the CPU."""
    all_kernels()
    return _report()
