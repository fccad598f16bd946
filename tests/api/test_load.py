"""Load: a 10,000-step simulation over 100k synapses and a 20-job in-process sweep keep memory flat.

Resident memory is read from /proc/self/statm (Linux). The bounds are stated in the tests; a
leaked autograd graph, monitor buffer or per-job module would grow by far more than that.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

import pytest
import torch

from conftest import TINY, compose_config
from snnrun.build import build_experiment

STATM = Path("/proc/self/statm")
pytestmark = pytest.mark.skipif(not STATM.exists(), reason="needs Linux /proc/self/statm to read resident memory")


def rss_mb() -> float:
    """Resident memory in MB after glibc hands freed heap pages back (``malloc_trim``), so the
    figure follows live allocations rather than what the allocator keeps cached for reuse."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the bounds still hold, with the allocator's slack
        pass
    return int(STATM.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_long_simulation_does_not_grow(tmp_path):
    """316 Poisson inputs -> 316 LIF -> 4: 99,856 + 1,264 synapses, 10,000 steps of 1 ms, run five
    times (layer by layer over all steps); the fifth run may not hold more than 8 MB beyond the
    second (the input and hidden spike trains alone are 2 x 12.6 MB per run)."""
    cfg = compose_config([*TINY, "data.features=316", "network.populations.hidden.shape=316", "network.duration=10000",
                          "encoder.max_rate=200", "network.projections.inp_hidden.synapse.gain=15",
                          "network.init_rate=null"])
    exp = build_experiment(cfg)
    synapses = sum(p.numel() for n, p in exp.network.named_parameters() if n.endswith("weight"))
    assert synapses == 316 * 316 + 316 * 4
    x = exp.data.x_test[:1]
    used = []
    for _ in range(5):
        with torch.no_grad():
            exp.network.reset()
            out = exp.network(exp.encoder(x))
            steps, spikes = out.spikes["hidden"].shape[0], int(out.spikes["hidden"].sum())
        del out
        used.append(rss_mb())
    assert steps == 10_000 and spikes > 100_000
    print(f"10,000-step simulation ({spikes} hidden spikes), RSS after each run (MB): {[round(u, 1) for u in used]}")
    assert used[4] - used[1] < 8.0, used


def test_training_epochs_do_not_accumulate_graphs(tmp_path):
    """Six training epochs with gradients in one process: memory after epoch 6 within 8 MB of epoch 2."""
    from omegaconf import OmegaConf

    from snnrun.runner import Runner

    cfg = compose_config([*TINY, "monitors=off"])
    runner = Runner(build_experiment(cfg), tmp_path, OmegaConf.to_yaml(cfg))
    runner.generator.manual_seed(0)
    used = []
    for _ in range(6):
        runner.run_epoch(train=True)
        used.append(rss_mb())
    print(f"training epochs, RSS after each (MB): {[round(u, 1) for u in used]}")
    assert used[5] - used[1] < 8.0, used


def test_twenty_job_sweep_in_process_does_not_grow(tmp_path, monkeypatch):
    """Hydra's basic launcher runs the jobs in this process: after a 5-job warm-up sweep, a 20-job
    sweep may add at most 40 MB (each job builds an experiment, trains a batch, writes its files)."""
    from snnrun import cli

    monkeypatch.chdir(tmp_path)

    def sweep(seeds: int, name: str) -> None:
        monkeypatch.setattr(sys, "argv", ["snnrun"])
        cli.main(["-m", *TINY, "trainer.epochs=1", "trainer.limit_train_batches=2", "trainer.limit_test_batches=1",
                  "monitors=off", f"hydra.sweep.dir={tmp_path / name}", "seed=" + ",".join(map(str, range(seeds)))])

    sweep(5, "warmup")
    before = rss_mb()
    sweep(20, "sweep")
    after = rss_mb()
    jobs = sorted((tmp_path / "sweep").glob("*/summary.json"))
    assert len(jobs) == 20
    assert (tmp_path / "sweep" / "sweep_summary.csv").is_file()
    print(f"20-job sweep: RSS {before:.1f} MB after the warm-up sweep, {after:.1f} MB after 20 more jobs")
    assert after - before < 40.0, (before, after)
