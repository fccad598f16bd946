"""Current-clamp task: drive one population with a current and record every step.

``snnrun experiment=current_clamp neuron=<name> clamp.current=<amplitude | [a, b, ...] | trace.npy>
clamp.duration=<ms> network.dt=<ms>`` simulates ``len(amplitudes)`` neurons of the chosen model
(one per amplitude, so a list gives an f–I curve in one run) and writes

- ``monitors/<population>.npz``: ``v`` [T, N] and ``spikes`` [T, N] (index t = state after step t;
  ``v`` in the model's own units) and ``time_ms`` [T], ``current`` [T, N];
- ``spike_times.csv``: ``neuron, current, time_ms``;
- ``fi_curve.csv``: ``neuron, current, spikes, rate_hz`` (rate over the time the current is on);
- ``summary.json``.

It runs with the run services (:mod:`snnrun.services`): the neuron module is called on chunks of
``clamp.checkpoint_every`` ms, each call continuing from the state the last one left
(``Neuron.state``: every built-in model steps from it, so the chunks give exactly the one-call
result). After each chunk a metrics row (``steps, time_ms, spikes``: spikes so far) goes to
``logger.sinks`` and the state is checkpointed: the neuron's state and buffers, the recorded ``v``
and spikes so far, the RNG state (escape noise). ``snnrun resume RUN_DIR`` (after SIGINT/SIGTERM,
status ``interrupted``, or a crash) continues from there and writes the same files. A model that
keeps no ``NamedTuple`` state between calls is simulated again in one call, checkpointed only at
the end (a warning says so).
"""

from __future__ import annotations

import copy
import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from ..build import protocol_spec
from ..errors import ConfigError, DataError
from ..reproducibility import rng_state, set_rng_state
from ..schema import param
from ..services import RunServices

log = logging.getLogger("snnrun")


@dataclass
class ClampParams:
    current: Any = param(1.0, help="amplitude, list of amplitudes (one neuron each), or path to a .npy trace [T] or [T, N]")
    shape: str = param("constant", choices=("constant", "step", "ramp"),
                       help="waveform; constant: on throughout; step: on from onset to offset; ramp: 0 -> amplitude from onset to offset")
    onset: float = param(0.0, unit="ms", ge=0, help="when a step/ramp starts")
    offset: float | None = param(None, unit="ms", help="when a step/ramp ends (null = end)")
    duration: float = param(200.0, unit="ms", gt=0, help="simulated time")
    population: str = param("cell", help="name used for the monitor file")
    checkpoint_every: float = param(1000.0, unit="ms", gt=0, help="simulated time between checkpoints (and "
                                                                  "metrics rows); a resume continues from the last")


def clamp_current(p: ClampParams, dt: float, key: str = "clamp") -> torch.Tensor:
    """The injected current [T, N] in the model's input units."""
    steps = int(round(p.duration / dt))
    if steps < 1:
        raise ConfigError(f"{key}.duration: {p.duration} ms is shorter than dt = {dt} ms")
    if isinstance(p.current, str):
        path = Path(p.current)
        if not path.is_file():
            raise DataError(f"{key}.current: trace file {path} not found")
        try:
            trace = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise DataError(f"{key}.current: {path} is not a readable .npy array ({err})") from None
        if trace.ndim == 1:
            trace = trace[:, None]
        if trace.ndim != 2 or trace.shape[0] < steps or not np.issubdtype(trace.dtype, np.number):
            raise DataError(f"{key}.current: {path} must be a numeric [T] or [T, N] array with T >= {steps} "
                            f"steps (duration / dt), got shape {list(trace.shape)} of {trace.dtype}")
        return torch.as_tensor(trace[:steps], dtype=torch.float64)
    amplitudes = p.current if isinstance(p.current, (list, tuple)) else [p.current]
    if not amplitudes or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in amplitudes):
        raise ConfigError(f"{key}.current: expected a number, a list of numbers or a .npy path, got {p.current!r}")
    amp = torch.tensor([float(a) for a in amplitudes], dtype=torch.float64)
    t = torch.arange(steps, dtype=torch.float64) * dt
    end = p.offset if p.offset is not None else p.duration
    if p.shape != "constant" and end <= p.onset:
        raise ConfigError(f"{key}.offset: {p.offset} ms must be after clamp.onset ({p.onset} ms) for a {p.shape}")
    if p.shape == "constant":
        envelope = torch.ones(steps, dtype=torch.float64)
    elif p.shape == "step":
        envelope = ((t >= p.onset) & (t < end)).double()
    else:
        envelope = ((t - p.onset) / max(end - p.onset, dt)).clamp(0, 1) * (t < end).double()
    return envelope[:, None] * amp[None, :]


def stimulus_ms(p: ClampParams) -> float:
    """How long the current is on (ms): the whole run, or ``offset − onset`` for a step or ramp."""
    if p.shape == "constant" or isinstance(p.current, str):
        return p.duration
    end = min(p.offset if p.offset is not None else p.duration, p.duration)
    return max(end - min(p.onset, p.duration), 0.0)


SECTIONS = {"clamp": ClampParams}


def _build(cfg: DictConfig):
    """(config, clamp params, network params, current [T, N], neuron module, seed) of the protocol."""
    spec = protocol_spec(cfg)
    p, net = spec.sections["clamp"], spec.network.params
    if spec.neuron is None:
        raise ConfigError("neuron: current_clamp drives the top-level `neuron` model; set neuron=<model> "
                          "(e.g. neuron=lif)")
    current = clamp_current(p, net.dt)
    neuron = spec.neuron.build(shape=(current.shape[1],), dt=net.dt).double()
    return spec.config, p, net, current, neuron, spec.seed


def check(cfg: DictConfig) -> list[str]:
    """The protocol's build as a dry run (the current trace is read, nothing is simulated)."""
    _build(cfg)
    return []


#: metrics rows: one per chunk of ``checkpoint_every`` ms (steps and time simulated, spikes so far)
COLUMNS = ["steps", "time_ms", "spikes"]


def _neuron_state(neuron) -> dict | None:
    """The neuron module's state between calls (``self.state``, a NamedTuple of tensors) as a dict,
    or None when it keeps none (or one of another kind) there."""
    state = neuron.state
    if isinstance(state, tuple) and hasattr(state, "_asdict") and all(
            isinstance(v, torch.Tensor) for v in state):
        return dict(state._asdict())
    return None


def run(cfg: DictConfig, run_dir: Path, resume: bool = False) -> dict:
    """Simulate the top-level ``neuron`` model under ``clamp`` and record it (see module docstring);
    ``resume`` continues from the run directory's last checkpoint."""
    config, p, net, current, neuron, seed = _build(cfg)
    steps, count = current.shape
    chunk = max(1, int(round(p.checkpoint_every / net.dt)))
    run_dir = Path(run_dir)
    services = RunServices.from_config(cfg, run_dir, "current_clamp", seed, COLUMNS, "steps")

    def snapshot(done: int, spikes: list, v: list, carried: dict | None) -> dict:
        return {"steps_done": done, "neuron": neuron.state_dict(), "neuron_state": carried,
                "spikes": torch.cat(spikes) if spikes else current.new_zeros(0, count),
                "v": torch.cat(v) if v else current.new_zeros(0, count)}

    def body(services: RunServices, state: dict | None) -> dict:
        nonlocal chunk
        if state is None:
            done, spikes, v = 0, [], []
            services.checkpoint(0, snapshot(0, spikes, v, None))
        else:
            done, spikes, v = int(state["steps_done"]), [state["spikes"]], [state["v"]]
            neuron.load_state_dict(state["neuron"])
            if state["neuron_state"] is not None:  # the state the next call steps from
                rest = neuron.initial_state((1, count), current.device, current.dtype)
                neuron.state = rest._replace(**state["neuron_state"])
        total = int(sum(s.sum() for s in spikes))
        initial = (rng_state(), copy.deepcopy(neuron.state_dict())) if done == 0 else None
        while done < steps:
            services.poll(f"step {done}/{steps}")
            end = min(done + chunk, steps)
            with torch.no_grad():
                out, traces = neuron(current[done:end, None, :], record=("v",))
            carried = _neuron_state(neuron)
            if carried is None and end < steps and initial is not None:
                # a model that keeps no state between calls (or none a checkpoint can hold): chunks would not
                # continue each other exactly, so the whole run again in one call, checkpointed at its end
                log.warning("current_clamp: neuron %s keeps no NamedTuple state between calls (self.state); "
                            "simulating the whole run in one call, without intermediate checkpoints",
                            config["neuron"]["name"])
                set_rng_state(initial[0])
                neuron.load_state_dict(initial[1])
                neuron.reset()
                chunk = steps
                continue
            spikes.append(out[:, 0])
            v.append(traces["v"][:, 0])
            total += int(out.sum())
            done = end
            services.log({"steps": done, "time_ms": done * net.dt, "spikes": total})
            if done < steps:
                services.checkpoint(done, snapshot(done, spikes, v, carried))
        fields = _write_outputs(config, p, net, current, torch.cat(spikes).numpy(), torch.cat(v).numpy(), run_dir)
        services.checkpoint(steps, snapshot(steps, spikes, v, _neuron_state(neuron)))  # the final state
        return fields

    return services.run(body, resume)


def _write_outputs(config: dict, p: ClampParams, net, current: torch.Tensor, spikes: np.ndarray, v: np.ndarray,
                   run_dir: Path) -> dict:
    """``monitors/<population>.npz``, ``spike_times.csv`` and ``fi_curve.csv``; returns the summary fields."""
    steps, count = current.shape
    (run_dir / "monitors").mkdir(parents=True, exist_ok=True)
    time_ms = (np.arange(steps) + 1) * net.dt
    np.savez(run_dir / "monitors" / f"{p.population}.npz", v=v, spikes=spikes, time_ms=time_ms,
             current=current.numpy())
    labels = current.abs().max(0).values.tolist() if isinstance(p.current, str) else \
        [float(a) for a in (p.current if isinstance(p.current, (list, tuple)) else [p.current])]
    with open(run_dir / "spike_times.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["neuron", "current", "time_ms"])
        for t, n in zip(*np.nonzero(spikes)):
            writer.writerow([int(n), labels[n], float(time_ms[t])])
    on_ms = stimulus_ms(p)
    fi = []
    with open(run_dir / "fi_curve.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["neuron", "current", "spikes", "rate_hz"])
        for n in range(count):
            total = int(spikes[:, n].sum())
            rate = total / (on_ms / 1000.0) if on_ms > 0 else 0.0
            fi.append({"current": labels[n], "spikes": total, "rate_hz": rate})
            writer.writerow([n, labels[n], total, rate])
    return {"neuron": config["neuron"]["name"], "dt_ms": net.dt, "duration_ms": p.duration, "steps": steps,
            "fi_curve": fi, "message": "f-I: " + ", ".join(f"{r['current']:g} -> {r['rate_hz']:.1f} Hz" for r in fi)}
