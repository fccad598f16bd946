"""Training/inference throughput and training memory of snnrun vs the peers on the identical network.

784 -> H LIF -> 10 LIF (tau_m = 2 ms, dt = 1 ms, forward Euler v += dt/tau (-v + I), hard reset
to 0, threshold 1), Bernoulli rate input at 13 % density, cross-entropy on output spike counts,
Adam, full forward + backward + step. snnrun, spikingjelly, snntorch and norse run
layer by layer (one GEMM per projection over all T); the peers are spikingjelly (multi-step
LIFNode, torch backend), snntorch (Leaky, beta = 0.5, input scaled by dt/tau = 0.5 -- an exact
power-of-two scaling of the same weights) and norse (LIFBoxCell, tau_mem_inv = 0.5, dt = 1), each
looped over time as its docs show; ``snntorch-loop`` is snntorch as its tutorials write the loop,
both Linear layers applied step by step.
Surrogates: sigmoid(4) for snnrun, spikingjelly, snntorch; norse has none, it uses SuperSpike.

1. same weights and input for all: the output spike counts of each peer are compared with snnrun's;
2. timing: for each repetition every system runs `--iters` timed steps after one warm-up step,
   in an order rotated every repetition (machine drift cancels); medians and ratios are printed;
3. memory (`--memory`): each system trains in its own subprocess (glibc told to return freed
   blocks above 128 KiB, MALLOC_MMAP_THRESHOLD_, so RSS follows the live tensors); after one
   warm-up step, the extra memory is the peak RSS during 3 training steps (VmHWM, reset with
   /proc/self/clear_refs) minus the RSS just before them (libraries, data, weights, optimizer state).
4. `--bf16` adds snnrun under bf16 autocast as its own row (not a peer: ratios use the peers only);
   `--recompute C` adds snnrun with ``network.recompute_steps: C`` (chunks of C steps whose activations
   the backward recomputes) as ``snnrun-recompute``, the same way.
5. `--input direct`: an analog image in [0, 1], the same at every step (the `direct` encoder's
   stride-0 view) instead of spikes. snnrun projects it once per sample (Projection.forward_constant);
   spikingjelly applies its first layer once and repeats it over T, as its static-image CSNN example
   does; snntorch-loop applies fc1 at every step, as its tutorials; snntorch and norse over all T·B rows.

Usage:
  .venv/bin/python scripts/bench_peers.py --configs 25x128,100x128,25x32 --reps 5 --iters 3
  .venv/bin/python scripts/bench_peers.py --memory --configs 100x128
  .venv/bin/python scripts/bench_peers.py --memory --configs 100x128 --recompute 10
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time

import torch

from snnrun.network import build_network
from snnrun.surrogate import Sigmoid

DENSITY = 0.13
#: the input: "spikes" (Bernoulli at DENSITY) or "direct" (--input direct)
INPUT = {"kind": "spikes"}
#: --recompute: network.recompute_steps of the snnrun-recompute system
RECOMPUTE = {"steps": None}
# memory children: every allocation above 128 KiB is its own mapping, returned to the OS when freed,
# so RSS follows the live tensors (glibc's default keeps freed heap memory and adapts the threshold)
MEMORY_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}


def snnrun_system(w1, w2, T, recompute=None):
    node = {"dt": 1.0, "duration": float(T), "output": "out", "recompute_steps": recompute,
            "populations": {"inp": {"shape": w1.shape[1]}, "hidden": {"shape": w1.shape[0]}, "out": {"shape": 10}},
            "projections": {"a": {"from": "inp", "to": "hidden", "synapse": {"name": "dense"}},
                            "b": {"from": "hidden", "to": "out", "synapse": {"name": "dense"}}}}
    neuron = {"name": "lif", "tau_m": 2.0, "v_th": 1.0, "v_reset": 0.0, "v_rest": 0.0}
    net = build_network(node, neuron, (w1.shape[1],), spike_fn=Sigmoid(Sigmoid.Params(alpha=4.0)))
    with torch.no_grad():
        net.projections["a"].stages[0].weight.copy_(w1)
        net.projections["b"].stages[0].weight.copy_(w2)

    def run(x):
        net.reset()
        return net(x).spikes["out"]
    return net, run


def snnrun_recompute_system(w1, w2, T):
    """snnrun with network.recompute_steps = --recompute (activation checkpointing over chunks of steps)."""
    return snnrun_system(w1, w2, T, RECOMPUTE["steps"])


def snnrun_bf16_system(w1, w2, T):
    """snnrun under bf16 autocast (trainer.precision=bf16): dense products in bfloat16, state in float32."""
    net, run = snnrun_system(w1, w2, T)

    def run_bf16(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return run(x)
    return net, run_bf16


def spikingjelly_system(w1, w2, T):
    from spikingjelly.activation_based import functional, layer, neuron, surrogate
    net = torch.nn.Sequential(
        layer.Linear(w1.shape[1], w1.shape[0], bias=False),
        neuron.LIFNode(tau=2.0, surrogate_function=surrogate.Sigmoid(alpha=4.0)),
        layer.Linear(w1.shape[0], 10, bias=False),
        neuron.LIFNode(tau=2.0, surrogate_function=surrogate.Sigmoid(alpha=4.0)))
    functional.set_step_mode(net, "m")
    with torch.no_grad():
        net[0].weight.copy_(w1)
        net[2].weight.copy_(w2)

    def run(x):
        functional.reset_net(net)
        if x.stride(0) == 0:  # a static image: its first layer once, repeated over T (spikingjelly's CSNN example)
            return net[1:](net[0](x[0]).unsqueeze(0).repeat(x.shape[0], 1, 1))
        return net(x)
    return net, run


def snntorch_system(w1, w2, T):
    import snntorch
    from snntorch import surrogate
    fc1 = torch.nn.Linear(w1.shape[1], w1.shape[0], bias=False)
    fc2 = torch.nn.Linear(w1.shape[0], 10, bias=False)
    with torch.no_grad():  # Leaky: mem = beta mem + input; beta = 1 - dt/tau, input = dt/tau W s
        fc1.weight.copy_(w1 * 0.5)
        fc2.weight.copy_(w2 * 0.5)
    grad = surrogate.sigmoid(slope=4)
    lif1 = snntorch.Leaky(beta=0.5, spike_grad=grad, reset_mechanism="zero")
    lif2 = snntorch.Leaky(beta=0.5, spike_grad=grad, reset_mechanism="zero")
    net = torch.nn.ModuleList([fc1, lif1, fc2, lif2])

    def layer(lif, current):
        mem = torch.zeros_like(current[0])
        out = []
        for c in current.unbind(0):
            spk, mem = lif(c, mem)
            out.append(spk)
        return torch.stack(out)

    def run(x):
        s1 = layer(lif1, fc1(x))
        return layer(lif2, fc2(s1))
    return net, run


def snntorch_loop_system(w1, w2, T):
    """snntorch as its tutorials write the training loop: each time step applies both Linear layers to
    that step's input and steps the Leaky neurons (``for step in range(num_steps)``)."""
    net, _ = snntorch_system(w1, w2, T)
    fc1, lif1, fc2, lif2 = net

    def run(x):
        mem1 = mem2 = None
        out = []
        for x_t in x.unbind(0):
            cur1 = fc1(x_t)
            if mem1 is None:
                mem1, mem2 = torch.zeros_like(cur1), torch.zeros(x_t.shape[0], fc2.out_features)
            spk1, mem1 = lif1(cur1, mem1)
            spk2, mem2 = lif2(fc2(spk1), mem2)
            out.append(spk2)
        return torch.stack(out)
    return net, run


def norse_system(w1, w2, T):
    from norse.torch import LIFBoxCell, LIFBoxParameters
    fc1 = torch.nn.Linear(w1.shape[1], w1.shape[0], bias=False)
    fc2 = torch.nn.Linear(w1.shape[0], 10, bias=False)
    with torch.no_grad():
        fc1.weight.copy_(w1)
        fc2.weight.copy_(w2)
    p = LIFBoxParameters(tau_mem_inv=torch.as_tensor(0.5), v_th=torch.as_tensor(1.0), v_reset=torch.as_tensor(0.0),
                         v_leak=torch.as_tensor(0.0), method="super", alpha=torch.as_tensor(4.0))
    lif1, lif2 = LIFBoxCell(p, dt=1.0), LIFBoxCell(p, dt=1.0)
    net = torch.nn.ModuleList([fc1, lif1, fc2, lif2])

    def layer(lif, current):
        state, out = None, []
        for c in current.unbind(0):
            z, state = lif(c, state)
            out.append(z)
        return torch.stack(out)

    def run(x):
        return layer(lif2, fc2(layer(lif1, fc1(x))))
    return net, run


BUILDERS = {"snnrun": snnrun_system, "spikingjelly": spikingjelly_system, "snntorch": snntorch_system,
            "snntorch-loop": snntorch_loop_system, "norse": norse_system, "snnrun-bf16": snnrun_bf16_system,
            "snnrun-recompute": snnrun_recompute_system}
PEERS = ("spikingjelly", "snntorch", "snntorch-loop", "norse")


def available() -> list[str]:
    names = importable((("spikingjelly", "spikingjelly.activation_based.neuron"), ("snntorch", "snntorch"),
                        ("norse", "norse.torch")))
    if "snntorch" in names:
        names.insert(names.index("snntorch") + 1, "snntorch-loop")
    return names


def problem(T: int, batch: int, hidden: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    w1 = (torch.rand(hidden, 784, generator=g) * 2 - 1) * (8.0 / 784 ** 0.5)
    w2 = (torch.rand(10, hidden, generator=g) * 2 - 1) * (8.0 / hidden ** 0.5)
    if INPUT["kind"] == "direct":  # an analog image, the same at every step (the direct encoder's view)
        x = torch.rand(batch, 784, generator=g).unsqueeze(0).expand(T, batch, 784)
    else:
        x = (torch.rand(T, batch, 784, generator=g) < DENSITY).float()
    y = torch.randint(0, 10, (batch,), generator=g)
    return w1, w2, x, y


def train_step(run, opt, x, y):
    out = run(x).sum(0)
    loss = torch.nn.functional.cross_entropy(out, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def timed(run, opt, x, y, train: bool, iters: int) -> float:
    for i in range(iters + 1):  # the first iteration is an untimed warm-up
        if i == 1:
            t0 = time.perf_counter()
        if train:
            train_step(run, opt, x, y)
        else:
            with torch.no_grad():
                run(x)
    return x.shape[1] * iters / (time.perf_counter() - t0)


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(field)


# --- the side-by-side harness (also used by bench_recurrent.py and bench_conv_peers.py) ---------------

def importable(candidates) -> list[str]:
    """``snnrun`` and the peers of ``candidates`` [(name, module)] whose module imports (a peer that
    does not is left out, and said so on stderr)."""
    names = ["snnrun"]
    for name, module in candidates:
        try:
            __import__(module)
            names.append(name)
        except Exception as err:  # noqa: BLE001 - a peer that does not import is left out, and said so
            print(f"# {name} left out: {type(err).__name__}: {err}", file=sys.stderr)
    return names


def rotations(names: list[str], reps: int):
    """``names`` in an order rotated every repetition (machine drift cancels)."""
    for rep in range(reps):
        yield names[rep % len(names):] + names[:rep % len(names)]


def print_training_memory(name: str, net, run, x, y, trim: bool = False) -> None:
    """(memory child) The extra peak RSS of 3 training steps after a warm-up step, as one JSON line;
    ``trim``: give the warm-up's free heap back first (malloc_trim)."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    train_step(run, opt, x, y)  # warm-up: optimizer state, lazily loaded kernels
    if trim:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    before = _rss_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
    for _ in range(3):
        train_step(run, opt, x, y)
    print(json.dumps({"system": name, "extra_mib": (_rss_kib("VmHWM") - before) / 1024}))


def median_memory(script: str, names: list[str], child_args: list[str], env: dict, reps: int) -> dict[str, float]:
    """Median extra training memory (MiB) of each system, each run in its own subprocess of ``script``."""
    mem = {n: [] for n in names}
    for order in rotations(names, reps):
        for name in order:
            cmd = [sys.executable, script, "--child", name, *child_args]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
            mem[name].append(json.loads(out.strip().splitlines()[-1])["extra_mib"])
    return {k: statistics.median(v) for k, v in mem.items()}


def median_throughput(systems: dict, names: list[str], x, y, train: bool, reps: int, iters: int) -> dict[str, float]:
    """Median samples/s of each system (``systems[name] = (run, optimizer)``), rotated per repetition."""
    res = {k: [] for k in systems}
    for order in rotations(names, reps):
        for name in order:
            run, opt = systems[name]
            res[name].append(timed(run, opt, x, y, train, iters))
    return {k: statistics.median(v) for k, v in res.items()}


def against_peers(med: dict[str, float], peers, best=max, word: str = "fastest") -> str:
    """``med`` as a line, with each snnrun row's ratio to the best of ``peers``."""
    line = ", ".join(f"{k} {v:.0f}" if v >= 100 else f"{k} {v:.1f}" for k, v in med.items())
    scores = {k: v for k, v in med.items() if k in peers}
    if not scores:
        return line
    top = best(scores, key=scores.get)
    return line + "".join(f"; {k} / {word} peer ({top}) {v / scores[top]:.2f}" for k, v in med.items()
                          if k.startswith("snnrun"))


def differing_counts(builders, names: list[str], weights, x, T: int) -> str:
    """The output spike counts of every system compared with snnrun's, as a line."""
    counts = {}
    for name in names:
        _, run = builders[name](weights, T)
        with torch.no_grad():
            counts[name] = run(x).sum(0)
    ref = counts["snnrun"]
    return (f"output spike counts differing from snnrun's (of {ref.numel()}, total {int(ref.sum())}): "
            + ", ".join(f"{n} {int((c != ref).sum())}" for n, c in counts.items() if n != "snnrun"))


def memory_child(name: str, T: int, batch: int, hidden: int) -> None:
    w1, w2, x, y = problem(T, batch, hidden)
    net, run = BUILDERS[name](w1, w2, T)
    print_training_memory(name, net, run, x, y)


def spike_counts(names, T, batch, hidden):
    w1, w2, x, y = problem(T, batch, hidden)
    counts = {}
    for name in names:
        _, run = BUILDERS[name](w1, w2, T)
        with torch.no_grad():
            counts[name] = run(x).sum(0)
    ref = counts["snnrun"]
    return {n: int((c != ref).sum()) for n, c in counts.items() if n != "snnrun"}, int(ref.sum())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", default="25x128,100x128,25x32", help="comma-separated TxB")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--systems", default="", help="comma-separated subset (default: all that import)")
    ap.add_argument("--modes", default="train,infer")
    ap.add_argument("--memory", action="store_true", help="measure training memory (one subprocess per system and rep)")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads for every system (0: torch's default)")
    ap.add_argument("--bf16", action="store_true", help="also run snnrun under bf16 autocast (reported separately)")
    ap.add_argument("--recompute", type=int, default=0,
                    help="also run snnrun with network.recompute_steps at this many steps (reported separately)")
    ap.add_argument("--input", default="spikes", choices=("spikes", "direct"),
                    help="Bernoulli spikes at 13 %% density, or an analog image repeated at every step")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    INPUT["kind"] = args.input
    RECOMPUTE["steps"] = args.recompute or None
    if args.threads:
        torch.set_num_threads(args.threads)
    configs = [tuple(int(v) for v in c.split("x")) for c in args.configs.split(",")]
    if args.child:
        T, batch = configs[0]
        memory_child(args.child, T, batch, args.hidden)
        return
    names = available() + (["snnrun-bf16"] if args.bf16 else []) + (["snnrun-recompute"] if args.recompute else [])
    if args.systems:
        names = [n for n in args.systems.split(",") if n in names]
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, systems {names}")
    for T, batch in configs:
        diff, total = spike_counts(names, T, batch, args.hidden)
        print(f"T={T} B={batch}: output spike counts differing from snnrun's (of {batch * 10}, total {total} spikes): "
              + ", ".join(f"{k} {v}" for k, v in diff.items()), flush=True)
        if args.memory:
            med = median_memory(__file__, names, ["--configs", f"{T}x{batch}", "--hidden", str(args.hidden),
                                                  "--threads", str(args.threads), "--input", args.input,
                                                  "--recompute", str(args.recompute)],
                                MEMORY_ENV, args.reps)
            print(f"memory train T={T} B={batch} H={args.hidden} (extra MiB, median of {args.reps}): "
                  + against_peers(med, PEERS, min, "lowest"), flush=True)
            continue
        w1, w2, x, y = problem(T, batch, args.hidden)
        systems = {}
        for name in names:
            net, run = BUILDERS[name](w1, w2, T)
            systems[name] = (run, torch.optim.Adam(net.parameters(), lr=1e-3))
        for mode in args.modes.split(","):
            med = median_throughput(systems, names, x, y, mode == "train", args.reps, args.iters)
            print(f"{mode} T={T} B={batch} H={args.hidden} (samples/s, median of {args.reps}): "
                  + against_peers(med, PEERS), flush=True)

if __name__ == "__main__":
    main()
