"""Training time per batch at 1 and 2 intra-op threads, against the network's synaptic work.

The threshold of ``trainer.threads=auto`` (``snnrun.threads.WORK_PER_THREAD``: one thread per that
many synaptic multiply-accumulates per simulated step of a batch) is where a second thread starts
to pay. This script measures it on an idle machine: for dense networks ``in -> hidden -> 10`` of
growing hidden size, the mean time of a training batch (forward, backward, Adam step) at one and
two threads, interleaved, after warm-up.

    python scripts/bench_threads.py [--hidden 64,256,1024,4096] [--batch 64] [--steps 25] [--reps 20]

Run it alone: another CPU-heavy process makes the two-thread figures meaningless.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from snnrun.network import build_network
from snnrun.surrogate import build_surrogate
from snnrun.threads import WORK_PER_THREAD, synaptic_work


def batch_time(net, x, y, optimizer, threads: int, reps: int) -> float:
    torch.set_num_threads(threads)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        net.reset()
        out = net(x).spikes[net.output].sum(0)
        loss = torch.nn.functional.cross_entropy(out, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    times.sort()
    return sum(times[: max(1, reps // 2)]) / max(1, reps // 2)  # the faster half: less noise from the OS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", default="64,256,1024,4096")
    ap.add_argument("--inputs", type=int, default=784)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads available, "
          f"torch {torch.__version__}; inputs {args.inputs}, batch {args.batch}, T {args.steps}; "
          f"threshold WORK_PER_THREAD = {WORK_PER_THREAD:.0e}")
    print(f"{'hidden':>7} {'MACs/step':>10} {'1 thread ms':>12} {'2 threads ms':>13} {'speed-up':>9}")
    for hidden in (int(h) for h in args.hidden.split(",")):
        torch.manual_seed(0)
        node = {"dt": 1.0, "duration": float(args.steps),
                "populations": {"inp": {"shape": args.inputs}, "hid": {"shape": hidden}, "out": {"shape": 10}},
                "projections": {"a": {"from": "inp", "to": "hid", "synapse": {"name": "dense", "gain": 3.0}},
                                "b": {"from": "hid", "to": "out", "synapse": {"name": "dense", "gain": 3.0}}}}
        net = build_network(node, {"name": "lif", "tau_m": 5.0}, (args.inputs,),
                            build_surrogate({"name": "atan"}, "surrogate"))
        x = (torch.rand(args.steps, args.batch, args.inputs) < 0.1).float()
        y = torch.randint(0, 10, (args.batch,))
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        batch_time(net, x, y, optimizer, 1, 3)  # warm-up
        one = batch_time(net, x, y, optimizer, 1, args.reps)
        two = batch_time(net, x, y, optimizer, 2, args.reps)
        work = synaptic_work(net, args.batch)
        print(f"{hidden:>7} {work:>10.2e} {one * 1e3:>12.2f} {two * 1e3:>13.2f} {one / two:>8.2f}x")


if __name__ == "__main__":
    main()
