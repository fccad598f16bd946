"""Training/inference throughput of snnrun vs spikingjelly on the identical network.

784 -> H LIF -> 10 LIF (tau_m = 2 ms, dt = 1 ms, forward Euler, hard reset to 0,
threshold 1, sigmoid surrogate alpha = 4), Bernoulli rate input, cross-entropy on
spike counts, Adam, full forward + backward + step. Same initial weights and the
same input for both systems; the script checks identical output spike counts,
then alternates timed runs (A B A B ...) and reports medians and the ratio.

Usage: .venv/bin/python scripts/bench_peers.py --T 25 --batch 128 --reps 7
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from snnrun.network import build_network
from snnrun.surrogate import Sigmoid


def snnrun_net(hidden: int, T: int):
    node = {"dt": 1.0, "duration": float(T), "mode": "auto", "output": "out",
            "populations": {"inp": {"shape": 784}, "hidden": {"shape": hidden}, "out": {"shape": 10}},
            "projections": {"a": {"from": "inp", "to": "hidden", "synapse": {"name": "dense", "gain": 8.0}},
                            "b": {"from": "hidden", "to": "out", "synapse": {"name": "dense", "gain": 8.0}}}}
    neuron = {"name": "lif", "tau_m": 2.0, "v_th": 1.0, "v_reset": 0.0, "v_rest": 0.0}
    net = build_network(node, neuron, (784,), spike_fn=Sigmoid(Sigmoid.Params(alpha=4.0)))

    def run(x):
        net.reset()
        return net(x).spikes["out"]
    return net, run, [net.projections["a"], net.projections["b"]]


def jelly_net(hidden: int):
    from spikingjelly.activation_based import functional, layer, neuron, surrogate
    net = torch.nn.Sequential(
        layer.Linear(784, hidden, bias=False), neuron.LIFNode(tau=2.0, surrogate_function=surrogate.Sigmoid(alpha=4.0)),
        layer.Linear(hidden, 10, bias=False), neuron.LIFNode(tau=2.0, surrogate_function=surrogate.Sigmoid(alpha=4.0)))
    functional.set_step_mode(net, "m")

    def run(x):
        functional.reset_net(net)
        return net(x)
    return net, run, [net[0], net[2]]


def copy_weights(src, dst):
    with torch.no_grad():
        for a, b in zip(src, dst):
            wa = a.weight if hasattr(a, "weight") else next(a.parameters())
            wb = b.weight if hasattr(b, "weight") else next(b.parameters())
            wb.copy_(wa)


def timed(run, params, x, y, train: bool, iters: int) -> float:
    opt = torch.optim.Adam(params, lr=1e-3)
    t0 = 0.0
    for i in range(iters + 1):  # the first iteration is an untimed warm-up
        if i == 1:
            t0 = time.perf_counter()
        if train:
            out = run(x).sum(0)
            loss = torch.nn.functional.cross_entropy(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        else:
            with torch.no_grad():
                run(x)
    return x.shape[1] * iters / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--T", type=int, default=25)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--iters", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    s_net, s_run, s_layers = snnrun_net(args.hidden, args.T)
    j_net, j_run, j_layers = jelly_net(args.hidden)
    # snnrun Dense weight is [out, in] like nn.Linear
    copy_weights([p.stages[0] if hasattr(p, "stages") else p for p in s_layers], j_layers)
    x = (torch.rand(args.T, args.batch, 784) < 0.13).float()
    y = torch.randint(0, 10, (args.batch,))
    with torch.no_grad():
        cs, cj = s_run(x).sum(0), j_run(x).sum(0)
    print(f"same spike counts: {torch.equal(cs, cj)} (total {int(cs.sum())})")
    systems = {"snnrun": (s_run, list(s_net.parameters())), "spikingjelly": (j_run, list(j_net.parameters()))}
    for mode in ("train", "infer"):
        res = {k: [] for k in systems}
        for _ in range(args.reps):
            for name, (run, params) in systems.items():
                res[name].append(timed(run, params, x, y, mode == "train", args.iters))
        med = {k: statistics.median(v) for k, v in res.items()}
        print(f"{mode} T={args.T} B={args.batch} H={args.hidden}: "
              + ", ".join(f"{k} {v:.0f} samples/s" for k, v in med.items())
              + f"; ratio snnrun/spikingjelly {med['snnrun'] / med['spikingjelly']:.2f}")


if __name__ == "__main__":
    main()
