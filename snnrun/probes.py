"""Probes: chosen variables of chosen populations or projections, recorded to ``<run dir>/monitors/<probe>.npz``.

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
starts.
"""

from __future__ import annotations

import json
import math
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ConfigError
from .faults import atomic_path
from .reproducibility import rng_state, set_rng_state
from .schema import param, suggest
from .spike_metrics import projection_weight


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


def split_size(data, split: str) -> int | None:
    """Samples in ``split`` (None when the data has no such split)."""
    if hasattr(data, "train_set"):  # file-backed datasets (events): torch Datasets
        dataset = {"train": data.train_set, "val": data.val_set, "test": data.test_set}.get(split)
        return None if dataset is None else len(dataset)
    x = {"train": data.x_train, "val": data.x_val, "test": data.x_test}[split]
    return None if x is None else int(x.shape[0])


def samples_of(data, split: str, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
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
        n = split_size(exp.data, p.split)
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
                x, _ = samples_of(exp.data, p.split, self.indices[i:i + batch])
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
            self.labels = samples_of(self.exp.data, self.p.split, self.indices)[1].cpu().numpy()
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
