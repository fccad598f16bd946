"""Data-driven initial scale: each population starts firing at ``network.init_rate``.

Kaiming initialisation assumes inputs of unit second moment; spike inputs are far from that and
their second moment depends on the encoder (Poisson at the pixel intensity, one spike per input for
``latency``) and on every upstream population. Following the layer-sequential idea of LSUV (Mishkin &
Matas 2016) and the rate-based view of fluctuation-driven initialisation for SNNs (Rossbroich, Gygax &
Zenke 2022), the weights of ``init: kaiming`` stages are rescaled on real data before training:

for each spiking population ``P`` in topological order whose incoming projections hold kaiming-initialised
weights, one scalar ``s`` multiplies those weights so that ``P``'s mean rate on the calibration batch

    r(s) = 1000 / dt · spikes / (neurons · steps · samples)      [Hz]

is ``init_rate`` within :data:`TOLERANCE`. ``s`` is found by bisection on ``log2 s`` in
``[2^-LOG2_RANGE, 2^LOG2_RANGE]`` (the rate grows with the scale of zero-mean random weights);
upstream populations are calibrated first, so ``P`` sees the activity it will see in training. A rate
the range cannot reach keeps the closest scale and is logged. Weight bounds are re-applied.

Each stage's ``weight_scale`` (the target's drive, set at build) is multiplied by ``s``: it is the
unit the optimizer steps in (:func:`snnrun.optim.unit_groups`).

The calibration batch is the first ``data.batch_size`` training samples (no shuffling), and the
global random state is restored afterwards: a calibrated run draws the same encoder and dropout
randomness as an uncalibrated one. The build calibrates (deterministically, so a resumed run finds
the same units before it loads its trained weights); ``snnrun validate`` does not.
"""

from __future__ import annotations

import logging
import math

import torch

from .synapses.base import constrain

log = logging.getLogger("snnrun")

#: a rate within this factor of the target ends the search
TOLERANCE = 1.1
#: the scale searched: 2^-LOG2_RANGE ... 2^LOG2_RANGE times the kaiming weights
LOG2_RANGE = 10.0
#: bisection steps at most (2·LOG2_RANGE / 2^16: the scale to ~0.03 %)
MAX_STEPS = 16


def kaiming_stages(network, population: str) -> list:
    """Every kaiming-initialised weighted stage (a synapse module) projecting to ``population``."""
    found = []
    for proj in network.incoming[population]:
        for stage in proj.stages:
            p, weight = getattr(stage, "params", None), getattr(stage, "weight", None)
            if getattr(p, "init", None) == "kaiming" and isinstance(weight, torch.nn.Parameter):
                found.append(stage)
    return found


@torch.no_grad()
def _rate(network, spikes_in: torch.Tensor, population: str) -> float:
    network.reset()
    out = network(spikes_in).spikes[population]
    network.reset()
    return float(out.float().mean()) * 1000.0 / network.dt


@torch.no_grad()
def calibrate_rates(network, spikes_in: torch.Tensor, target_hz: float) -> dict[str, dict[str, float]]:
    """Rescale kaiming weights population by population (see the module docstring).

    ``spikes_in``: the encoded calibration batch ``[T, B, *input_shape]``. Returns, per calibrated
    population, ``scale`` (the factor applied) and ``rate_hz`` (its rate at that scale)."""
    found: dict[str, dict[str, float]] = {}
    for name in network.order:
        pop = network.populations[name]
        if pop.is_input or not pop.neuron.spiking:
            continue
        stages = kaiming_stages(network, name)
        if not stages:
            continue
        # rescaling by products of factors would accumulate rounding: keep the originals and set s·w0
        originals = [(stage.weight.detach().clone(), stage.weight, stage.params) for stage in stages]

        def rate_at(log2_s: float) -> float:
            for w0, w, p in originals:
                w.copy_(w0 * 2.0 ** log2_s)
                constrain(w, p)
            return _rate(network, spikes_in, name)

        lo, hi, mid = -LOG2_RANGE, LOG2_RANGE, 0.0
        tried: list[tuple[float, float]] = []
        for _ in range(MAX_STEPS):
            rate = rate_at(mid)
            tried.append((mid, rate))
            if rate > 0 and abs(math.log(rate / target_hz)) <= math.log(TOLERANCE):
                break
            lo, hi = (mid, hi) if rate < target_hz else (lo, mid)
            mid = (lo + hi) / 2
        # the closest rate seen (in log terms; silence is farthest)
        best, rate = min(tried, key=lambda t: abs(math.log(max(t[1], 1e-9) / target_hz)))
        if best != tried[-1][0]:
            rate = rate_at(best)
        if abs(math.log(max(rate, 1e-9) / target_hz)) > math.log(TOLERANCE):
            log.warning("network.init_rate: population '%s' reaches %.3g Hz at best (target %.3g Hz, weight "
                        "scale %.3g); its rate stays off target", name, rate, target_hz, 2.0 ** best)
        for stage in stages:
            stage.weight_scale = getattr(stage, "weight_scale", 1.0) * 2.0 ** best
        found[name] = {"scale": 2.0 ** best, "rate_hz": rate}
    return found


def calibrate(network, encoder, data, batch_size: int, device: torch.device) -> dict[str, dict[str, float]]:
    """``network.init_rate``: :func:`calibrate_rates` on the first ``batch_size`` training samples of
    ``data``, encoded by ``encoder``; the global random state (CPU and ``device``) is left as it was."""
    if network.init_rate is None:
        return {}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        x = calibration_batch(data, batch_size).to(device)
        found = calibrate_rates(network, encoder(x), network.init_rate)
    if found:
        log.info("network.init_rate %.3g Hz: weight scale %s", network.init_rate,
                 ", ".join(f"{name} x{f['scale']:.3g} ({f['rate_hz']:.3g} Hz)" for name, f in found.items()))
    return found


def calibration_batch(data, batch_size: int) -> torch.Tensor:
    """The first ``batch_size`` training samples (in stored order) as one tensor."""
    if hasattr(data, "train_set"):
        dataset = data.train_set
        return torch.stack([torch.as_tensor(dataset[i][0]) for i in range(min(batch_size, len(dataset)))])
    return data.x_train[:batch_size]
