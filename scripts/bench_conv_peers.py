"""A convolutional SNN on a static (non-spiking) image: snnrun vs spikingjelly and snntorch.

conv 16×3×3 (pad 1) → LIF → maxpool 2 → conv 32×3×3 (pad 1) → LIF → maxpool 2 → dense 128 → LIF →
dense 10 → LIF, on a 1×28×28 analog image that is the same at every step (direct input), T steps,
batch B; cross-entropy on output spike counts, Adam, full forward + backward + step. The neurons are
those of scripts/bench_peers.py (τ_m = 2 ms, dt = 1 ms, v += dt/τ (−v + I), threshold 1, hard
reset to 0, sigmoid(4) surrogate); no bias, no batch norm.

- snnrun: the network from its config (``conv2d``, ``maxpool`` + ``conv2d``, ``maxpool`` +
  ``dense``, ``dense``) on the ``direct`` encoder's view of the image (one step, stride 0 over time:
  the first convolution runs once per sample);
- spikingjelly: multi-step ``layer.Conv2d`` / ``MaxPool2d`` / ``Linear`` and ``LIFNode`` (torch
  backend), its first convolution applied once and repeated over T, as its static-image CSNN
  example does;
- snntorch: ``nn.Conv2d`` / ``max_pool2d`` / ``nn.Linear`` and ``Leaky`` (β = 0.5, weights scaled
  by dt/τ = 0.5, ``reset_delay=False``) looped over the steps as its convolutional tutorial does.

Same weights and image for all; the output spike counts are compared first, then throughput
(samples/s; systems in a rotated order every repetition; medians) and, with ``--memory``, the
extra peak RSS of training (each system in its own subprocess, as scripts/bench_peers.py)::

    .venv/bin/python scripts/bench_conv_peers.py --threads 1 --reps 5
    .venv/bin/python scripts/bench_conv_peers.py --threads 1 --memory
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_peers import (MEMORY_ENV, against_peers, differing_counts, importable, median_memory,  # noqa: E402
                         median_throughput, print_training_memory)
from snnrun.encoders.rate import Direct  # noqa: E402
from snnrun.network import build_network  # noqa: E402
from snnrun.surrogate import Sigmoid  # noqa: E402

SHAPES = {"c1": (16, 1, 3, 3), "c2": (32, 16, 3, 3), "fc1": (128, 32 * 7 * 7), "fc2": (10, 128)}
GAINS = {"c1": 3.0, "c2": 5.0, "fc1": 6.0, "fc2": 6.0}


def problem(T: int, batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    weights = {}
    for name, shape in SHAPES.items():
        fan_in = shape[1] * (shape[2] * shape[3] if len(shape) == 4 else 1)
        weights[name] = (torch.rand(*shape, generator=g) * 2 - 1) * (GAINS[name] / fan_in ** 0.5)
    image = torch.rand(batch, 1, 28, 28, generator=g)
    x = Direct(Direct.Params(gain=1.0), dt=1.0, time_steps=T)(image)  # [T, B, 1, 28, 28], stride 0 over T
    y = torch.randint(0, 10, (batch,), generator=g)
    return weights, x, y


def snnrun_system(w, T):
    node = {"dt": 1.0, "duration": float(T), "output": "out",
            "populations": {"inp": {"shape": [1, 28, 28]}, "c1": {"shape": [16, 28, 28]},
                            "c2": {"shape": [32, 14, 14]}, "h": {"shape": 128}, "out": {"shape": 10}},
            "projections": {
                "a": {"from": "inp", "to": "c1", "synapse": {"name": "conv2d", "channels": 16, "kernel_size": 3,
                                                             "padding": 1}},
                "b": {"from": "c1", "to": "c2", "synapse": [{"name": "maxpool", "kernel_size": 2},
                                                            {"name": "conv2d", "channels": 32, "kernel_size": 3,
                                                             "padding": 1}]},
                "c": {"from": "c2", "to": "h", "synapse": [{"name": "maxpool", "kernel_size": 2},
                                                           {"name": "dense"}]},
                "d": {"from": "h", "to": "out", "synapse": {"name": "dense"}}}}
    neuron = {"name": "lif", "tau_m": 2.0, "v_th": 1.0, "v_reset": 0.0, "v_rest": 0.0}
    net = build_network(node, neuron, (1, 28, 28), spike_fn=Sigmoid(Sigmoid.Params(alpha=4.0)))
    with torch.no_grad():
        for proj, name in (("a", "c1"), ("b", "c2"), ("c", "fc1"), ("d", "fc2")):
            net.projections[proj].stages[-1].weight.copy_(w[name])

    def run(x):
        net.reset()
        return net(x).spikes["out"]
    return net, run


def spikingjelly_system(w, T):
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    def lif():
        return neuron.LIFNode(tau=2.0, surrogate_function=surrogate.Sigmoid(alpha=4.0))
    static = layer.Conv2d(1, 16, 3, padding=1, bias=False)
    net = torch.nn.Sequential(
        lif(), layer.MaxPool2d(2), layer.Conv2d(16, 32, 3, padding=1, bias=False), lif(), layer.MaxPool2d(2),
        layer.Flatten(), layer.Linear(32 * 7 * 7, 128, bias=False), lif(), layer.Linear(128, 10, bias=False), lif())
    functional.set_step_mode(net, "m")
    with torch.no_grad():
        static.weight.copy_(w["c1"])
        net[2].weight.copy_(w["c2"])
        net[6].weight.copy_(w["fc1"])
        net[8].weight.copy_(w["fc2"])
    modules = torch.nn.ModuleList([static, net])

    def run(x):
        functional.reset_net(net)
        return net(static(x[0]).unsqueeze(0).repeat(x.shape[0], 1, 1, 1, 1))
    return modules, run


def snntorch_system(w, T):
    import snntorch
    from snntorch import surrogate

    grad = surrogate.sigmoid(slope=4)
    conv1 = torch.nn.Conv2d(1, 16, 3, padding=1, bias=False)
    conv2 = torch.nn.Conv2d(16, 32, 3, padding=1, bias=False)
    fc1 = torch.nn.Linear(32 * 7 * 7, 128, bias=False)
    fc2 = torch.nn.Linear(128, 10, bias=False)
    lifs = [snntorch.Leaky(beta=0.5, spike_grad=grad, reset_mechanism="zero", reset_delay=False) for _ in range(4)]
    with torch.no_grad():  # Leaky: mem = β mem + input, β = 1 − dt/τ, input = dt/τ · W s
        for layer_, name in ((conv1, "c1"), (conv2, "c2"), (fc1, "fc1"), (fc2, "fc2")):
            layer_.weight.copy_(w[name] * 0.5)
    modules = torch.nn.ModuleList([conv1, conv2, fc1, fc2, *lifs])

    def run(x):
        mems = [lif.init_leaky() for lif in lifs]
        out = []
        for x_t in x.unbind(0):
            s1, mems[0] = lifs[0](conv1(x_t), mems[0])
            s2, mems[1] = lifs[1](conv2(F.max_pool2d(s1, 2)), mems[1])
            s3, mems[2] = lifs[2](fc1(F.max_pool2d(s2, 2).flatten(1)), mems[2])
            s4, mems[3] = lifs[3](fc2(s3), mems[3])
            out.append(s4)
        return torch.stack(out)
    return modules, run


BUILDERS = {"snnrun": snnrun_system, "spikingjelly": spikingjelly_system, "snntorch": snntorch_system}


PEERS = (("spikingjelly", "spikingjelly.activation_based.neuron"), ("snntorch", "snntorch"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    weights, x, y = problem(args.steps, args.batch)
    if args.child:  # one system's training memory, in its own process
        net, run = BUILDERS[args.child](weights, args.steps)
        print_training_memory(args.child, net, run, x, y, trim=False)
        return
    names = importable(PEERS)
    print(f"# torch {torch.__version__}, threads {args.threads}; T={args.steps} B={args.batch}, static 1x28x28 input")
    print(differing_counts(BUILDERS, names, weights, x, args.steps), flush=True)
    if args.memory:
        child = ["--steps", str(args.steps), "--batch", str(args.batch), "--threads", str(args.threads)]
        med = median_memory(__file__, names, child, MEMORY_ENV, 3)
        print("training memory (extra MiB, median of 3): " + against_peers(med, names[1:], min, "lowest"))
        return
    systems = {}
    for name in names:
        net, run = BUILDERS[name](weights, args.steps)
        systems[name] = (run, torch.optim.Adam(net.parameters(), lr=1e-3))
    for mode in ("train", "infer"):
        med = median_throughput(systems, names, x, y, mode == "train", args.reps, args.iters)
        print(f"{mode} (samples/s, median of {args.reps}): " + against_peers(med, names[1:]), flush=True)


if __name__ == "__main__":
    main()
