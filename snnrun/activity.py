"""Activity check: silent and saturated populations, reported once with what to try.

After the first :data:`FIRST_BATCHES` training batches of a run and after every training epoch,
each spiking population that is not an input gets its mean firing rate

    r = 1000 / dt · spikes / (neurons · steps · samples)        [Hz; dt in ms]

over the batches seen (the first batches, or the epoch: the ``train/rate/<pop>`` column). It is

- **silent** when ``r < SILENT_HZ`` (0.1 Hz: with dt = 1 ms, under one spike in 10 000 steps), and
- **saturated** when ``r ≥ SATURATED · 1000 / dt`` (a spike on at least 95 % of the steps).

A finding is reported when a population enters that state: one WARNING naming the population,
its rate, the fraction of its neurons that never spiked, and the config keys to change, with their
current values (the gain of its incoming projections, its neuron's input gain ``r``, threshold and
refractory period, the encoder's rate or gain). It is not repeated while the state lasts; an epoch
that finds the population normal again logs one INFO line ("recovered"), and a relapse is reported
again. The early check skips the populations the decoder reads while a gradient learner trains
them: a trained readout often starts silent and the loss wakes it within the first epoch; the
end-of-epoch check covers it.

``trainer.activity_check``: ``warn`` (default), ``stop`` (the first finding ends the run with an
:class:`ActivityError`: one line, exit code 2; the checkpoints written so far are kept and
``summary.json`` says ``failed``), ``off``. ``summary.json`` holds ``activity``: per population
ever reported, ``status`` (silent, saturated, or ok once recovered), ``rate_hz`` and
``silent_fraction`` of the last check, ``first_seen_epoch`` (the 1-based epoch, as in
``metrics.csv``), ``first_seen_batch`` (when the early check found it), ``recovered_epoch``.
The findings persist in the checkpoints, so a resumed run does not report them again.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import torch

from .calibrate import kaiming_stages
from .errors import ConfigError, SnnrunError

log = logging.getLogger("snnrun")

#: training batches after which the first check runs
FIRST_BATCHES = 2
#: a population below this mean rate (Hz) is silent
SILENT_HZ = 0.1
#: a population spiking on at least this fraction of its steps is saturated
SATURATED = 0.95
MODES = ("warn", "stop", "off")


class ActivityError(SnnrunError):
    """``trainer.activity_check=stop`` found a silent or saturated population."""


class ActivityCheck:
    """What the runner calls: :meth:`after_batch` (each training batch; acts once, after
    :data:`FIRST_BATCHES`), :meth:`after_epoch` (each epoch's train metrics), :meth:`summary`.
    ``dist``: the runner's :class:`~snnrun.distributed.DataParallel` (rank 0's rates decide on
    every rank, and only rank 0 logs)."""

    def __init__(self, exp, dist=None, mode: str | None = None):
        self.exp = exp
        self.mode = mode or getattr(exp.trainer, "activity_check", "warn")
        if self.mode not in MODES:
            raise ConfigError(f"trainer.activity_check: {self.mode!r} is not one of {', '.join(MODES)}")
        self.dist = dist
        net = exp.network
        self.dt = net.dt
        self.populations = [n for n, p in net.populations.items() if not p.is_input and p.neuron.spiking]
        trained = any(lr.gradient for lr in exp.learners)
        self.early = [n for n in self.populations if not (trained and n in net.outputs)]
        self.status: dict[str, str] = {}  # the last check's verdict per population
        self.records: dict[str, dict[str, Any]] = {}  # summary.json entries of the populations ever reported
        self.checked_early = False

    # --- runner hooks ----------------------------------------------------------------------
    def after_batch(self, batch: int, epoch: int, tally) -> None:
        """After training batch ``batch`` (0-based) of epoch ``epoch`` (epochs completed before it):
        the first check, from ``tally``'s spike counts (:class:`snnrun.tally.EpochTally`)."""
        if self.checked_early or self.mode == "off" or batch + 1 < FIRST_BATCHES:
            return
        self.checked_early = True
        measured = {}
        for name in (n for n in self.early if tally.counts.get(n)):
            counts = torch.stack(tally.counts[name]).sum(0).double()  # each neuron's spikes [*shape]
            per_step = float(counts.sum()) / max(counts.numel() * tally.steps * tally.count, 1)
            measured[name] = (per_step * 1000.0 / self.dt, float((counts == 0).double().mean()))
        self._judge(self._agree(measured), epoch + 1, f"after the first {batch + 1} training batches", batch + 1)

    def after_epoch(self, epoch: int, metrics: dict) -> None:
        """After training epoch ``epoch`` (1-based): from its ``train/rate/<pop>`` (Hz) and, when
        the spike metrics are on, ``train/silent/<pop>`` columns (the same on every rank)."""
        self.checked_early = True  # an epoch of fewer batches than FIRST_BATCHES: this is the first check
        if self.mode == "off":
            return
        measured = {n: (metrics[f"train/rate/{n}"], metrics.get(f"train/silent/{n}")) for n in self.populations
                    if isinstance(metrics.get(f"train/rate/{n}"), (int, float))}
        self._judge(measured, epoch, f"in training epoch {epoch}")

    def summary(self) -> dict[str, dict[str, Any]]:
        return {n: dict(r) for n, r in self.records.items()}

    def state_dict(self) -> dict:
        return {"status": dict(self.status), "records": self.summary()}

    def load_state_dict(self, state: dict | None) -> None:
        state = state or {}
        self.status = dict(state.get("status", {}))
        self.records = {n: dict(r) for n, r in state.get("records", {}).items()}

    # --- verdicts ----------------------------------------------------------------------------
    def _agree(self, measured: dict) -> dict:
        return self.dist.agree(measured) if self.dist is not None else measured

    def _kind(self, rate_hz: float) -> str:
        if rate_hz < SILENT_HZ:
            return "silent"
        return "saturated" if rate_hz >= SATURATED * 1000.0 / self.dt else "ok"

    def _judge(self, measured: dict[str, tuple[float, float | None]], epoch: int, when: str,
               batch: int | None = None) -> None:
        main = self.dist is None or self.dist.is_main
        stops = []
        for name, (rate_hz, silent) in measured.items():
            kind, before = self._kind(rate_hz), self.status.get(name, "ok")
            self.status[name] = kind
            record = self.records.get(name)
            if record is not None:
                record.update(rate_hz=rate_hz, **({"silent_fraction": silent} if silent is not None else {}))
            if kind == before:
                continue
            if kind == "ok":  # reported before, normal again
                record.update(status="ok", recovered_epoch=epoch)
                if main:
                    log.info("activity: population '%s' recovered %s (%.3g Hz)", name, when, rate_hz)
                continue
            if record is None:
                record = self.records[name] = {"first_seen_epoch": epoch,
                                               **({"first_seen_batch": batch} if batch is not None else {})}
            record.update(status=kind, rate_hz=rate_hz,
                          **({"silent_fraction": silent} if silent is not None else {}))
            record.pop("recovered_epoch", None)
            message = self.describe(name, kind, rate_hz, silent, when)
            if main:
                log.warning("activity: %s", message)
            stops.append(message)
        if stops and self.mode == "stop":
            raise ActivityError(f"trainer.activity_check=stop: {stops[0]}"
                                + (f" (and {len(stops) - 1} more population(s))" if len(stops) > 1 else ""))

    def describe(self, name: str, kind: str, rate_hz: float, silent: float | None, when: str) -> str:
        """One line: the population, its state and rate, what to try."""
        if kind == "saturated":
            detail = f"{rate_hz:.4g} Hz: a spike on {rate_hz * self.dt / 10:.0f}% of the steps at dt = {self.dt:g} ms"
        else:
            detail = f"{rate_hz:.2g} Hz"
        if silent is not None:
            size = self.exp.network.populations[name].neuron.shape
            detail += f"; {silent:.0%} of its {math.prod(size)} neurons never spiked"
        hints = self.hints(name, kind)
        return f"population '{name}' is {kind} {when} ({detail})" + (f"; try: {', '.join(hints)}" if hints else "")

    # --- what to try ---------------------------------------------------------------------------
    def hints(self, name: str, kind: str) -> list[str]:
        """The config keys that move population ``name``'s rate the right way, with current values."""
        up = kind == "silent"
        verb = "raise" if up else "lower"
        net, spec = self.exp.network, self.exp.spec.network
        hints = []
        quiet = [p.source for p in net.incoming[name] if up and self.status.get(p.source) == "silent"]
        if quiet:
            hints.append(f"first revive its silent input population '{quiet[0]}'")
        calibrated = net.init_rate is not None and bool(kaiming_stages(net, name))  # its gains are recalibrated
        for proj in net.incoming[name]:
            if proj.source == name and up:
                continue  # a silent population's own recurrence carries nothing
            source = spec.populations.get(proj.source)
            if source is not None and source.sign == "inhibitory":
                continue
            key = _gain_key(proj, spec.projections.get(proj.name))
            if key and not (calibrated and key[1] != 0):  # a calibrated gain is rescaled anyway (unless it is 0)
                hints.append(f"{verb} {key[0]} (now {key[1]:g})")
        if up and kaiming_stages(net, name):
            declared = "init_rate" in (self.exp.config.get("network") or {})
            hints.append(f"raise network.init_rate (now {net.init_rate:g} Hz)" if net.init_rate is not None else
                         f"set {'' if declared else '+'}network.init_rate=20 (rescales the "
                         f"initial weights to 20 Hz on the first batch)")
        neuron = net.populations[name].neuron
        pop = spec.populations.get(name)
        prefix = pop.neuron.key if pop is not None and pop.neuron is not None else "neuron"
        fields = {f.name: f for f in dataclasses.fields(neuron.params)} if dataclasses.is_dataclass(neuron.params) \
            else {}
        if "r" in fields:
            hints.append(f"{verb} {prefix}.r (now {neuron.params.r:g}, the input gain)")
        threshold = fields.get("v_th")
        help_text = threshold.metadata.get("help", "") if threshold else ""
        if threshold and "threshold" in help_text and "detection" not in help_text:
            unit = threshold.metadata.get("unit", "")
            hints.append(f"{'lower' if up else 'raise'} {prefix}.v_th (now {neuron.params.v_th:g}"
                         f"{' ' + unit if unit else ''})")
        if not up and "refractory" in fields:
            hints.append(f"raise {prefix}.refractory (now {neuron.params.refractory:g} ms)")
        if any(net.populations[p.source].is_input for p in net.incoming[name]):
            hint = self._encoder_hint(up)
            if hint:
                hints.append(hint)
        return hints

    def _encoder_hint(self, up: bool) -> str | None:
        params = getattr(self.exp.encoder, "params", None)
        if not dataclasses.is_dataclass(params):
            return None
        names = {f.name for f in dataclasses.fields(params)}
        for field in ("max_rate", "gain", "scale"):
            if field not in names:
                continue
            value = getattr(params, field)
            if field == "max_rate" and up and value * self.dt / 1000.0 >= 1:
                continue  # already a spike every step at full intensity
            unit = " Hz" if field == "max_rate" else ""
            return f"{'raise' if up else 'lower'} encoder.{field} (now {value:g}{unit})"
        return None


def _gain_key(proj, spec) -> tuple[str, float] | None:
    """(``network.projections.<name>.synapse[.i].gain``, its value) of the first stage of ``proj``
    with a ``gain``, when the config spells the projection out (``spec``, its
    :class:`~snnrun.topology.ProjectionSpec`; None for a graph read from NIR)."""
    if spec is None:
        return None
    for stage, parsed in zip(proj.stages, spec.stages):
        params = getattr(stage, "params", None)
        if dataclasses.is_dataclass(params) and hasattr(params, "gain"):
            return f"{parsed.key}.gain", float(params.gain)
    return None
