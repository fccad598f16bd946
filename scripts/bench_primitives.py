"""Two primitives behind issue-10 figures, each timed against torch's own way of doing it.

1. Bernoulli spike trains: snnrun's compiled xoshiro128** kernel (``snnrun.kernels.bernoulli``)
   vs ``torch.rand(T, *p.shape) < p``, for the default experiment's batch (T=25, 64 x 64 inputs,
   half of them 0) and an MNIST-like batch (T=25, 128 x 784, 81 % zeros).
2. bfloat16 vs float32 GEMM of the first layer's shape (3200 x 784 -> 512), i.e. what
   ``trainer.precision=bf16`` changes for a dense projection on this CPU.

Medians of ``--reps`` timings of ``--iters`` calls each; prints milliseconds and ratios.

Usage: .venv/bin/python scripts/bench_primitives.py [--threads N] [--reps 5] [--iters 50]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from snnrun.kernels import bernoulli


def timed(fn, iters: int, reps: int) -> float:
    fn()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        samples.append((time.perf_counter() - t0) / iters * 1e3)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--iters", type=int, default=50)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}, cpu {torch.backends.cpu.get_cpu_capability()}")
    if bernoulli._EXTENSION.load() is None:
        print("# the Bernoulli kernel does not build here: only the GEMMs are timed")
    g = torch.Generator().manual_seed(0)
    for name, shape, zeros in (("default (64x64)", (64, 64), 0.5), ("mnist-like (128x784)", (128, 784), 0.81)):
        p = torch.rand(shape, generator=g)
        p[torch.rand(shape, generator=g) < zeros] = 0
        ref = timed(lambda: (torch.rand(25, *shape) < p).to(p.dtype), args.iters, args.reps)
        if bernoulli._EXTENSION.load() is not None:
            fast = timed(lambda: bernoulli.bernoulli_steps(p, 25), args.iters, args.reps)
            print(f"bernoulli T=25 {name}: torch.rand < p {ref:.3f} ms, snnrun kernel {fast:.3f} ms, "
                  f"ratio {ref / fast:.1f}x")
    a, w = torch.randn(3200, 784, generator=g), torch.randn(512, 784, generator=g)
    fp32 = timed(lambda: torch.nn.functional.linear(a, w), max(1, args.iters // 10), args.reps)
    ab, wb = a.bfloat16(), w.bfloat16()
    bf16 = timed(lambda: torch.nn.functional.linear(ab, wb), max(1, args.iters // 10), args.reps)
    print(f"linear 3200x784 -> 512: float32 {fp32:.1f} ms, bfloat16 {bf16:.1f} ms, bf16 / fp32 time {bf16 / fp32:.2f}")


if __name__ == "__main__":
    main()
