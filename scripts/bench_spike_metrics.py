"""Cost of the per-batch spike metrics (SynOps hooks, per-neuron counts) on the default experiment.

Alternates training epochs with the metrics on and off in one process and prints the ratio of
the median epoch times:  .venv/bin/python scripts/bench_spike_metrics.py [repeats]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_module

from snnrun.build import build_experiment
from snnrun.runner import Runner


def main(repeats: int = 5) -> None:
    with initialize_config_module(config_module="snnrun.configs", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["trainer.progress=false", "device=cpu", "plots=off"])
    exp = build_experiment(cfg)
    runner = Runner(exp, Path(tempfile.mkdtemp()), "")
    metrics = runner.instruments.metrics
    times = {True: [], False: []}
    runner.run_epoch(train=True)  # warm-up
    for _ in range(repeats):
        for enabled in (True, False):
            metrics.params.enabled = enabled
            metrics.synops.active = enabled
            start = time.perf_counter()
            runner.run_epoch(train=True)
            times[enabled].append(time.perf_counter() - start)
    on, off = statistics.median(times[True]), statistics.median(times[False])
    print(f"train epoch: metrics on {on:.3f} s, off {off:.3f} s (medians of {repeats}); ratio on/off {on / off:.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
