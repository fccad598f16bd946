"""How the compiled step engine scales: steps/s against neurons (100 … 10,000) and synapses
(10^4 … 10^7), and where the time goes.

The network: ``n_in`` Poisson inputs (``--rate`` spikes per step) -> dense -> ``N`` LIF neurons
(τ_m = 5 ms, dt = 1 ms; weights uniform in [0, 2·gain/(n_in·rate)], so the mean input current is
``gain`` thresholds) with pair STDP (all-to-all traces, multiplicative bounds [0, 2·gain/(n_in·rate)])
on that projection; batch 1, float64, T = ``--steps``. Each grid point is timed three ways on the
same trains (after one untimed sample):

- ``learn``: learning on (the run a D&C training pass does);
- ``frozen``: learning off;
- ``idle``: learning off, no input spike (neuron updates and the step loop alone).

So ``idle`` is the neurons' share, ``frozen − idle`` the synaptic propagation (the rows of the
inputs that spiked, added event by event) and ``learn − frozen`` the STDP updates (rows of the
inputs and columns of the neurons that spiked, and every weight once at the first step). Prints a
Markdown table; run it on an otherwise idle machine::

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_engine_scaling.py
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_step_engine import base  # noqa: E402
from snnrun.build import build_experiment  # noqa: E402
from snnrun.engine import CompiledNetwork  # noqa: E402

GRID = [(n_in, n) for n_in in (100, 1000) for n in (100, 1000, 10000)]


def config(n_in: int, neurons: int, steps: int, rate: float, gain: float) -> dict:
    cfg = base(100, steps)
    high = 2.0 * gain / (n_in * rate)
    cfg["data"]["features"] = n_in
    cfg["network"] = {"dt": 1.0, "duration": float(steps), "mode": "auto", "output": "exc", "populations": {
        "inp": {"shape": None},
        "exc": {"shape": neurons, "neuron": {"name": "lif", "tau_m": 5.0}}},
        "projections": {"inp_exc": {"from": "inp", "to": "exc", "synapse": {
            "name": "dense", "init": "uniform", "low": 0.0, "high": high, "w_min": 0.0, "w_max": high}}}}
    cfg["learner"] = {"name": "stdp", "trainable": ["inp_exc"], "lr": [0.001, 0.001], "w_min": 0.0, "w_max": high,
                      "weight_dependence": "multiplicative", "mode": "all_to_all"}
    return cfg


def seconds_per_sample(model: CompiledNetwork, trains: list[torch.Tensor], learn: bool) -> float:
    model.sample(trains[0], learn)  # untimed: first allocations
    start = time.perf_counter()
    for x in trains:
        model.sample(x, learn)
    return (time.perf_counter() - start) / len(trains)


def point(n_in: int, neurons: int, args) -> dict:
    exp = build_experiment(copy.deepcopy(config(n_in, neurons, args.steps, args.rate, args.gain)))
    model = CompiledNetwork(exp.network.double(), exp.learners, "compiled")
    g = torch.Generator().manual_seed(0)
    weights = n_in * neurons
    count = max(2, min(args.samples, int(args.budget / (weights * args.steps * 2e-9 + neurons * args.steps * 5e-9))))
    trains = [torch.rand(args.steps, n_in, generator=g) < args.rate for _ in range(count)]
    silent = [torch.zeros(args.steps, n_in, dtype=torch.bool)] * count
    spikes = sum(int(model.sample(x, False).sum()) for x in trains[:2]) / (2 * args.steps * neurons)
    times = {"learn": seconds_per_sample(model, trains, True), "frozen": seconds_per_sample(model, trains, False),
             "idle": seconds_per_sample(model, silent, False)}
    return {"n_in": n_in, "neurons": neurons, "synapses": weights, "samples": count, "rate": spikes, **times}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rate", type=float, default=0.02, help="input spike probability per step")
    parser.add_argument("--gain", type=float, default=1.2, help="mean input current in thresholds")
    parser.add_argument("--samples", type=int, default=50, help="most timed samples per point")
    parser.add_argument("--budget", type=float, default=2.0, help="rough seconds per timing")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"{date.today()}, {os.cpu_count()} cores {platform.machine()}, Python {platform.python_version()}, "
          f"torch {torch.__version__}, one thread; T = {args.steps}, input rate {args.rate}/step")
    print()
    print("| inputs | neurons | synapses | steps/s (learning) | steps/s (frozen) | neuron updates | propagation "
          "| STDP | output spikes/neuron/step |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n_in, neurons in GRID:
        r = point(n_in, neurons, args)
        learn, frozen, idle = r["learn"], r["frozen"], r["idle"]
        share = {"neurons": idle / learn, "propagation": max(frozen - idle, 0.0) / learn,
                 "stdp": max(learn - frozen, 0.0) / learn}
        print(f"| {n_in} | {neurons} | {r['synapses']:.0e} | {args.steps / learn:,.0f} | {args.steps / frozen:,.0f} "
              f"| {share['neurons']:.0%} | {share['propagation']:.0%} | {share['stdp']:.0%} | {r['rate']:.3f} |",
              flush=True)


if __name__ == "__main__":
    main()
