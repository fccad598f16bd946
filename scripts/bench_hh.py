"""The fused Hodgkin–Huxley kernel against the reference step it replaces, side by side.

One HH population (default parameters: 18.5 °C, 0.05 ms sub-steps, so 20 sub-steps per 1 ms step)
driven by a fixed random current [T, B, N] in 0–30 µA/cm², atan surrogate; a training pass is the
forward over T steps plus the backward of a loss on the spikes. The same neuron runs once through
``snnrun.kernels.hh`` and once through ``snnrun.neurons.hh.hh_step`` (the kernel switched off), in an
order rotated every repetition; medians are printed with the reference / kernel ratio, after a check
that both paths give the same spikes.

Usage:
  .venv/bin/python scripts/bench_hh.py --batch 64 --neurons 256 --steps 25 --reps 7 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from snnrun.kernels import cpu_features, hh as hh_kernel
from snnrun.neurons.hh import HodgkinHuxley
from snnrun.surrogate import ATan


def one_pass(neuron: HodgkinHuxley, current: torch.Tensor, train: bool) -> tuple[float, torch.Tensor]:
    """Seconds for one forward (and backward when ``train``) from rest, and the spikes."""
    neuron.reset()
    x = current.clone().requires_grad_(train)
    start = time.perf_counter()
    with torch.set_grad_enabled(train):
        spikes, _ = neuron(x)
        if train:
            spikes.sum().backward()
    return time.perf_counter() - start, spikes.detach()


def timed(neuron, current, train: bool, fused: bool) -> tuple[float, torch.Tensor]:
    hh_kernel.set_enabled(fused)
    try:
        return one_pass(neuron, current, train)
    finally:
        hh_kernel.set_enabled(True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--neurons", type=int, default=256)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    assert hh_kernel._EXTENSION.load() is not None, f"the hh kernel did not build: {hh_kernel._EXTENSION.error}"
    neuron = HodgkinHuxley(HodgkinHuxley.Params(), shape=(args.neurons,), dt=1.0, spike_fn=ATan(ATan.Params()))
    current = torch.rand(args.steps, args.batch, args.neurons) * 30

    _, z_kernel = timed(neuron, current, False, True)
    _, z_ref = timed(neuron, current, False, False)
    differ = (z_kernel != z_ref).float().mean().item()
    print(f"spikes: {int(z_ref.sum())} (reference), {int(z_kernel.sum())} (kernel); {differ:.2e} of entries differ")

    print(f"HH, T={args.steps} B={args.batch} N={args.neurons}, {neuron.params.substep} ms sub-steps, "
          f"{args.threads} thread(s), torch {torch.__version__}, {cpu_features()['model']}")
    for train in (False, True):
        times = {"kernel": [], "reference": []}
        for rep in range(args.reps + 1):  # the first repetition warms up
            order = ("kernel", "reference") if rep % 2 == 0 else ("reference", "kernel")
            for name in order:
                seconds, _ = timed(neuron, current, train, name == "kernel")
                if rep:
                    times[name].append(seconds)
        k, r = statistics.median(times["kernel"]), statistics.median(times["reference"])
        what = "forward + backward" if train else "forward (inference)"
        print(f"{what:22s} kernel {k * 1e3:8.1f} ms  reference {r * 1e3:8.1f} ms  ratio {r / k:5.1f}x")


if __name__ == "__main__":
    main()
