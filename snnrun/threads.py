"""How many intra-op threads a run uses: ``trainer.threads`` (``auto`` or a number).

``auto`` takes the smallest of three limits:

- the cores this process may run on (``os.sched_getaffinity``), divided among the jobs a parallel
  Hydra launcher runs at once (``hydra.launcher.n_jobs`` of the joblib launcher, or the array
  parallelism of submitit), so a sweep never oversubscribes the machine;
- the cores left idle by other processes: the idle share of the CPU time over a 50 ms sample of
  ``/proc/stat`` (where there is none, the cores minus the one-minute load average), rounded;
- what the work can use: one thread per ``WORK_PER_THREAD`` synaptic multiply-accumulates per
  simulated step of a batch (the sum over weighted projections of weights × batch size). Below
  that a second thread costs more in synchronisation than it saves (``scripts/bench_threads.py``).

An ``OMP_NUM_THREADS`` set in the environment is honoured as torch honours it: ``auto`` then keeps
torch's count. The count in force is restored when the run ends (:func:`policy`), so a process
that runs several experiments in turn is left as it was.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from typing import Any, Iterator

import torch

#: synaptic multiply-accumulates per simulated step and batch that make a second thread worth it
WORK_PER_THREAD = 4e6


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all CPUs since boot, from ``/proc/stat`` (None where it does not exist)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields[:8])


def busy_cores(sample_s: float = 0.05) -> float:
    """How many cores other processes keep busy now: the machine's busy CPU share over ``sample_s``
    seconds times its core count (``/proc/stat``), or the one-minute load average where there is no
    ``/proc/stat`` (0 where neither exists). The load average lags a minute behind: a job that just
    ended still counts there."""
    first = _cpu_times()
    if first is not None:
        time.sleep(sample_s)
        second = _cpu_times()
        total = second[1] - first[1]
        if total > 0:
            return (1.0 - (second[0] - first[0]) / total) * (os.cpu_count() or 1)
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def idle_cores(cores: int) -> int:
    """``cores`` minus the cores other processes keep busy (:func:`busy_cores`), rounded; at least 1."""
    return max(1, min(cores, int(math.floor(cores - busy_cores() + 0.5))))


def parallel_jobs() -> int:
    """Jobs a parallel Hydra launcher runs at once beside this one (1 outside a multirun)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return 1
        hydra = HydraConfig.get()
        if hydra.mode is None or hydra.mode.name != "MULTIRUN":
            return 1
        launcher = hydra.get("launcher") or {}
    except Exception:  # noqa: BLE001 - no Hydra context: a plain process
        return 1
    for key in ("n_jobs", "array_parallelism", "tasks_per_node"):
        value = launcher.get(key)
        if isinstance(value, int) and value > 1:
            return value
        if isinstance(value, int) and value == -1:  # joblib: one job per core
            return usable_cores()
    return 1


def synaptic_work(network: Any, batch_size: int) -> float:
    """Multiply-accumulates of one simulated step of a batch: weights × batch size, summed."""
    weights = sum(p.numel() for proj in network.projections.values() for name, p in proj.named_parameters()
                  if name.endswith("weight"))
    return float(weights) * batch_size


def choose(setting: int | str, work: float | None = None) -> tuple[int, str]:
    """(threads, why) for ``trainer.threads`` = ``setting`` and ``work`` (:func:`synaptic_work`;
    None: unknown, not a limit)."""
    if setting != "auto":
        return int(setting), "trainer.threads"
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads(), "OMP_NUM_THREADS"
    jobs = parallel_jobs()
    cores = max(1, usable_cores() // jobs)
    limits = {"cores" + (f" / {jobs} parallel jobs" if jobs > 1 else ""): cores, "idle cores": idle_cores(cores)}
    if work is not None:
        limits["work size"] = max(1, math.ceil(work / WORK_PER_THREAD))
    threads = min(limits.values())
    return threads, "auto: min(" + ", ".join(f"{name} {value}" for name, value in limits.items()) + ")"


@contextlib.contextmanager
def policy(setting: int | str, work: float | None = None) -> Iterator[tuple[int, str]]:
    """Run the body with the chosen intra-op thread count; restore the previous one afterwards."""
    before = torch.get_num_threads()
    threads, why = choose(setting, work)
    torch.set_num_threads(threads)
    try:
        yield threads, why
    finally:
        torch.set_num_threads(before)
