"""Plasticity protocol: a rule's learning window measured by spike pairing.

``snnrun experiment=stdp_window learner=<rule>`` builds one synapse (a 1 → 1 dense projection
at the network's ``dt``, initial weight ``protocol.w0``) for every Δt = t_post − t_pre in
``[dt_min, dt_max]`` by ``dt_step`` ms, and drives the rule's per-step hook with ``pairings``
pre/post pairs at ``frequency`` Hz (pre at ``k/frequency``, post Δt later; the first pair
starts after ``|dt_min|`` ms so every spike lies inside the simulation). Reward-modulated
rules receive a positive reward at the end (a correct one-class score). Writes
``<run dir>/stdp_window.csv`` (``dt_ms, dw``; dw = final − initial weight),
``stdp_window.png`` when matplotlib is installed, and ``summary.json``.

It runs with the run services (:mod:`snnrun.services`): each Δt's row (``point, dt_ms, dw``) goes
to ``logger.sinks`` (``metrics.csv``/``.jsonl``, TensorBoard, ...) as it is measured, followed by a
checkpoint of the rows so far, so ``snnrun resume RUN_DIR`` (after SIGINT/SIGTERM, status
``interrupted``, or a crash) measures only the Δt values still missing; each Δt's synapse starts
afresh, so the window equals the uninterrupted run's.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from ..build import protocol_spec
from ..errors import ConfigError
from ..learning.local import LearnerSpec, parse_learners
from ..network import build_network
from ..schema import param
from ..services import RunServices


@dataclass
class ProtocolParams:
    dt_min: float = param(-50.0, unit="ms", help="most negative Δt = t_post − t_pre")
    dt_max: float = param(50.0, unit="ms", help="most positive Δt")
    dt_step: float = param(2.0, unit="ms", gt=0, help="spacing of the Δt values")
    pairings: int = param(60, ge=1, help="pre/post pairs per Δt")
    frequency: float = param(1.0, unit="Hz", gt=0, help="pairing frequency")
    w0: float = param(0.5, help="initial weight")


def _check(learner, p: ProtocolParams, key: str):
    """The rule's spec (a :class:`~snnrun.learning.local.LearnerSpec`, or a ``learner`` node parsed
    into one), the protocol's timing checked."""
    if p.dt_min > p.dt_max:
        raise ConfigError(f"protocol.dt_min: {p.dt_min} is larger than dt_max = {p.dt_max}")
    period = 1000.0 / p.frequency
    if period <= max(abs(p.dt_min), abs(p.dt_max)):
        raise ConfigError(f"protocol.frequency: {p.frequency} Hz leaves {period:g} ms between pairs, not more than "
                          f"the largest |Δt| ({max(abs(p.dt_min), abs(p.dt_max)):g} ms)")
    spec = learner if isinstance(learner, LearnerSpec) else parse_learners({"learner": learner})[0]
    if spec.cls.gradient:
        raise ConfigError(f"{key}.name: '{spec.cls.registry_name}' is a gradient learner; the pairing protocol "
                          f"needs a local rule (stdp, postpre, mstdp, mstdpet, ...)")
    return spec


def window_points(p: ProtocolParams) -> list[float]:
    """The Δt values (ms) of the protocol: ``dt_min`` to ``dt_max`` by ``dt_step``."""
    n = int(round((p.dt_max - p.dt_min) / p.dt_step)) + 1
    return [p.dt_min + i * p.dt_step for i in range(n)]


def _pairing(spec, p: ProtocolParams, dt: float, delta: float, key: str,
             dry_run: bool = False) -> float | None:
    """Δw of one synapse under ``pairings`` pre/post pairs at ``delta`` (a fresh network and learner;
    ``dry_run``: build them, simulate nothing, None)."""
    period = 1000.0 / p.frequency
    offset = abs(min(p.dt_min, 0.0))
    steps = int(round((offset + (p.pairings - 1) * period + max(delta, 0.0) + 2 * dt) / dt)) + 1
    pre_steps = {int(round((offset + k * period) / dt)) for k in range(p.pairings)}
    post_steps = {int(round((offset + k * period + delta) / dt)) for k in range(p.pairings)}
    node = {"dt": dt, "duration": steps * dt, "populations": {"pre": {"shape": 1}, "post": {"shape": 1}},
            "projections": {"syn": {"from": "pre", "to": "post",
                                    "synapse": {"name": "dense", "init": "constant", "value": p.w0}}}}
    net = build_network(node, {"name": "lif"}, (1,)).double()
    learner = spec.cls(spec.params, network=net, key=key)
    if dry_run:
        return None
    learner.begin_sample(1)
    weight = net.projections["syn"].stages[0].weight
    start_w = float(weight.detach().clone().item())
    zero, one = torch.zeros(1, 1, dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64)
    previous: dict = {}
    for t in range(steps):
        now = {"pre": one if t in pre_steps else zero, "post": one if t in post_steps else zero}
        learner.on_step(t, now, previous)
        previous = now
    learner.end_sample(torch.ones(1, 1, dtype=torch.float64), torch.tensor([1 if spec.cls.registry_name == "tempotron" else 0]))
    return float(weight.detach().item()) - start_w


def measure_window(learner, p: ProtocolParams, dt: float, key: str = "learner",
                   dry_run: bool = False) -> list[tuple[float, float]]:
    """``[(Δt, Δw)]`` of the rule ``learner`` (a ``learner`` node or its parsed
    :class:`~snnrun.learning.local.LearnerSpec`) under the pairing protocol (``dry_run``: build the
    first pairing's network and learner, simulate nothing, return [])."""
    spec = _check(learner, p, key)
    deltas = window_points(p)
    if dry_run:
        _pairing(spec, p, dt, deltas[0], key, dry_run=True)
        return []
    return [(delta, _pairing(spec, p, dt, delta, key)) for delta in deltas]


SECTIONS = {"protocol": ProtocolParams}
#: metrics rows: one per Δt (``point`` = its 1-based index)
COLUMNS = ["point", "dt_ms", "dw"]


def _build(cfg: DictConfig):
    """(spec, protocol params, network params, the rule's LearnerSpec) of the protocol, the rule and
    the timing checked."""
    spec = protocol_spec(cfg)
    p = spec.sections["protocol"]
    return spec, p, spec.network.params, _check(spec.learners[0], p, "learner")


def check(cfg: DictConfig) -> list[str]:
    """The protocol's build as a dry run: its parameters, and the learner built on the first
    pairing's network (nothing simulated)."""
    _, p, net, rule = _build(cfg)
    measure_window(rule, p, net.dt, dry_run=True)
    return []


def run(cfg: DictConfig, run_dir: Path, resume: bool = False) -> dict:
    """Run the pairing protocol for the configured ``learner`` (see module docstring); ``resume``
    continues from the run directory's last checkpoint (the Δt measured so far)."""
    spec, p, net, rule = _build(cfg)
    name = spec.config["learner"]["name"]  # as configured (an alias such as postpre stays one)
    deltas = window_points(p)
    run_dir = Path(run_dir)
    services = RunServices.from_config(cfg, run_dir, "stdp_window", spec.seed, COLUMNS, "point")

    def body(services: RunServices, state: dict | None) -> dict:
        rows = [] if state is None else [(float(a), float(b)) for a, b in state["rows"]]
        if state is None:
            services.checkpoint(0, {"rows": []})
        for i in range(len(rows), len(deltas)):
            services.poll(f"Δt {deltas[i]:g} ms ({i + 1}/{len(deltas)})")
            rows.append((deltas[i], _pairing(rule, p, net.dt, deltas[i], "learner")))
            services.log({"point": i + 1, "dt_ms": rows[-1][0], "dw": rows[-1][1]})
            services.checkpoint(i + 1, {"rows": [list(r) for r in rows]})
        with open(run_dir / "stdp_window.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["dt_ms", "dw"])
            writer.writerows(rows)
        plot = _plot(rows, run_dir / "stdp_window.png", name)
        ltp = max(rows, key=lambda r: r[1])
        ltd = min(rows, key=lambda r: r[1])
        return {"learner": name, "dt_ms": net.dt, "points": len(rows), "max_dw": ltp[1],
                "max_dw_at_ms": ltp[0], "min_dw": ltd[1], "min_dw_at_ms": ltd[0], "plot": plot,
                "message": f"window of {name}: max dw {ltp[1]:.4g} at {ltp[0]:g} ms, "
                           f"min dw {ltd[1]:.4g} at {ltd[0]:g} ms -> {run_dir / 'stdp_window.csv'}"}

    return services.run(body, resume)


def _plot(rows, path: Path, title: str) -> str | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.axhline(0, color="0.7", lw=0.8)
    ax.axvline(0, color="0.7", lw=0.8)
    ax.plot([r[0] for r in rows], [r[1] for r in rows], "o-", ms=3)
    ax.set_xlabel("Δt = t_post − t_pre (ms)")
    ax.set_ylabel("Δw")
    ax.set_title(f"learning window: {title}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)
