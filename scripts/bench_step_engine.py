"""Throughput of the compiled step engine (snnrun.engine.CompiledNetwork, backend "compiled") vs the torch
reference path (Network stepped in Python, the learners called from step_hook), samples/s with learning
on, batch 1, float64, for the shipped Diehl & Cook network and variants:

- ``dc``: ``experiment=diehl_cook`` as shipped (postpre: nearest, traces_first, additive, w_norm);
- ``dc_adex`` / ``dc_alif``: its excitatory population as AdEx / ALIF neurons;
- ``dc_a2a_mult``: ``learner.mode=all_to_all learner.weight_dependence=multiplicative``;
- ``stacked``: two excitatory layers (inp -> exc1 <-> inh1 -> exc2 <-> inh2), STDP on both dense projections;
- ``ei_recurrent``: 80 % / 20 % excitatory/inhibitory LIF, recurrent E->E with STDP;
- ``conv_stdp``: a conv2d layer trained by STDP: the image [1, 28, 28] -> 16 channels of 5x5 kernels,
  stride 1 -> 16x24x24 LIF neurons with lateral inhibition (all-to-all STDP, hard bounds; ``--neurons``
  does not apply). No shipped config trains a convolution by STDP; this is the usual first layer of
  the convolutional STDP literature.

On MNIST trains every variant spikes (excitatory spikes per sample at N = 100: about 18 for the
shipped D&C, 15 for ``dc_alif``, 140 excitatory and 95 inhibitory for ``ei_recurrent``).

Inputs: Poisson trains of mnist_6k digits ($SNNRUN_MNIST_NPZ) at the experiment's rates when the file
exists, else random trains at ``--rate``. Each path runs the same trains; the table gives both rates and
their ratio. The machine should be otherwise idle (one thread: ``OMP_NUM_THREADS=1``)::

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_step_engine.py --samples 100 --reference-samples 10
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snnrun.build import build_experiment  # noqa: E402
from snnrun.engine import CompiledNetwork  # noqa: E402

N_IN = 784


def base(neurons: int, steps: int, *overrides: str) -> dict:
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="snnrun.configs", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["experiment=diehl_cook", f"network.duration={steps}",
                                                       f"network.populations.exc.shape={neurons}",
                                                       f"network.populations.inh.shape={neurons}", *overrides])
    GlobalHydra.instance().clear()
    cfg = OmegaConf.to_container(cfg)
    cfg["data"] = {"name": "synthetic", "features": N_IN, "classes": 10, "train_size": 10, "test_size": 10,
                   "batch_size": 1, "val_fraction": 0.0}
    cfg.pop("hydra", None)
    cfg["device"] = "cpu"
    return cfg


def variant(name: str, neurons: int, steps: int) -> dict:
    if name == "dc":
        return base(neurons, steps)
    if name == "dc_a2a_mult":
        return base(neurons, steps, "learner.mode=all_to_all", "learner.weight_dependence=multiplicative")
    if name == "dc_adex":
        cfg = base(neurons, steps)
        cfg["network"]["populations"]["exc"]["neuron"] = {"name": "adex", "refractory": 2.0}
        cfg["network"]["projections"]["inp_exc"]["synapse"].update(high=6.0, w_max=10.0)
        cfg["network"]["projections"]["inh_exc"]["synapse"]["weight"] = -5.0
        cfg["learner"].update(w_max=10.0, w_norm=300.0)
        return cfg
    if name == "dc_alif":
        cfg = base(neurons, steps)
        cfg["network"]["populations"]["exc"]["neuron"] = {"name": "alif", "tau_m": 10.0, "beta": 0.5, "tau_a": 50.0,
                                                          "refractory": 3.0}
        cfg["network"]["projections"]["inh_exc"]["synapse"]["weight"] = -1.0
        cfg["learner"].update(w_norm=75.0)  # about 15 excitatory spikes per MNIST sample, as the shipped D&C's 18
        return cfg
    if name == "stacked":
        cfg = base(neurons, steps)
        net = cfg["network"]
        pops, projs = net["populations"], net["projections"]
        pops["exc2"], pops["inh2"] = copy.deepcopy(pops["exc"]), copy.deepcopy(pops["inh"])
        projs["exc_exc2"] = {"from": "exc", "to": "exc2", "synapse": {"name": "dense", "init": "uniform", "low": 5.0,
                                                                       "high": 15.0, "w_min": 0.0, "w_max": 20.0}}
        projs["exc2_inh2"] = {"from": "exc2", "to": "inh2", "synapse": {"name": "one_to_one", "weight": 22.5}}
        projs["inh2_exc2"] = {"from": "inh2", "to": "exc2", "synapse": {"name": "lateral_inhibition", "weight": -30.0}}
        net["output"] = "exc2"
        cfg["learner"].update(trainable=["inp_exc", "exc_exc2"], w_norm=None, w_max=20.0)
        return cfg
    if name == "ei_recurrent":
        cfg = base(neurons, steps)
        n_exc, n_inh = int(round(0.8 * neurons)), neurons - int(round(0.8 * neurons))
        cfg["network"] = {"dt": 1.0, "duration": float(steps), "mode": "auto", "output": "exc", "populations": {
            "inp": {"shape": None},
            "exc": {"shape": n_exc, "neuron": {"name": "lif", "tau_m": 10.0, "refractory": 2.0}},
            "inh": {"shape": n_inh, "neuron": {"name": "lif", "tau_m": 5.0}}},
            "projections": {
                "inp_exc": {"from": "inp", "to": "exc", "synapse": {"name": "dense", "init": "uniform", "low": 0.0,
                                                                     "high": 0.25}},
                "exc_exc": {"from": "exc", "to": "exc", "synapse": {"name": "recurrent", "init": "uniform",
                                                                     "low": 0.0, "high": 0.02, "w_min": 0.0,
                                                                     "w_max": 0.1}},
                "exc_inh": {"from": "exc", "to": "inh", "synapse": {"name": "dense", "init": "uniform", "low": 0.0,
                                                                     "high": 0.8}},
                "inh_exc": {"from": "inh", "to": "exc", "synapse": {"name": "dense", "init": "uniform", "low": -0.3,
                                                                     "high": 0.0}}}}
        cfg["learner"] = {"name": "stdp", "trainable": ["exc_exc"], "lr": [0.001, 0.001], "w_min": 0.0, "w_max": 0.1,
                          "weight_dependence": "multiplicative", "mode": "all_to_all"}
        return cfg
    if name == "conv_stdp":
        cfg = base(neurons, steps)
        cfg["network"] = {"dt": 1.0, "duration": float(steps), "mode": "auto", "output": "conv", "populations": {
            "inp": {"shape": [1, 28, 28]},
            "conv": {"shape": [16, 24, 24], "neuron": {"name": "lif", "tau_m": 20.0, "refractory": 5.0}}},
            "projections": {
                "inp_conv": {"from": "inp", "to": "conv", "synapse": {
                    "name": "conv2d", "channels": 16, "kernel_size": 5, "stride": 1, "init": "uniform", "low": 0.0,
                    "high": 1.0, "w_min": 0.0, "w_max": 1.0}},
                "conv_conv": {"from": "conv", "to": "conv", "synapse": {"name": "lateral_inhibition",
                                                                        "weight": -0.05}}}}
        cfg["learner"] = {"name": "stdp", "trainable": ["inp_conv"], "lr": [0.0001, 0.001], "w_min": 0.0,
                          "w_max": 1.0, "mode": "all_to_all"}
        return cfg
    raise SystemExit(f"unknown variant {name!r}")


VARIANTS = ["dc", "dc_adex", "dc_alif", "dc_a2a_mult", "stacked", "ei_recurrent", "conv_stdp"]


def input_trains(count: int, steps: int, rate: float, seed: int) -> list[torch.Tensor]:
    """Poisson trains of mnist_6k digits at the D&C rates (pixel/4 Hz), else random at ``rate``/step."""
    g = torch.Generator().manual_seed(seed)
    path = os.environ.get("SNNRUN_MNIST_NPZ") or str(Path(__file__).resolve().parents[2] / "shared/data/mnist_6k.npz")
    if Path(path).is_file():
        import numpy as np

        data = np.load(path)
        key = "x_train" if "x_train" in data else list(data.keys())[0]
        x = torch.as_tensor(data[key][:count].reshape(count, -1), dtype=torch.float64)
        x = x / (255.0 if float(x.max()) > 1.5 else 1.0)
        prob = (x * 63.75 / 1000.0).clamp(0, 1)  # max rate 63.75 Hz at dt = 1 ms
        return [torch.rand(steps, N_IN, generator=g, dtype=torch.float64) < p for p in prob]
    return [torch.rand(steps, N_IN, generator=g) < rate for _ in range(count)]


def measure(cfg: dict, backend: str, trains: list[torch.Tensor]) -> float:
    exp = build_experiment(copy.deepcopy(cfg))
    model = CompiledNetwork(exp.network.double(), exp.learners, backend)
    if model.backend != backend:
        raise SystemExit(f"{backend} path not available: {model.reason}")
    model.sample(trains[0], True)  # warm-up (the build, first allocations)
    start = time.perf_counter()
    for x in trains:
        model.sample(x, True)
    return len(trains) / (time.perf_counter() - start)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100, help="learning samples timed on the engine")
    parser.add_argument("--reference-samples", type=int, default=10, help="learning samples timed on the torch path")
    parser.add_argument("--neurons", type=int, default=100, help="excitatory neurons (D&C N)")
    parser.add_argument("--steps", type=int, default=250, help="time steps per sample (dt = 1 ms)")
    parser.add_argument("--rate", type=float, default=0.01, help="spike probability per step without MNIST")
    parser.add_argument("--variants", nargs="*", default=VARIANTS, choices=VARIANTS)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the engine itself is serial)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    trains = input_trains(max(args.samples, args.reference_samples), args.steps, args.rate, 0)
    rows = []
    for name in args.variants:
        cfg = variant(name, args.neurons, args.steps)
        fast = measure(cfg, "compiled", trains[:args.samples])
        ref = measure(cfg, "reference", trains[:args.reference_samples])
        rows.append((name, fast, ref))
        print(f"{name:14s} engine {fast:9.1f}/s  reference {ref:8.2f}/s  x{fast / ref:7.1f}", flush=True)
    print()
    print(f"| variant | engine (samples/s) | torch reference (samples/s) | ratio |   N={args.neurons}, T={args.steps}")
    print("|---|---:|---:|---:|")
    for name, fast, ref in rows:
        print(f"| {name} | {fast:.1f} | {ref:.2f} | {fast / ref:.1f}x |")


if __name__ == "__main__":
    main()
