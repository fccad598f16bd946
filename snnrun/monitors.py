"""Monitors: record chosen variables of chosen populations/projections to ``<run dir>/monitors/``.

Configured under the top-level ``monitors:`` key (``configs/monitors/default.yaml``)::

    monitors:
      probes:
        hidden_v:                      # -> monitors/hidden_v.npz
          target: hidden               # a population or a projection
          vars: [spikes, v]            # population: spikes and any neuron state field (v, theta, a, i_syn, ...)
                                       #   and `current` (summed synaptic input); projection: weight, current
          split: test                  # which data the probe is shown (train | val | test)
          samples: 4                   # the first N samples, a list of indices, or all
          epochs: last                 # last | all | [0, 1, 5] (0 = before training)
          start_ms: 0.0                # time window [start_ms, stop_ms)
          stop_ms: null

Each probe (:mod:`snnrun.probes`) writes ``<probe>.npz``. ``monitors.sample`` writes
``monitors/sample.npz`` at the end of a run: one test batch with the input spikes and every
population's spikes and state, the weights, labels and predictions (what ``snnrun plot`` draws).
"""

from __future__ import annotations

import csv
import logging
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError
from .extras import needs
from .faults import atomic_path
from .probes import (Probe, ProbeParams, samples_of, simulate, split_size,  # noqa: F401 (re-exported)
                     synaptic_current, write_npz)
from .schema import param
from .spike_metrics import SpikeMetrics, projection_weight

log = logging.getLogger("snnrun")


@dataclass
class MonitorsParams:
    enabled: bool = param(True, help="record the probes, the end-of-run sample and the spike metrics")
    sample: bool = param(True, help="write monitors/sample.npz (one test batch, every population) at the end")
    sample_size: int = param(8, ge=1, help="samples in monitors/sample.npz")
    max_mb: float = param(256.0, gt=0, unit="MB", help="cap on the size of all monitor files of a run")
    metrics: dict = param({}, help="spike metrics options: enabled, saturation, pj_per_synop")
    probes: dict = param({}, help="name -> {target, vars, split, samples, epochs, start_ms, stop_ms}")


def confusion_counts(labels: torch.Tensor, pred: torch.Tensor, classes: int = 0) -> np.ndarray:
    """``[classes, classes]`` counts of (label, prediction) pairs, rows the labels; ``classes`` is
    grown to fit every label and prediction (once per epoch, in numpy: a handful of values)."""
    labels = labels.reshape(-1).cpu().numpy().astype(np.int64)
    pred = pred.reshape(-1).cpu().numpy().astype(np.int64)
    classes = int(max(classes, labels.max() + 1, pred.max() + 1))
    return np.bincount(labels * classes + pred, minlength=classes * classes).reshape(classes, classes)


class Instruments:
    """What the runner calls to see inside a run: spike metrics, probes, the sample file, plots, tensor logs.

    Runner hooks: ``columns(splits)`` at init; per epoch and split ``begin``, ``observe`` (each
    batch), ``end`` (returns metric columns); ``start`` before the first epoch; ``after_epoch``
    after each epoch's checkpoint; ``finish`` at the end, before ``summary.json`` (the last file a run
    writes: :func:`snnrun.faults.finish_then_summarise`). Files are written atomically; a full disk
    is an :class:`~snnrun.errors.SnnrunError` naming the file and leaves no partial file.
    """

    def __init__(self, exp, run_dir: Path):
        self.exp, self.run_dir = exp, Path(run_dir)
        spec = exp.spec
        self.params = spec.monitors
        metrics = replace(spec.spike_metrics, enabled=spec.spike_metrics.enabled and self.params.enabled)
        self.metrics = SpikeMetrics(metrics, exp.network, exp.learners)
        self.plots = spec.plots
        self.probes: list[Probe] = []
        parts = self.run_dir / "monitors" / ".parts"
        if self.params.enabled:
            for name, probe in spec.probes.items():
                self.probes.append(Probe(name, probe, exp, f"monitors.probes.{name}", parts))
        expected = sum(p.expected_bytes() for p in self.probes)
        if expected > self.params.max_mb * 1e6:
            detail = ", ".join(f"{p.name} {p.expected_bytes() / 1e6:.1f} MB ({len(p.epochs)} records x "
                               f"{p.bytes_per_record() / 1e6:.2f} MB)" for p in self.probes)
            raise ConfigError(f"monitors.max_mb: the probes would write {expected / 1e6:.1f} MB ({detail}), above "
                              f"the cap of {self.params.max_mb:g} MB; record fewer samples, epochs, variables or a "
                              f"shorter window, or raise monitors.max_mb")
        self.written = 0
        self.confusion: np.ndarray | None = None
        self._rates: dict[str, np.ndarray] = {}
        self._raster: dict[str, torch.Tensor] = {}

    # --- metric columns ----------------------------------------------------------------
    def columns(self, splits: tuple[str, ...]) -> list[str]:
        return self.metrics.columns(splits)

    def begin(self, split: str, train: bool) -> None:
        self.metrics.begin(train)

    def observe(self, split: str, out, last: bool = False) -> None:
        """One batch of ``split`` (the runner counts its spikes for the metrics, see :meth:`end`);
        the last test batch's first sample is kept for the raster image."""
        if last and split == "test":
            self._raster = {n: s[:, 0].detach().cpu() for n, s in out.spikes.items()}

    def learner_batch(self, values: dict | None) -> None:
        """What the local learners returned for this batch (e.g. ``{"reward": r}``)."""
        self.metrics.observe_learners(values)

    def end(self, split: str, train: bool, pred: torch.Tensor | None = None, labels: torch.Tensor | None = None,
            classes: int = 0, counts: dict[str, np.ndarray] | None = None, samples: int = 0,
            steps: int = 0) -> dict[str, float]:
        """The split's metric columns. ``pred``/``labels``: the epoch's predictions, for the test
        split's confusion matrix (``classes``: the score width, grown to fit every value);
        ``counts``: each spiking population's spike count per neuron over the epoch's ``samples``
        samples of ``steps`` steps."""
        if split == "test" and pred is not None and pred.numel():
            self.confusion = confusion_counts(labels, pred, classes)
        columns = self.metrics.end(split, train, counts, samples, steps)
        if train and self.metrics.samples:
            scale = 1000.0 / (self.metrics.steps * self.metrics.samples * self.exp.network.dt)
            self._rates = {n: c * scale for n, c in self.metrics.neuron_counts().items()}
        return columns

    # --- epochs --------------------------------------------------------------------------
    def start(self, epoch: int) -> None:
        if epoch == 0:
            self._record_probes(0)

    def after_epoch(self, epoch: int, metrics_log) -> None:
        self._record_probes(epoch)
        if not getattr(metrics_log, "wants_tensors", True):
            return
        histograms = {f"weights/{n}": projection_weight(self.exp.network.projections[n]).float().cpu().numpy()
                      for n in self.metrics.weighted}
        histograms.update({f"rates_hz/{n}": r for n, r in self._rates.items()})
        images = {f"raster/{n}": raster_image(s) for n, s in self._raster.items()}
        metrics_log.log_tensors(epoch, histograms, images)

    def _record_probes(self, epoch: int) -> None:
        for probe in self.probes:
            if epoch not in probe.epochs or epoch in probe._meta()["epochs"]:
                continue
            if self.written + probe.bytes_per_record() > self.params.max_mb * 1e6:
                log.warning("monitors.max_mb: skipping probe '%s' at epoch %d: the monitors of this run already "
                            "hold %.1f MB of the %g MB cap", probe.name, epoch, self.written / 1e6, self.params.max_mb)
                continue
            self.written += probe.record(epoch)

    # --- end of run ----------------------------------------------------------------------
    def finish(self, status: str) -> None:
        if self.confusion is not None:
            write_confusion(self.run_dir / "confusion_matrix.csv", self.confusion)
        if self.params.enabled and self.params.sample:
            write_sample(self.exp, self.run_dir / "monitors" / "sample.npz", self.params.sample_size)
        if status == "completed":
            shutil.rmtree(self.run_dir / "monitors" / ".parts", ignore_errors=True)
        self.metrics.close()
        if self.plots.enabled:
            from .plots import matplotlib_available, plot_run
            if not matplotlib_available():
                log.info("plots: no plots written; %s", needs("plots", "drawing them"))
                return
            try:
                written = plot_run(self.run_dir, self.plots)
                log.info("plots: wrote %d figures to %s", len(written), self.run_dir / "plots")
            except Exception:  # noqa: BLE001 - a plotting failure must not lose a finished run
                log.warning("plots: failed; the run itself is complete (snnrun plot %s retries)", self.run_dir,
                            exc_info=True)


def raster_image(spikes: torch.Tensor, max_neurons: int = 256) -> np.ndarray:
    """A [neurons, T] uint8 image (255 = spike) of one sample's spikes [T, *shape]."""
    s = spikes.reshape(spikes.shape[0], -1)[:, :max_neurons].float()
    return ((s.t() > 0).to(torch.uint8) * 255).numpy()


def write_confusion(path: Path, confusion: np.ndarray) -> None:
    """``confusion_matrix.csv``: one row per true class, one column per predicted class (counts)."""
    n = confusion.shape[0]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["true\\pred"] + [str(i) for i in range(n)])
        for i in range(n):
            writer.writerow([i] + [int(v) for v in confusion[i].tolist()])


def _voltage_unit(params) -> str:
    """The unit the model's schema gives its membrane potential (``v_th`` or ``v_rest``), or ""."""
    import dataclasses
    if not dataclasses.is_dataclass(params):
        return ""
    units = {f.name: f.metadata.get("unit", "") for f in dataclasses.fields(params)}
    return units.get("v_th") or units.get("v_rest") or ""


def write_sample(exp, path: Path, size: int) -> Path:
    """``monitors/sample.npz``: the first ``size`` test samples through the trained network.

    Keys (arrays sample-major, ``[S, T, *shape]``): ``input/<pop>``, ``spikes/<pop>``,
    ``<state field>/<pop>`` for every floating-point state field (``v/<pop>``, ``theta/<pop>``, ...),
    ``v_th/<pop>`` (scalar, when the model has one), ``v_unit/<pop>`` (its unit), ``weight/<proj>`` (dense view), ``label``,
    ``pred``, ``time_ms`` [T], ``dt``, ``input_shape`` (data sample shape), ``image`` (raw samples).
    """
    net = exp.network
    x, y = samples_of(exp.data, "test", list(range(min(size, split_size(exp.data, "test")))))  # tensors or files
    record = {}
    for name, pop in net.populations.items():
        if not pop.is_input:
            record[name] = tuple(getattr(pop.neuron.State, "_fields", ("v",)))
    result = simulate(exp, x, record)
    arrays: dict[str, np.ndarray] = {}
    for name in net.inputs:
        arrays[f"input/{name}"] = _sample_major(result["spikes"][name])
    for name, pop in net.populations.items():
        if pop.is_input:
            continue
        arrays[f"spikes/{name}"] = _sample_major(result["spikes"][name])
        for var, trace in result["traces"].get(name, {}).items():
            if trace.is_floating_point():
                arrays[f"{var}/{name}"] = _sample_major(trace).astype(np.float32)
        v_th = getattr(pop.neuron.params, "v_th", None)
        if isinstance(v_th, (int, float)):
            arrays[f"v_th/{name}"] = np.float64(v_th)
        unit = _voltage_unit(pop.neuron.params)
        if unit:
            arrays[f"v_unit/{name}"] = np.str_(unit)
    for name, proj in net.projections.items():
        w = projection_weight(proj)
        if w is not None:
            arrays[f"weight/{name}"] = w.float().cpu().numpy()
            arrays[f"source_shape/{name}"] = np.asarray(net.populations[proj.source].shape)
            arrays[f"source_is_input/{name}"] = np.bool_(net.populations[proj.source].is_input)
    with torch.no_grad():
        out_name = net.output
        v = result["traces"].get(out_name, {}).get("v") if exp.decoder.needs_voltage else None
        scores = exp.decoder(result["spikes"][out_name], v)
        pred = exp.decoder.predict(scores)
    arrays.update({"label": y.cpu().numpy(), "pred": pred.cpu().numpy(), "time_ms": (np.arange(net.time_steps) + 1) * net.dt,
                   "dt": np.float64(net.dt), "input_shape": np.asarray(exp.data.input_shape),
                   "image": x.float().cpu().numpy()})
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # keeps the .npz suffix, so numpy adds none
        np.savez_compressed(tmp, **arrays)
    return path


def _sample_major(t: torch.Tensor) -> np.ndarray:
    a = t.detach().transpose(0, 1).contiguous().cpu()
    if not a.is_floating_point() or bool(((a == 0) | (a == 1)).all()):
        return a.to(torch.uint8).numpy()
    return a.float().numpy()
