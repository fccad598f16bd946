"""Firing rate of the ``hh`` neuron against its sub-step, for choosing ``neuron.substep``.

    python scripts/hh_substep.py [SUBSTEP_MS ...]

Each column holds one constant current (µA/cm²) for 1 s at the network's dt = 1 ms in float64; each
row one ``neuron.substep``. The first row (0.01 ms) is the reference the others are read against.
Prints a Markdown table: spikes in 1 s (Hz) per current.
"""

from __future__ import annotations

import sys

import torch

from snnrun.neurons import NEURONS
from snnrun.schema import parse_params

CURRENTS = (5.0, 6.0, 6.5, 7.0, 10.0, 20.0, 50.0)


def rates(substep: float, steps: int = 1000) -> list[float]:
    cls = NEURONS.get("hh")
    neuron = cls(parse_params(cls.Params, {"substep": substep}, "neuron"), (len(CURRENTS),), dt=1.0)
    current = torch.tensor(CURRENTS, dtype=torch.float64)
    state = neuron.initial_state(current.shape, "cpu", torch.float64)
    count = torch.zeros_like(current)
    for _ in range(steps):
        spikes, state = neuron.step(current, state)
        count += spikes
    return (count * 1000.0 / steps).tolist()


def main(argv: list[str]) -> None:
    substeps = [float(a) for a in argv] or [0.01, 0.1, 0.25, 0.5, 1.0]
    print("| substep (ms) | " + " | ".join(f"{i:g}" for i in CURRENTS) + " |")
    print("|---" * (len(CURRENTS) + 1) + "|")
    for sub in substeps:
        print(f"| {sub:g} | " + " | ".join(f"{r:.0f}" for r in rates(sub)) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
