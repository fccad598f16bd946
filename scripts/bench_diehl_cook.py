"""Diehl & Cook (2015) side by side: snnrun's compiled kernel vs BindsNET 0.3.4's DiehlAndCook2015.

Same data (mnist_6k), same N, 250 steps at dt = 1 ms, batch 1, learning on. Training throughput is
measured in alternating chunks (snnrun chunk, BindsNET chunk, ...) in this one process so both see
the same machine load; the ratio of their rates is the figure to quote. Optionally (``--accuracy``)
also runs snnrun's full protocol (5000 train, 1000 test) and reports its test accuracy.

    .venv/bin/python scripts/bench_diehl_cook.py --neurons 100 --chunks 4 --chunk-size 25 --accuracy

BindsNET is optional (``pip install --no-deps bindsnet==0.3.4`` plus tensorboardX, etc.); its
torchvision import (unused here, and broken beside torch 2.13) is stubbed out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def stub_torchvision() -> None:
    """BindsNET imports torchvision, cv2, gymnasium... at package import time for parts we do not use."""
    class _Any(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            if name[:1].isupper():  # classes (BindsNET subclasses some dataset classes at import time)
                return type(name, (), {"__init__": lambda self, *a, **k: None})
            return _Any(f"{self.__name__}.{name}")

        def __call__(self, *a, **k):
            return None

    import importlib.util

    for name in ("torchvision", "torchvision.transforms", "torchvision.datasets", "torchvision.utils",
                 "torchvision.datasets.utils", "torchvision.transforms.functional", "cv2", "ale_py", "gymnasium",
                 "gymnasium.spaces", "tensorboardX"):
        top = name.split(".")[0]
        if top == "torchvision" or isinstance(sys.modules.get(top), _Any) or importlib.util.find_spec(top) is None:
            sys.modules.setdefault(name, _Any(name))


def bindsnet_runner(n_neurons: int, images: np.ndarray, rate: float, steps: int):
    stub_torchvision()
    from bindsnet.encoding import PoissonEncoder
    from bindsnet.models import DiehlAndCook2015

    torch.manual_seed(0)
    net = DiehlAndCook2015(n_inpt=784, n_neurons=n_neurons, exc=22.5, inh=17.5, dt=1.0, norm=78.4,
                           theta_plus=0.05, inpt_shape=(1, 28, 28))
    encoder = PoissonEncoder(time=steps, dt=1.0)
    state = {"i": 0}

    def run(count: int) -> None:
        for _ in range(count):
            img = torch.as_tensor(images[state["i"] % len(images)], dtype=torch.float32) / 255.0 * rate
            state["i"] += 1
            spikes = encoder(img.reshape(1, 28, 28))
            net.run(inputs={"X": spikes.reshape(steps, 1, 1, 28, 28)}, time=steps, input_time_dim=1)
            net.reset_state_variables()

    return run


def snnrun_runner(n_neurons: int, images: np.ndarray):
    from conftest import compose_config
    from snnrun.build import build_experiment
    from snnrun.learning.diehl_cook import DiehlCookNetwork, DiehlCookParams, _present, encode

    overrides = ["experiment=diehl_cook"] + ([] if n_neurons == 100 else [
        f"network.populations.exc.shape={n_neurons}", f"network.populations.inh.shape={n_neurons}"])
    exp = build_experiment(compose_config(overrides))
    p = DiehlCookParams()
    model = DiehlCookNetwork(exp, "cpp", p.one_spike)
    x = torch.as_tensor(images.reshape(len(images), -1), dtype=torch.float64) / 255.0
    state = {"i": 0}

    def run(count: int) -> None:
        idx = [(state["i"] + k) % len(x) for k in range(count)]
        state["i"] += count
        spikes = encode(exp.encoder, x[idx])
        for j, i in enumerate(idx):
            _present(model, exp.encoder, x[i], spikes[j], True, p)

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "mnist_6k.npz"))
    ap.add_argument("--neurons", type=int, default=100)
    ap.add_argument("--chunks", type=int, default=4, help="alternations")
    ap.add_argument("--chunk-size", type=int, default=25, help="BindsNET samples per chunk")
    ap.add_argument("--snnrun-factor", type=int, default=10, help="snnrun samples per chunk = factor x chunk-size")
    ap.add_argument("--rate", type=float, default=63.75, help="Hz at pixel 255")
    ap.add_argument("--accuracy", action="store_true", help="also run snnrun's full 5000/1000 protocol")
    args = ap.parse_args()
    torch.set_num_threads(1)
    images = np.load(args.data)["x_train"]
    runners = {"snnrun": snnrun_runner(args.neurons, images)}
    try:
        runners["bindsnet"] = bindsnet_runner(args.neurons, images, args.rate, 250)
    except Exception as err:  # noqa: BLE001
        print(f"bindsnet unavailable ({type(err).__name__}: {err}); measuring snnrun only")
    sizes = {"snnrun": args.chunk_size * args.snnrun_factor, "bindsnet": args.chunk_size}
    for name, run in runners.items():  # warm-up (kernel compile, first allocations)
        run(2)
    totals = {n: [0, 0.0] for n in runners}
    for _ in range(args.chunks):
        for name, run in runners.items():
            start = time.perf_counter()
            run(sizes[name])
            totals[name][0] += sizes[name]
            totals[name][1] += time.perf_counter() - start
    result = {"neurons": args.neurons, "threads": 1}
    for name, (count, seconds) in totals.items():
        result[f"{name}_samples_per_s"] = count / seconds
    if "bindsnet" in totals:
        result["speedup_vs_bindsnet"] = result["snnrun_samples_per_s"] / result["bindsnet_samples_per_s"]
    if args.accuracy:
        from conftest import compose_config
        from snnrun.build import build_experiment
        from snnrun.learning.diehl_cook import DiehlCookParams, run_diehl_cook

        overrides = ["experiment=diehl_cook", f"data.path={args.data}"] + ([] if args.neurons == 100 else [
            f"network.populations.exc.shape={args.neurons}", f"network.populations.inh.shape={args.neurons}"])
        summary = run_diehl_cook(build_experiment(compose_config(overrides)), DiehlCookParams(backend="cpp"))
        result.update({k: summary[k] for k in ("test/accuracy_all", "test/accuracy_proportion", "train_samples_per_s")})
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
