"""How snnrun's training time and memory grow with T, the hidden size and the batch size.

The network of scripts/bench_peers.py (784 -> H LIF -> 10 LIF, 13 % Bernoulli input, cross-entropy
on spike counts, Adam). Each point runs in its own subprocess: one untimed training step, then
``--iters`` timed training steps and ``--iters`` timed inference passes (medians of per-step
times), and the extra peak RSS of training (VmHWM during the steps minus the RSS before them,
measured as in bench_peers.py: MALLOC_MMAP_THRESHOLD_ so RSS follows the live tensors).
Prints a markdown table.

Usage: .venv/bin/python scripts/bench_scaling.py [--iters 3] [--threads 0]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_peers import MEMORY_ENV  # noqa: E402

SWEEPS = {  # (T, batch, hidden); each sweep varies one of them around T=25 / B=128 / H=512
    "T": [(T, 128, 512) for T in (25, 50, 100, 200, 400)],
    "hidden": [(25, 128, H) for H in (128, 512, 1024, 2048, 4096)],
    "batch": [(25, B, 512) for B in (1, 8, 32, 128, 512)],
}
QUICK = {"T": (25, 100, 400), "hidden": (128, 1024, 4096), "batch": (1, 32, 512)}  # --quick: 3 points a sweep


def child(T: int, batch: int, hidden: int, iters: int) -> dict:
    import torch
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_peers import _rss_kib, problem, snnrun_system, train_step
    w1, w2, x, y = problem(T, batch, hidden)
    net, run = snnrun_system(w1, w2, T)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    train_step(run, opt, x, y)  # warm-up (kernel load, allocator)
    before = _rss_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    train, infer = [], []
    for _ in range(iters):
        t0 = time.perf_counter()
        train_step(run, opt, x, y)
        train.append(time.perf_counter() - t0)
    extra = (_rss_kib("VmHWM") - before) / 1024
    with torch.no_grad():
        for _ in range(iters):
            t0 = time.perf_counter()
            run(x)
            infer.append(time.perf_counter() - t0)
    return {"T": T, "batch": batch, "hidden": hidden, "train_ms": 1e3 * statistics.median(train),
            "infer_ms": 1e3 * statistics.median(infer), "extra_mib": extra,
            "train_sps": batch / statistics.median(train), "infer_sps": batch / statistics.median(infer)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--sweeps", default="T,hidden,batch")
    ap.add_argument("--quick", action="store_true", help="3 points per sweep: " + str(QUICK))
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        import torch
        if args.threads:
            torch.set_num_threads(args.threads)
        T, batch, hidden = (int(v) for v in args.child.split(","))
        print(json.dumps(child(T, batch, hidden, args.iters)))
        return
    for sweep in args.sweeps.split(","):
        print(f"\n{sweep} sweep\n\n| T | batch | hidden | train step (ms) | train samples/s | inference (ms) "
              f"| inference samples/s | training extra memory (MiB) |\n|---|---|---|---|---|---|---|---|", flush=True)
        axis = {"T": 0, "batch": 1, "hidden": 2}[sweep]
        for T, batch, hidden in SWEEPS[sweep]:
            if args.quick and (T, batch, hidden)[axis] not in QUICK[sweep]:
                continue
            cmd = [sys.executable, __file__, "--child", f"{T},{batch},{hidden}", "--iters", str(args.iters),
                   "--threads", str(args.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=MEMORY_ENV).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"| {T} | {batch} | {hidden} | {r['train_ms']:.1f} | {r['train_sps']:.0f} | {r['infer_ms']:.1f} "
                  f"| {r['infer_sps']:.0f} | {r['extra_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
