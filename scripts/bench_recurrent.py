"""Recurrent surrogate-gradient training, the SHD shape: snnrun vs spikingjelly and snntorch.

700 inputs -> 256 LIF with all-to-all recurrent weights -> 20 LIF, T = 100, B = 64 (the Spiking
Heidelberg Digits shape), binary input at ``--density`` (SHD's trains are sparse), cross-entropy on
output spike counts, Adam. The neurons are those of scripts/bench_peers.py (τ_m = 2 ms, dt = 1 ms,
v += dt/τ (−v + I), threshold 1, hard reset to 0, sigmoid(4) surrogate); the recurrent current is
the previous step's hidden spikes times W_rec.

- snnrun: the network from its config (``dense`` inp→rec, ``recurrent`` rec→rec, ``dense``
  rec→out; ``network.mode: auto``);
- spikingjelly: single-step ``LIFNode`` (torch backend) looped over time, ``Linear`` input and
  recurrent layers, as its recurrent examples write it;
- snntorch: ``RLeaky`` (``all_to_all``: its own recurrent ``Linear``) looped over time as its
  tutorials show, input and recurrent weights scaled by dt/τ = 0.5 (β = 0.5; an exact power-of-two
  scaling of the same weights), ``reset_delay=False`` (the reset in the step of the spike, as the
  others; snntorch's default zeroes the next step's whole update instead).

All start from the same weights and input; the output spike counts are compared first. Then
training and inference throughput (samples/s; every repetition runs the systems in a rotated order
so machine drift cancels; medians) and, with ``--memory``, the extra peak RSS of training, each
system in its own subprocess (as scripts/bench_peers.py measures it, with glibc's mmap threshold at
16 KiB so that the per-step [B, 256] tensors are returned to the OS when freed, and ``malloc_trim``
after the warm-up)::

    .venv/bin/python scripts/bench_recurrent.py --threads 1 --reps 5
    .venv/bin/python scripts/bench_recurrent.py --threads 1 --memory

``--recompute C`` adds snnrun with ``network.recompute_steps: C`` (chunks of C steps whose
activations the backward recomputes) as its own row, ``snnrun-recompute``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_peers import (MEMORY_ENV, against_peers, differing_counts, importable, median_memory,  # noqa: E402
                         median_throughput, print_training_memory)

#: the per-step tensors ([B, 256] float32: 64 KiB) get their own mappings too, so RSS follows them
RECURRENT_MEMORY_ENV = {**MEMORY_ENV, "MALLOC_MMAP_THRESHOLD_": "16384"}
from snnrun.network import build_network  # noqa: E402
from snnrun.surrogate import Sigmoid  # noqa: E402

N_IN, HIDDEN, N_OUT = 700, 256, 20


def problem(T: int, batch: int, density: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w_in = (torch.rand(HIDDEN, N_IN, generator=g) * 2 - 1) * (12.0 / N_IN ** 0.5)
    w_rec = (torch.rand(HIDDEN, HIDDEN, generator=g) * 2 - 1) * (2.0 / HIDDEN ** 0.5)
    w_out = (torch.rand(N_OUT, HIDDEN, generator=g) * 2 - 1) * (8.0 / HIDDEN ** 0.5)
    x = (torch.rand(T, batch, N_IN, generator=g) < density).float()
    y = torch.randint(0, N_OUT, (batch,), generator=g)
    return (w_in, w_rec, w_out), x, y


#: --recompute: network.recompute_steps of the snnrun-recompute system
RECOMPUTE = {"steps": None}


def snnrun_system(weights, T, recompute=None):
    w_in, w_rec, w_out = weights
    node = {"dt": 1.0, "duration": float(T), "output": "out", "recompute_steps": recompute,
            "populations": {"inp": {"shape": N_IN}, "rec": {"shape": HIDDEN}, "out": {"shape": N_OUT}},
            "projections": {"a": {"from": "inp", "to": "rec", "synapse": {"name": "dense"}},
                            "r": {"from": "rec", "to": "rec",
                                  "synapse": {"name": "recurrent", "self_connections": True}},
                            "b": {"from": "rec", "to": "out", "synapse": {"name": "dense"}}}}
    neuron = {"name": "lif", "tau_m": 2.0, "v_th": 1.0, "v_reset": 0.0, "v_rest": 0.0}
    net = build_network(node, neuron, (N_IN,), spike_fn=Sigmoid(Sigmoid.Params(alpha=4.0)))
    with torch.no_grad():
        for name, w in (("a", w_in), ("r", w_rec), ("b", w_out)):
            net.projections[name].stages[0].weight.copy_(w)

    def run(x):
        net.reset()
        return net(x).spikes["out"]
    return net, run


def spikingjelly_system(weights, T):
    from spikingjelly.activation_based import functional, neuron, surrogate

    w_in, w_rec, w_out = weights
    fc_in = torch.nn.Linear(N_IN, HIDDEN, bias=False)
    fc_rec = torch.nn.Linear(HIDDEN, HIDDEN, bias=False)
    fc_out = torch.nn.Linear(HIDDEN, N_OUT, bias=False)
    lif_rec = neuron.LIFNode(tau=2.0, surrogate_function=surrogate.Sigmoid(alpha=4.0))
    lif_out = neuron.LIFNode(tau=2.0, surrogate_function=surrogate.Sigmoid(alpha=4.0))
    net = torch.nn.ModuleList([fc_in, fc_rec, fc_out, lif_rec, lif_out])
    with torch.no_grad():
        fc_in.weight.copy_(w_in)
        fc_rec.weight.copy_(w_rec)
        fc_out.weight.copy_(w_out)

    def run(x):
        functional.reset_net(net)
        s = torch.zeros(x.shape[1], HIDDEN)
        out = []
        for x_t in x.unbind(0):
            s = lif_rec(fc_in(x_t) + fc_rec(s))
            out.append(lif_out(fc_out(s)))
        return torch.stack(out)
    return net, run


def snntorch_system(weights, T):
    import snntorch
    from snntorch import surrogate

    w_in, w_rec, w_out = weights
    grad = surrogate.sigmoid(slope=4)
    fc_in = torch.nn.Linear(N_IN, HIDDEN, bias=False)
    fc_out = torch.nn.Linear(HIDDEN, N_OUT, bias=False)
    rlif = snntorch.RLeaky(beta=0.5, linear_features=HIDDEN, all_to_all=True, spike_grad=grad,
                           reset_mechanism="zero", reset_delay=False)
    lif_out = snntorch.Leaky(beta=0.5, spike_grad=grad, reset_mechanism="zero", reset_delay=False)
    net = torch.nn.ModuleList([fc_in, rlif, fc_out, lif_out])
    with torch.no_grad():  # Leaky: mem = β mem + input; β = 1 − dt/τ, input = dt/τ (W_in x + W_rec s)
        fc_in.weight.copy_(w_in * 0.5)
        rlif.recurrent.weight.copy_(w_rec * 0.5)
        rlif.recurrent.bias.zero_()
        fc_out.weight.copy_(w_out * 0.5)

    def run(x):
        spk, mem = rlif.init_rleaky()
        mem2 = lif_out.init_leaky()
        out = []
        for x_t in x.unbind(0):
            spk, mem = rlif(fc_in(x_t), spk, mem)
            s2, mem2 = lif_out(fc_out(spk), mem2)
            out.append(s2)
        return torch.stack(out)
    return net, run


BUILDERS = {"snnrun": snnrun_system, "spikingjelly": spikingjelly_system, "snntorch": snntorch_system,
            "snnrun-recompute": lambda weights, T: snnrun_system(weights, T, RECOMPUTE["steps"])}


PEERS = (("spikingjelly", "spikingjelly.activation_based.neuron"), ("snntorch", "snntorch"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--density", type=float, default=0.05, help="input spike probability per step")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--recompute", type=int, default=0,
                    help="also run snnrun with network.recompute_steps at this many steps (its own row)")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    RECOMPUTE["steps"] = args.recompute or None
    weights, x, y = problem(args.steps, args.batch, args.density)
    if args.child:  # one system's training memory, in its own process
        net, run = BUILDERS[args.child](weights, args.steps)
        print_training_memory(args.child, net, run, x, y, trim=True)
        return
    names = importable(PEERS)
    peers = names[1:]
    names += ["snnrun-recompute"] if args.recompute else []
    print(f"# torch {torch.__version__}, threads {args.threads}; T={args.steps} B={args.batch} "
          f"{N_IN}-{HIDDEN}r-{N_OUT}, input density {args.density}")
    print(differing_counts(BUILDERS, names, weights, x, args.steps), flush=True)
    if args.memory:
        child = ["--steps", str(args.steps), "--batch", str(args.batch), "--density", str(args.density),
                 "--threads", str(args.threads), "--recompute", str(args.recompute)]
        med = median_memory(__file__, names, child, RECURRENT_MEMORY_ENV, 3)
        print("training memory (extra MiB, median of 3): " + against_peers(med, peers, min, "lowest"))
        return
    systems = {}
    for name in names:
        net, run = BUILDERS[name](weights, args.steps)
        systems[name] = (run, torch.optim.Adam(net.parameters(), lr=1e-3))
    for mode in ("train", "infer"):
        med = median_throughput(systems, names, x, y, mode == "train", args.reps, args.iters)
        print(f"{mode} (samples/s, median of {args.reps}): " + against_peers(med, peers), flush=True)


if __name__ == "__main__":
    main()
