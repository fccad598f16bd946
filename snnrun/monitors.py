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

A probe is a separate, gradient-free simulation of the chosen samples at the
end of each chosen epoch (network in eval mode, global RNG state saved and
restored, so recording never changes training). Arrays in ``<probe>.npz``:

- each population/``current`` variable: ``[records, samples, steps, *shape]``
  (spikes as uint8; index t = state after step t of the window);
- ``weight``: ``[records, *weight_shape]`` (dense view, sparse included);
- ``epoch`` [records], ``sample_index`` [samples], ``label`` [samples],
  ``time_ms`` [steps] (end of each step: ``(t + 1)·dt``).

Records are streamed to raw files in ``monitors/.parts/`` one batch at a time
and assembled into the ``.npz`` without loading them (memory is bounded by one
batch); the expected size is checked against ``monitors.max_mb`` before the run
starts. ``monitors.sample`` writes ``monitors/sample.npz`` at the end of a run:
one test batch with the input spikes and every population's spikes and state,
the weights, labels and predictions (what ``snnrun plot`` draws).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ConfigError
from .extras import needs
from .faults import atomic_path
from .reproducibility import rng_state, set_rng_state
from .schema import param, parse_params, suggest
from .spike_metrics import SpikeMetrics, SpikeMetricsParams, projection_weight

log = logging.getLogger("snnrun")


@dataclass
class MonitorsParams:
    enabled: bool = param(True, help="record the probes, the end-of-run sample and the spike metrics")
    sample: bool = param(True, help="write monitors/sample.npz (one test batch, every population) at the end")
    sample_size: int = param(8, ge=1, help="samples in monitors/sample.npz")
    max_mb: float = param(256.0, gt=0, unit="MB", help="cap on the size of all monitor files of a run")
    metrics: dict = param({}, help="spike metrics options: enabled, saturation, pj_per_synop")
    probes: dict = param({}, help="name -> {target, vars, split, samples, epochs, start_ms, stop_ms}")


@dataclass
class ProbeParams:
    target: str = param(help="population or projection to record")
    vars: list = param(["spikes"], help="population: spikes, current, neuron state fields; projection: weight, current")
    split: str = param("test", choices=("train", "val", "test"), help="data shown to the probe")
    samples: Any = param(4, help="first N samples, a list of sample indices, or 'all'")
    epochs: Any = param("last", help="'last', 'all', or a list of epochs (0 = before training)")
    start_ms: float = param(0.0, unit="ms", ge=0, help="start of the recorded window")
    stop_ms: float | None = param(None, unit="ms", help="end of the recorded window (null = end of the sample)")
    dtype: str = param("float32", choices=("float16", "float32", "float64"), help="storage type of analog variables")


def _split_size(data, split: str) -> int | None:
    """Samples in ``split`` (None when the data has no such split)."""
    if hasattr(data, "train_set"):  # file-backed datasets (events): torch Datasets
        dataset = {"train": data.train_set, "val": data.val_set, "test": data.test_set}.get(split)
        return None if dataset is None else len(dataset)
    x = {"train": data.x_train, "val": data.x_val, "test": data.x_test}[split]
    return None if x is None else int(x.shape[0])


def _samples(data, split: str, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and labels of ``indices`` in ``split`` (in-memory tensors or a file-backed Dataset)."""
    if hasattr(data, "train_set"):
        dataset = {"train": data.train_set, "val": data.val_set, "test": data.test_set}[split]
        items = [dataset[i] for i in indices]
        return (torch.stack([torch.as_tensor(x) for x, _ in items]),
                torch.as_tensor([int(y) for _, y in items], dtype=torch.long))
    x, y = {"train": (data.x_train, data.y_train), "val": (data.x_val, data.y_val),
            "test": (data.x_test, data.y_test)}[split]
    idx = torch.as_tensor(indices, dtype=torch.long)
    return x[idx], y[idx]


def write_npz(path: Path, streamed: list[tuple[str, Path, tuple, np.dtype]], small: dict[str, Any]) -> None:
    """Write ``path`` (.npz) from raw part files (copied in 1 MB chunks) plus small arrays, atomically."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, part, shape, dtype in streamed:
            with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                          "shape": tuple(int(s) for s in shape)}
                np.lib.format.write_array_header_2_0(f, header)
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, f, 1 << 20)
        for name, value in small.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(value), allow_pickle=False)


class Probe:
    """One configured probe: validates its spec, records epochs, streams them to disk."""

    def __init__(self, name: str, p: ProbeParams, exp, key: str, parts_dir: Path):
        self.name, self.p, self.exp, self.key = name, p, exp, key
        net = exp.network
        self.parts = parts_dir / name
        if p.target in net.populations:
            pop = net.populations[p.target]
            fields = () if pop.is_input else tuple(getattr(pop.neuron.State, "_fields", ()))
            valid = ("spikes",) + (("current",) + fields if not pop.is_input else ())
            self.kind, self.shape = "population", tuple(pop.shape)
        elif p.target in net.projections:
            valid, self.kind = ("weight", "current"), "projection"
            self.shape = tuple(net.populations[net.projections[p.target].target].shape)
        else:
            names = list(net.populations) + list(net.projections)
            raise ConfigError(f"{key}.target: no population or projection '{p.target}'{suggest(p.target, names)}; "
                              f"valid: {', '.join(names)}")
        if not p.vars or not isinstance(p.vars, (list, tuple)):
            raise ConfigError(f"{key}.vars: expected a non-empty list such as [spikes, v], got {p.vars!r}")
        for var in p.vars:
            if var not in valid:
                raise ConfigError(f"{key}.vars: '{var}' is not recorded for {self.kind} '{p.target}'"
                                  f"{suggest(str(var), valid)}; valid: {', '.join(valid)}")
        self.state_vars = tuple(v for v in p.vars if v not in ("spikes", "current", "weight"))
        n = _split_size(exp.data, p.split)
        if n is None:
            raise ConfigError(f"{key}.split: the data has no '{p.split}' split; valid: train, test"
                              f"{', val' if exp.data.val_size else ''}")
        if p.samples == "all":
            self.indices = list(range(n))
        elif isinstance(p.samples, int) and not isinstance(p.samples, bool) and p.samples >= 1:
            self.indices = list(range(min(p.samples, n)))
        elif isinstance(p.samples, (list, tuple)) and p.samples and all(isinstance(i, int) for i in p.samples):
            bad = [i for i in p.samples if not 0 <= i < n]
            if bad:
                raise ConfigError(f"{key}.samples: index {bad[0]} out of range for the {p.split} split ({n} samples)")
            self.indices = list(p.samples)
        else:
            raise ConfigError(f"{key}.samples: expected a positive integer, a list of indices or 'all', got {p.samples!r}")
        epochs = exp.trainer.epochs
        if p.epochs == "all":
            self.epochs = set(range(1, epochs + 1))
        elif p.epochs == "last":
            self.epochs = {epochs}
        elif isinstance(p.epochs, (list, tuple)) and all(isinstance(e, int) and 0 <= e <= epochs for e in p.epochs):
            self.epochs = set(p.epochs)
        else:
            raise ConfigError(f"{key}.epochs: expected 'last', 'all' or a list of epochs in 0..{epochs}, got {p.epochs!r}")
        steps, dt = net.time_steps, net.dt
        self.start = int(round(p.start_ms / dt))
        self.stop = steps if p.stop_ms is None else min(steps, int(round(p.stop_ms / dt)))
        if not 0 <= self.start < self.stop:
            raise ConfigError(f"{key}: empty time window [{p.start_ms}, {p.stop_ms}) ms for a {steps * dt:g} ms sample")
        self.dtype = np.dtype(p.dtype)

    def record_shapes(self) -> dict[str, tuple[tuple, np.dtype]]:
        """Per-record array shape and dtype of each variable."""
        s, t = len(self.indices), self.stop - self.start
        out = {}
        for var in self.p.vars:
            if var == "weight":
                w = projection_weight(self.exp.network.projections[self.p.target])
                if w is None:
                    raise ConfigError(f"{self.key}.vars: projection '{self.p.target}' has no weights")
                out[var] = (tuple(w.shape), np.dtype(np.float32))
            else:
                out[var] = ((s, t, *self.shape), np.dtype(np.uint8) if var == "spikes" else self.dtype)
        return out

    def bytes_per_record(self) -> int:
        return sum(math.prod(shape) * dtype.itemsize for shape, dtype in self.record_shapes().values())

    def expected_bytes(self) -> int:
        return len(self.epochs) * self.bytes_per_record()

    # --- recording -----------------------------------------------------------------
    def _meta(self) -> dict:
        path = self.parts / "meta.json"
        return json.loads(path.read_text()) if path.exists() else {"epochs": []}

    def record(self, epoch: int) -> int:
        """Simulate the probe's samples and append one record; returns the bytes written."""
        exp, p = self.exp, self.p
        self.parts.mkdir(parents=True, exist_ok=True)
        meta = self._meta()
        batch = exp.data_params.test_batch_size or exp.data_params.batch_size
        files = {var: open(self.parts / f"{var}.bin", "ab") for var in p.vars}
        written = 0
        try:
            if "weight" in p.vars:
                w = projection_weight(exp.network.projections[p.target]).float().cpu().numpy()
                files["weight"].write(w.tobytes())
                written += w.nbytes
            sim_vars = [v for v in p.vars if v != "weight"]
            for i in range(0, len(self.indices) if sim_vars else 0, batch):
                x, _ = _samples(exp.data, p.split, self.indices[i:i + batch])
                arrays = simulate(exp, x, self._record_request(), currents=self._currents())
                for var in sim_vars:
                    a = self._select(arrays, var)[self.start:self.stop]
                    a = a.transpose(0, 1).contiguous().cpu().numpy()  # [B, T_w, *shape]
                    a = a.astype(np.uint8) if var == "spikes" else a.astype(self.dtype)
                    files[var].write(a.tobytes())
                    written += a.nbytes
        finally:
            for f in files.values():
                f.close()
        meta["epochs"].append(epoch)
        (self.parts / "meta.json").write_text(json.dumps(meta))
        self.write(meta)
        return written

    def _record_request(self) -> dict:
        return {self.p.target: self.state_vars} if self.kind == "population" and self.state_vars else {}

    def _currents(self) -> tuple[str, ...]:
        return (self.p.target,) if "current" in self.p.vars else ()

    def _select(self, arrays: dict, var: str) -> torch.Tensor:
        if var == "spikes":
            return arrays["spikes"][self.p.target]
        if var == "current":
            return arrays["current"][self.p.target]
        return arrays["traces"][self.p.target][var]

    def write(self, meta: dict | None = None) -> Path:
        meta = meta or self._meta()
        records = len(meta["epochs"])
        streamed = [(var, self.parts / f"{var}.bin", (records, *shape), dtype)
                    for var, (shape, dtype) in self.record_shapes().items()]
        if not hasattr(self, "labels"):
            self.labels = _samples(self.exp.data, self.p.split, self.indices)[1].cpu().numpy()
        dt = self.exp.network.dt
        small = {"epoch": np.asarray(meta["epochs"], dtype=np.int64),
                 "sample_index": np.asarray(self.indices, dtype=np.int64),
                 "label": self.labels,
                 "time_ms": (np.arange(self.start, self.stop) + 1) * dt, "dt": np.float64(dt)}
        path = self.parts.parent.parent / f"{self.name}.npz"
        write_npz(path, streamed, small)
        return path


def simulate(exp, x: torch.Tensor, record: dict, currents: tuple[str, ...] = ()) -> dict:
    """One gradient-free simulation of ``x`` in eval mode without touching the global RNG stream.

    Returns ``{"input": encoder spikes [T, B, ...], "spikes": {pop: [T, B, *shape]},
    "traces": {pop: {var: ...}}, "current": {pop or projection: [T, B, *shape]}}``.
    """
    net = exp.network
    saved_rng, was_training = rng_state(), net.training
    net.eval()
    try:
        with torch.no_grad():
            net.reset()
            x = x.to(exp.device)
            spikes_in = exp.encoder(x)
            out = net(spikes_in, record=record)
            result = {"input": spikes_in, "spikes": out.spikes, "traces": out.traces, "current": {}}
            for name in currents:
                result["current"][name] = synaptic_current(net, name, out.spikes)
    finally:
        net.train(was_training)
        set_rng_state(saved_rng)
    return result


def synaptic_current(net, name: str, spikes: dict[str, torch.Tensor]) -> torch.Tensor:
    """Input current of population ``name`` (or output of projection ``name``) from recorded spikes;
    a recurrent projection receives the previous step's spikes (zeros at t = 0)."""
    projections = [net.projections[name]] if name in net.projections else net.incoming[name]
    total = None
    for proj in projections:
        pre = spikes[proj.source]
        if proj.recurrent:
            pre = torch.cat([torch.zeros_like(pre[:1]), pre[:-1]])
        proj.reset()
        steps, batch = pre.shape[:2]
        y = proj(pre.reshape(steps * batch, *pre.shape[2:]), steps).reshape(steps, batch, -1)
        total = y if total is None else total + y
    target = net.populations[projections[0].target].shape
    return total.reshape(total.shape[0], total.shape[1], *target)


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
        config = exp.config or {}
        self.params = parse_params(MonitorsParams, config.get("monitors") or {}, "monitors")
        metrics = parse_params(SpikeMetricsParams, self.params.metrics or {}, "monitors.metrics")
        if not self.params.enabled:
            metrics.enabled = False
        self.metrics = SpikeMetrics(metrics, exp.network, exp.learners)
        from .plots import PlotsParams
        self.plots = parse_params(PlotsParams, config.get("plots") or {}, "plots")
        self.probes: list[Probe] = []
        parts = self.run_dir / "monitors" / ".parts"
        if self.params.enabled:
            for name, node in (self.params.probes or {}).items():
                key = f"monitors.probes.{name}"
                if not isinstance(node, dict):
                    raise ConfigError(f"{key}: expected a mapping with target, vars, split, samples, epochs")
                self.probes.append(Probe(name, parse_params(ProbeParams, node, key), exp, key, parts))
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
    x, y = _samples(exp.data, "test", list(range(min(size, _split_size(exp.data, "test")))))  # tensors or files
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
