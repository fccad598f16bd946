"""Firing rate of the ``hh`` neuron against its sub-step, for choosing ``neuron.substep``; and its
rheobase of repetitive firing against temperature, for ``HodgkinHuxley.operating_range``.

    python scripts/hh_substep.py [--temperature DEGC] [SUBSTEP_MS ...]
    python scripts/hh_substep.py --rheobase [DEGC ...]

Each column holds one constant current (µA/cm²) for 1 s at the network's dt = 1 ms in float64; each
row one ``neuron.substep``. The first row (0.01 ms) is the reference the others are read against.
Prints a Markdown table: spikes in 1 s (Hz) per current. ``--temperature`` sets ``neuron.temperature``
(default: the model's default); the currents are the default ones at 6.3 °C and multiples of the
rheobase otherwise.

``--rheobase`` prints, per temperature, phi = 3 ** ((T − 6.3) / 10) and the least constant current
(µA/cm²) that fires repetitively from rest: at least two spikes in the last 100 ms of 200 ms, at
dt = substep = 0.01 ms in float64, by bisection on a grid (resolution 0.001 µA/cm²). Below it the
model fires at most an onset spike. The table ``_RHEOBASE`` in ``snnrun/neurons/hh.py`` holds its output.
"""

from __future__ import annotations

import argparse

import torch

from snnrun.neurons import NEURONS
from snnrun.neurons.hh import temperature_factor
from snnrun.schema import parse_params

CURRENTS = (5.0, 6.0, 6.5, 7.0, 10.0, 20.0, 50.0)


def simulate(currents, substep: float, temperature: float | None, dt: float, steps: int) -> torch.Tensor:
    """Spikes [steps, len(currents)] of one ``hh`` neuron per constant current, float64."""
    cls = NEURONS.get("hh")
    node = {"substep": substep} if temperature is None else {"substep": substep, "temperature": temperature}
    neuron = cls(parse_params(cls.Params, node, "neuron"), (len(currents),), dt=dt)
    current = torch.tensor(currents, dtype=torch.float64)
    state = neuron.initial_state(current.shape, "cpu", torch.float64)
    out = []
    for _ in range(steps):
        spikes, state = neuron.step(current, state)
        out.append(spikes)
    return torch.stack(out)


def rates(substep: float, currents=CURRENTS, temperature: float | None = None, steps: int = 1000) -> list[float]:
    count = simulate(currents, substep, temperature, 1.0, steps).sum(0)
    return (count * 1000.0 / steps).tolist()


def rheobase(temperature: float, lo: float = 0.0, hi: float = 40.0, dt: float = 0.01) -> float:
    """Least current firing repetitively from rest (≥ 2 spikes in the last 100 ms of 200 ms)."""
    steps = int(round(200 / dt))
    while hi - lo > 1e-3:
        grid = torch.linspace(lo, hi, 11).tolist()
        late = simulate(grid, dt, temperature, dt, steps)[steps // 2:].sum(0)
        above = (late >= 2).nonzero()
        if len(above) == 0:
            raise ValueError(f"no repetitive firing up to {hi} uA/cm^2 at {temperature} degC")
        i = int(above[0])
        if i == 0:
            raise ValueError(f"repetitive firing already at {lo} uA/cm^2 at {temperature} degC")
        lo, hi = grid[i - 1], grid[i]
    return hi


def spike_cost(temperature: float, drive: float, window: float = 25.0, dt: float = 0.01) -> float:
    """Constant input (µA/cm²) each further spike costs over ``window`` ms from rest: the rise from ``drive``
    to the multiple of it (2, 4, 8 or 16; the largest of those that fire the most, below depolarisation
    block) divided by the spikes it adds (counted at dt = substep = ``dt``)."""
    multiples = (1.0, 2.0, 4.0, 8.0, 16.0)
    counts = simulate([m * drive for m in multiples], dt, temperature, dt, int(round(window / dt))).sum(0).tolist()
    top = max(range(1, len(multiples)), key=lambda i: (counts[i], i))
    if counts[top] <= counts[0]:
        raise ValueError(f"no more spikes above {drive:g} uA/cm^2 than at it, {temperature} degC")
    return (multiples[top] - 1.0) * drive / (counts[top] - counts[0])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--temperature", type=float, default=None, help="neuron.temperature (degC)")
    parser.add_argument("--rheobase", action="store_true", help="print the rheobase per temperature")
    parser.add_argument("values", nargs="*", type=float, help="sub-steps (ms), or temperatures with --rheobase")
    args = parser.parse_args(argv)
    if args.rheobase:
        print("| temperature (°C) | phi | rheobase (µA/cm²) | spike cost over 25 ms (µA/cm²) |")
        print("|---|---|---|---|")
        for temp in args.values or [6.3, 18.5]:
            base = rheobase(temp)
            print(f"| {temp:g} | {temperature_factor(temp):.4f} | {base:.3f} | {spike_cost(temp, base):.2f} |",
                  flush=True)
        return
    cls = NEURONS.get("hh")
    temp = cls.Params().temperature if args.temperature is None else args.temperature
    currents = CURRENTS if temp == 6.3 else tuple(
        round(x * cls(cls.Params(temperature=temp), (1,), dt=1.0).operating_range().drive, 2)
        for x in (0.9, 1.1, 1.5, 2.0, 3.0, 5.0))
    substeps = args.values or [0.01, 0.1, 0.25, 0.5, 1.0]
    print(f"temperature {temp:g} °C")
    print("| substep (ms) | " + " | ".join(f"{i:g}" for i in currents) + " |")
    print("|---" * (len(currents) + 1) + "|")
    for sub in substeps:
        print(f"| {sub:g} | " + " | ".join(f"{r:.0f}" for r in rates(sub, currents, temp)) + " |", flush=True)


if __name__ == "__main__":
    main()
