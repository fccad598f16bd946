"""Helpers of the task resume tests: a stop signal after a task's k-th checkpoint, and the scalars
a run wrote to TensorBoard."""

from __future__ import annotations

import signal
from pathlib import Path

from snnrun.services import RunServices


def stop_after_checkpoints(monkeypatch, k: int, sig: int = signal.SIGTERM) -> list[int]:
    """Send ``sig`` (a real signal, to this process) right after the ``k``-th checkpoint a task saves,
    as if the run were killed there; returns the positions of the checkpoints saved (all calls)."""
    saved: list[int] = []
    original = RunServices.checkpoint

    def checkpoint(self, position, state):
        original(self, position, state)
        saved.append(position)
        if len(saved) == k:
            signal.raise_signal(sig)  # StopSignals is installed while the task runs

    monkeypatch.setattr(RunServices, "checkpoint", checkpoint)
    return saved


def tensorboard_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` of the event files in ``run_dir/tb``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(Path(run_dir) / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
