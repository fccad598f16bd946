"""Diehl & Cook (2015) side by side: snnrun's compiled kernel vs BindsNET 0.3.4's DiehlAndCook2015.

Same data (mnist_6k), same N, 250 steps at dt = 1 ms, batch 1, learning on. Training throughput is
measured in alternating chunks (snnrun chunk, BindsNET chunk, ...) in this one process so both see
the same machine load; the ratio of their rates is the figure to quote. Optionally (``--accuracy``)
also runs snnrun's full protocol (5000 train, 1000 test) and reports its test accuracy.

    .venv/bin/python scripts/bench_diehl_cook.py --neurons 100 --chunks 4 --chunk-size 25 --accuracy

BindsNET is optional (``pip install --no-deps bindsnet==0.3.4`` plus tensorboardX, etc.); its
torchvision import (unused here, and broken beside torch 2.13) is stubbed out.

Brian2 (2.9.0, cython code generation) runs the same network in a worker process: one
``Network.run`` per chunk over many samples, the rates of each sample from a ``TimedArray`` and a
``NetworkOperation`` at every sample start that resets the state and normalises the weights.
Brian2 2.9.0 needs numpy < 2.4, so it usually lives in its own environment, given with
``--brian2-python`` (the worker imports only numpy and brian2)::

    python3.11 -m venv /tmp/b2venv && /tmp/b2venv/bin/pip install brian2==2.9.0 "numpy<2.4" cython setuptools
    .venv/bin/python scripts/bench_diehl_cook.py --brian2-python /tmp/b2venv/bin/python

The Brian2 model: exc ``dv/dt = (v_rest − v)/100 ms`` (exact), threshold ``v > v_th + θ``, reset
``v ← v_reset, θ += θ+``, 5 ms refractory (input ignored while refractory); inh LIF 10 ms, 2 ms
refractory; input→exc ``v += w`` with nearest-spike PostPre STDP (pre: ``w −= 1e-4·x_post``, post:
``w += 1e-2·x_pre``, clipped to [0, 1], τ 20 ms), exc→inh one-to-one 22.5 mV, inh→exc −60 mV to
every other exc neuron one step later; weights normalised to 78.4 per neuron and v, traces reset
before each sample. Unlike snnrun's default it has no ``one_spike`` restriction and no
input-rate boost (neither changes the per-step work much).
"""

from __future__ import annotations

import argparse
import os
import json
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np

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
    import torch

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
    import torch
    from conftest import compose_config
    from snnrun.build import build_experiment
    from snnrun.tasks.diehl_cook import DiehlCookNetwork, DiehlCookParams, _present, encode

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


def brian2_network(n_neurons: int, images: np.ndarray, rate: float, steps: int, seed: int = 0):
    """Build the Brian2 model (module docstring); returns ``run(count) -> seconds`` and the exc group."""
    import brian2 as b2
    from brian2 import Hz, mV, ms

    b2.prefs.codegen.target = "cython"
    b2.defaultclock.dt = 1 * ms
    b2.seed(seed)
    period = steps * ms
    stim = b2.TimedArray(images.reshape(len(images), -1).astype(float) / 255.0 * rate * Hz, dt=period)
    inp = b2.PoissonGroup(stim.values.shape[1], rates="stim(t, i)")
    exc = b2.NeuronGroup(n_neurons, """dv/dt = (-65*mV - v) / (100*ms) : volt (unless refractory)
                                       dtheta/dt = -theta / (1e7*ms) : volt""",
                         threshold="v > -52*mV + theta", reset="v = -60*mV; theta += theta_plus",
                         refractory=5 * ms, method="exact")
    inh = b2.NeuronGroup(n_neurons, "dv/dt = (-60*mV - v) / (10*ms) : volt (unless refractory)",
                         threshold="v > -40*mV", reset="v = -45*mV", refractory=2 * ms, method="exact")
    syn = b2.Synapses(inp, exc, """w : 1
                                   dxpre/dt = -xpre / (20*ms) : 1 (event-driven)
                                   dxpost/dt = -xpost / (20*ms) : 1 (event-driven)""",
                      on_pre="""v_post += w * mV * int(not_refractory_post)
                                xpre = 1
                                w = clip(w - 1e-4 * xpost, 0, 1)""",
                      on_post="""xpost = 1
                                 w = clip(w + 1e-2 * xpre, 0, 1)""")
    syn.connect()
    syn.w = "0.3 * rand()"
    ei = b2.Synapses(exc, inh, on_pre="v_post += 22.5 * mV * int(not_refractory_post)")
    ei.connect(j="i")
    ie = b2.Synapses(inh, exc, on_pre="v_post += -60 * mV * int(not_refractory_post)", delay=1 * ms)
    ie.connect(condition="i != j")
    post = np.asarray(syn.j[:])

    def sample_start():
        w = np.asarray(syn.w[:])
        sums = np.bincount(post, weights=w, minlength=n_neurons)
        syn.w[:] = w * (78.4 / np.where(sums == 0, 1.0, sums))[post]
        syn.xpre[:] = 0
        syn.xpost[:] = 0
        exc.v = -65 * mV
        inh.v = -60 * mV

    spikes = b2.SpikeMonitor(exc, record=False)
    net = b2.Network(inp, exc, inh, syn, ei, ie, spikes, b2.NetworkOperation(sample_start, dt=period, when="start"))
    namespace = {"stim": stim, "theta_plus": 0.1 * mV}

    def run(count: int) -> float:
        start = time.perf_counter()
        net.run(count * period, namespace=namespace)
        return time.perf_counter() - start

    return run, spikes


def brian2_worker(args) -> None:
    """``--brian2-worker``: build the Brian2 model, then answer ``N`` lines on stdin with the seconds
    ``Network.run`` took for N samples (and the exc spikes so far), one JSON line each."""
    run, spikes = brian2_network(args.neurons, np.load(args.data)["x_train"], args.rate, 250)
    for line in sys.stdin:
        seconds = run(int(line))
        print(json.dumps({"seconds": seconds, "exc_spikes": int(spikes.num_spikes)}), flush=True)


class Brian2Client:
    """Drives a ``--brian2-worker`` process (possibly another Python with brian2 installed)."""

    def __init__(self, python: str, args):
        self.proc = subprocess.Popen([python, __file__, "--brian2-worker", "--neurons", str(args.neurons),
                                      "--data", args.data, "--rate", str(args.rate)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.exc_spikes = 0
        self.samples = 0

    def __call__(self, count: int) -> float:
        self.proc.stdin.write(f"{count}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("brian2 worker exited (see its error above)")
        reply = json.loads(line)
        self.exc_spikes = reply["exc_spikes"]
        self.samples += count
        return reply["seconds"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("SNNRUN_MNIST_NPZ", "mnist_6k.npz"))
    ap.add_argument("--neurons", type=int, default=100)
    ap.add_argument("--chunks", type=int, default=4, help="alternations")
    ap.add_argument("--chunk-size", type=int, default=25, help="BindsNET samples per chunk")
    ap.add_argument("--snnrun-factor", type=int, default=10, help="snnrun samples per chunk = factor x chunk-size")
    ap.add_argument("--rate", type=float, default=63.75, help="Hz at pixel 255")
    ap.add_argument("--accuracy", action="store_true", help="also run snnrun's full 5000/1000 protocol")
    ap.add_argument("--brian2-python", default=None,
                    help="Python with brian2 (+ numpy < 2.4) to run the Brian2 model in; 'no' to skip "
                         "(default: this interpreter when it can import brian2)")
    ap.add_argument("--brian2-factor", type=int, default=3, help="Brian2 samples per chunk = factor x chunk-size")
    ap.add_argument("--brian2-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.brian2_worker:
        brian2_worker(args)
        return
    import torch

    torch.set_num_threads(1)
    images = np.load(args.data)["x_train"]
    runners = {"snnrun": snnrun_runner(args.neurons, images)}
    try:
        runners["bindsnet"] = bindsnet_runner(args.neurons, images, args.rate, 250)
    except Exception as err:  # noqa: BLE001
        print(f"bindsnet unavailable ({type(err).__name__}: {err}); measuring snnrun only")
    brian2 = None
    python = args.brian2_python
    if python is None:
        import importlib.util

        python = sys.executable if importlib.util.find_spec("brian2") is not None else "no"
    if python != "no":
        brian2 = Brian2Client(python, args)
    sizes = {"snnrun": args.chunk_size * args.snnrun_factor, "bindsnet": args.chunk_size,
             "brian2": args.chunk_size * args.brian2_factor}
    for name, run in runners.items():  # warm-up (kernel compile, first allocations)
        run(2)
    if brian2 is not None:
        try:
            brian2(2)  # code generation and compilation (cached by Brian2 afterwards)
            runners["brian2"] = brian2
        except RuntimeError as err:
            print(f"brian2 unavailable ({err}); measuring without it")
            brian2 = None
    totals = {n: [0, 0.0] for n in runners}
    for _ in range(args.chunks):
        for name, run in runners.items():
            start = time.perf_counter()
            seconds = run(sizes[name])
            totals[name][0] += sizes[name]
            totals[name][1] += seconds if name == "brian2" else time.perf_counter() - start
    result = {"neurons": args.neurons, "threads": 1}
    for name, (count, seconds) in totals.items():
        result[f"{name}_samples_per_s"] = count / seconds
    for peer in ("bindsnet", "brian2"):
        if peer in totals:
            result[f"speedup_vs_{peer}"] = result["snnrun_samples_per_s"] / result[f"{peer}_samples_per_s"]
    if brian2 is not None:
        result["brian2_exc_spikes_per_sample"] = brian2.exc_spikes / brian2.samples
        brian2.close()
    if args.accuracy:
        from conftest import compose_config
        from snnrun.build import build_experiment
        from snnrun.tasks.diehl_cook import DiehlCookParams, run_diehl_cook

        overrides = ["experiment=diehl_cook", f"data.path={args.data}"] + ([] if args.neurons == 100 else [
            f"network.populations.exc.shape={args.neurons}", f"network.populations.inh.shape={args.neurons}"])
        summary = run_diehl_cook(build_experiment(compose_config(overrides)), DiehlCookParams(backend="cpp"))
        result.update({k: summary[k] for k in ("test/accuracy_all", "test/accuracy_proportion", "train_samples_per_s")})
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
