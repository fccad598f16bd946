"""Where an epoch of an experiment goes: the runner's own overhead vs the network's compute.

Runs ``snnrun`` in-process (same config, same code path as the CLI) with timers wrapped around
the runner's parts, without changing them:

- data: fetching batches (``next()`` on the batch iterator, including shuffling and device copies)
- encode: the encoder
- compute: network forward, decoder, loss, backward, optimizer step and weight constraints
  (the rest of the batch loop, measured as epoch time minus every other part)
- metrics: loss/accuracy/rate bookkeeping, spike metrics (including the SynOps counter's forward
  hooks, which run inside the network's forward) and monitors (``Instruments``), metric sinks and
  the epoch's log line
- checkpoint: the finite-values check of weights and states before it, collecting and
  serialising the runner's state, and the writes of ``last.pt`` / ``best.pt`` (on a background
  thread: what counts is the time the loop waits for them)

and prints each part's share of the epoch time (train + test evaluation + checkpoint + logging).

Usage: .venv/bin/python scripts/profile_runner.py [--detail] [hydra overrides ...]
  --detail also lists each timed function's share
  e.g. .venv/bin/python scripts/profile_runner.py trainer.epochs=10 seed=0
"""

from __future__ import annotations

import functools
import sys
import tempfile
import threading
import time
from collections import defaultdict

totals: dict[str, float] = defaultdict(float)
details: dict[str, float] = defaultdict(float)  # per wrapped function, outermost calls of its part only
active: set[str] = set()  # timers running now: nested calls of the same part count once


def timed(name: str, fn, label: str | None = None):
    label = f"{name}: {label or getattr(fn, '__qualname__', name)}"

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():  # background checkpoint writes overlap
            return fn(*args, **kwargs)  # the loop: only the time the loop itself spends counts
        if name in active or (name != "epoch" and "epoch" not in active):  # only inside epochs, outermost
            return fn(*args, **kwargs)
        active.add(name)
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent = time.perf_counter() - t0
            totals[name] += spent
            details[label] += spent
            active.discard(name)
    return wrapper


class TimedIterable:
    def __init__(self, inner):
        self.inner = inner

    def __len__(self):
        return len(self.inner)

    def __iter__(self):
        it = iter(self.inner)
        while True:
            t0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                return
            finally:
                totals["data"] += time.perf_counter() - t0
            yield item


def install() -> None:
    from snnrun import checkpoint, loggers, monitors, runner, spike_metrics

    R = runner.Runner
    original_batches = R._batches
    R._batches = lambda self, split: TimedIterable(original_batches(self, split))
    original_forward = R._forward

    def forward(self, x):
        enc = self.exp.encoder
        if not getattr(enc, "_profiled", False):
            enc.forward = timed("encode", enc.forward)
            enc._profiled = True
        return original_forward(self, x)
    R._forward = forward
    R._record = timed("metrics", R._record)  # loss, prediction, spike counts and the instruments of a batch
    R._summarise = timed("metrics", R._summarise)  # the epoch's accuracy, rates, confusion and columns
    hook = spike_metrics.SynOpsCounter._hook  # SynOps: forward hooks inside the network's forward
    spike_metrics.SynOpsCounter._hook = lambda self, *a: timed("metrics", hook(self, *a), "SynOps hooks")
    R._fit_epoch = timed("epoch", R._fit_epoch)
    for name in ("begin", "observe", "end", "after_epoch", "learner_batch"):
        if hasattr(monitors.Instruments, name):
            setattr(monitors.Instruments, name, timed("metrics", getattr(monitors.Instruments, name)))
    loggers.MetricLogger.log = timed("metrics", loggers.MetricLogger.log)
    checkpoint.save_rotating = timed("checkpoint", checkpoint.save_rotating)
    checkpoint.save = timed("checkpoint", checkpoint.save)
    checkpoint.save_copy = timed("checkpoint", checkpoint.save_copy)
    R.state_dict = timed("checkpoint", R.state_dict)
    checkpoint.serialize = timed("checkpoint", checkpoint.serialize)
    runner.find_nonfinite = timed("checkpoint", runner.find_nonfinite)  # the check before each checkpoint
    runner.log.info = timed("metrics", runner.log.info, "log line")  # the epoch's log line (console and snnrun.log)
    checkpoint.BackgroundWriter.submit = timed("checkpoint", checkpoint.BackgroundWriter.submit)


def main() -> None:
    detail = "--detail" in sys.argv[1:]
    overrides = [a for a in sys.argv[1:] if a != "--detail"]
    install()
    from snnrun import cli
    out = tempfile.mkdtemp(prefix="snnrun_profile_")
    t0 = time.perf_counter()
    cli.main(["trainer.progress=false", "plots=off", f"hydra.run.dir={out}", *overrides])
    wall = time.perf_counter() - t0
    epoch = totals["epoch"]
    parts = {k: totals[k] for k in ("data", "encode", "metrics", "checkpoint")}
    compute = epoch - sum(parts.values())
    print(f"profile ({' '.join(overrides) or 'default experiment'}): {epoch:.2f} s in epochs, {wall:.2f} s wall")
    for k, v in {**parts, "compute (network fwd/bwd, decoder, loss, optimizer)": compute}.items():
        print(f"  {k:55s} {v:7.3f} s  {100 * v / epoch:5.1f} %")
    overhead = sum(parts.values())
    print(f"  runner overhead (data + encode + metrics + checkpoint)  {overhead:7.3f} s  {100 * overhead / epoch:5.1f} %")
    if detail:  # each wrapped function's share (outermost calls of its part)
        for label, v in sorted(details.items(), key=lambda kv: -kv[1]):
            if not label.startswith("epoch"):
                print(f"    {label:53s} {v:7.3f} s  {100 * v / epoch:5.1f} %")


if __name__ == "__main__":
    main()
