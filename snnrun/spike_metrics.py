"""Spike metrics logged every epoch: activity, synaptic operations, energy, weights.

Per split (``train``, ``val``, ``test``) and epoch, from every simulated batch:

- ``{split}/silent/<pop>``: fraction of neurons that emitted no spike during the
  whole epoch (all samples, all steps).
- ``{split}/saturated/<pop>``: fraction of neurons whose spike probability per
  step, ``count / (T · samples)``, is at least ``saturation`` (default 0.9).
- ``{split}/synops/<proj>`` and ``{split}/synops/total``: synaptic operations per
  sample. A synaptic operation is one presynaptic event delivered through one
  connection: for each synaptic stage (dense, recurrent, sparse, conv2d,
  one_to_one, lateral_inhibition)
  ``SynOps = Σ_t Σ_i [x_i(t) ≠ 0] · fan_out_i``, where ``x`` is the stage's
  input (spikes, or the non-zero values of a pooled spike map) and
  ``fan_out_i`` the number of structural connections leaving input ``i``
  (``n_out`` for dense; the mask column count for recurrent/sparse; the
  kernel footprint for conv2d; 1 for one_to_one; ``n − 1`` for lateral
  inhibition). Pooling, flatten, dropout, batch norm and delays cost none.
- ``{split}/energy_nj``: ``SynOps · pj_per_synop · 1e-3`` nJ per sample
  (default 0.9 pJ: one 32-bit float accumulate at 45 nm, Horowitz 2014).

Per training epoch (train rows): ``weight_norm/<proj>`` (Frobenius norm of the
synaptic weights), ``dw/<proj>`` (mean ``|W_end − W_start|`` over the epoch,
whatever the learner, so the STDP ``|Δw|`` of local rules), ``learner/<key>``:
the epoch mean of what the local learners return per batch from ``end_sample``
(``learner/reward``: the reward trace of reward-modulated rules) and every entry
of a learner's optional ``metrics() -> dict[str, float]`` hook.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .schema import param


@dataclass
class SpikeMetricsParams:
    enabled: bool = param(True, help="log silent/saturated fractions, SynOps, energy, weight norms and |dw|")
    saturation: float = param(0.9, gt=0, le=1, help="spike probability per step at which a neuron counts as saturated")
    pj_per_synop: float = param(0.9, unit="pJ", ge=0, help="energy of one synaptic operation")


#: synapse classes (by registry class name) that carry synaptic operations
SYNAPTIC_STAGES = ("Dense", "Recurrent", "Sparse", "Conv2d", "OneToOne", "LateralInhibition")


def fan_out(stage: nn.Module) -> torch.Tensor | None:
    """Structural connections leaving each input element of ``stage`` ([*in_shape]); None if not synaptic."""
    kind = type(stage).__name__
    if kind not in SYNAPTIC_STAGES:
        return None
    in_shape = tuple(stage.in_shape)
    n_in = math.prod(in_shape)
    with torch.no_grad():
        if kind == "Dense":
            out = torch.full((n_in,), float(stage.weight.shape[0]))
        elif kind == "Recurrent":
            out = stage.mask.detach().float().cpu().sum(0)
        elif kind == "Sparse":
            out = torch.bincount(stage.indices[1].cpu(), minlength=n_in).float()
        elif kind == "Conv2d":
            p = stage.params
            c, h, w = in_shape
            oc, oh, ow = stage.out_shape
            k = p.kernel_size
            pad_h = h - ((oh - 1) * p.stride - 2 * p.padding + k)
            pad_w = w - ((ow - 1) * p.stride - 2 * p.padding + k)
            ones = torch.ones(oc, c // p.groups, k, k)
            out = F.conv_transpose2d(torch.ones(1, oc, oh, ow), ones, stride=p.stride, padding=p.padding,
                                     output_padding=(pad_h, pad_w), groups=p.groups)[0]
        elif kind == "OneToOne":
            out = torch.ones(n_in)
        else:  # LateralInhibition: every other neuron of the population
            out = torch.full((n_in,), float(n_in - 1))
    return out.reshape(-1)


def synaptic_weight(stage: nn.Module) -> torch.Tensor | None:
    """The weights of a synaptic stage as a dense tensor (detached), or None."""
    if type(stage).__name__ not in SYNAPTIC_STAGES or not isinstance(getattr(stage, "weight", None), torch.Tensor):
        return None
    if hasattr(stage, "dense_weight"):
        return stage.dense_weight().detach()
    w = stage.weight.detach()
    return w * stage.mask if hasattr(stage, "mask") else w


def projection_weight(projection: nn.Module) -> torch.Tensor | None:
    """The first synaptic weight tensor of a projection's stage chain."""
    for stage in projection.stages:
        w = synaptic_weight(stage)
        if w is not None:
            return w
    return None


class SynOpsCounter:
    """Counts synaptic operations with forward hooks on the synaptic stages of every projection."""

    def __init__(self, network: nn.Module):
        self.ops: dict[str, torch.Tensor] = {}
        self.active = True
        self.handles = []
        self.fan_out: dict[str, torch.Tensor] = {}
        for name, proj in network.projections.items():
            for i, stage in enumerate(proj.stages):
                fo = fan_out(stage)
                if fo is None:
                    continue
                self.fan_out[f"{name}.{i}"] = fo
                self.handles.append(stage.register_forward_hook(self._hook(name, f"{name}.{i}")))
        self.projections = sorted({k.rsplit(".", 1)[0] for k in self.fan_out}, key=list(network.projections).index)

    def _hook(self, projection: str, key: str):
        fo = self.fan_out[key]
        uniform = float(fo[0]) if fo.numel() and bool((fo == fo[0]).all()) else None

        def hook(module, args, output):
            if not self.active:
                return
            events = getattr(module, "events", None)  # counted by the dense gather kernel in this call
            if uniform is not None and events is not None:
                ops = float(events) * uniform
                old = self.ops.get(key)
                self.ops[key] = ops if old is None else old + ops
                return
            x = args[0].detach()
            x2d = x.reshape(x.shape[0], -1)
            if uniform is not None:  # dense, one_to_one, lateral inhibition: events x the common fan-out
                ops = (x2d != 0).sum().double() * uniform
            else:  # conv2d, sparse, recurrent: Σ_n Σ_i [x_ni != 0] fan_out_i as one mat-vec
                f = self.fan_out[key]
                if f.device != x.device:
                    f = self.fan_out[key] = f.to(x.device)
                ops = ((x2d != 0).to(f.dtype) @ f).sum().double()
            old = self.ops.get(key)
            self.ops[key] = ops if old is None else old + ops
        return hook

    @property
    def counts(self) -> dict[str, float]:
        """SynOps per projection since the last ``clear()`` (synchronises once, here)."""
        out: dict[str, float] = {}
        for key, ops in self.ops.items():
            name = key.rsplit(".", 1)[0]
            out[name] = out.get(name, 0.0) + float(ops)
        return out

    def clear(self) -> None:
        self.ops = {}

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


class SpikeMetrics:
    """Accumulates the per-epoch spike metrics of one split; see the module docstring."""

    def __init__(self, params: SpikeMetricsParams, network: nn.Module, learners: list = ()):
        self.params = params
        self.network = network
        self.learners = list(learners)
        self.populations = [n for n, p in network.populations.items() if not p.is_input and p.neuron.spiking]
        self.synops = SynOpsCounter(network) if params.enabled else None
        self.weighted = [n for n, proj in network.projections.items() if projection_weight(proj) is not None]
        self._counts: dict[str, list[torch.Tensor] | np.ndarray] = {}
        self._steps = 0
        self._samples = 0
        self._start_weights: dict[str, np.ndarray] = {}  # weights at the start of the training epoch
        self._learner: dict[str, tuple[float, int]] = {}

    def columns(self, splits: tuple[str, ...]) -> list[str]:
        if not self.params.enabled:
            return []
        cols = []
        for s in splits:
            cols += [f"{s}/silent/{p}" for p in self.populations] + [f"{s}/saturated/{p}" for p in self.populations]
            cols += [f"{s}/synops/{p}" for p in self.synops.projections] + [f"{s}/synops/total", f"{s}/energy_nj"]
        cols += [f"weight_norm/{p}" for p in self.weighted] + [f"dw/{p}" for p in self.weighted]
        keys = {k for learner in self.learners for k in learner_metrics(learner)}
        keys |= {"reward" for learner in self.learners if hasattr(learner, "last_reward")}
        return cols + [f"learner/{k}" for k in sorted(keys)]

    def observe_learners(self, values: dict | None) -> None:
        """Add one batch of the local learners' per-sample values (e.g. ``reward``); averaged per epoch."""
        for key, value in (values or {}).items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                total, n = self._learner.get(key, (0.0, 0))
                self._learner[key] = (total + float(value), n + 1)

    def begin(self, train: bool) -> None:
        self._counts, self._steps, self._samples = {}, 0, 0
        self._learner: dict[str, tuple[float, int]] = {}
        if self.synops is not None:
            self.synops.clear()
        if train and self.params.enabled:
            for name, w in zip(self.weighted, self._host_weights()):
                start = self._start_weights.get(name)
                if start is not None and start.shape == w.shape and start.dtype == w.dtype:
                    np.copyto(start, w)  # into last epoch's copy
                else:
                    self._start_weights[name] = w.copy()

    def observe(self, spikes: dict[str, torch.Tensor]) -> None:
        """Add one batch: ``spikes[pop]`` [T, B, *shape] (a caller that counts the spikes itself
        gives the epoch's totals to :meth:`end` instead)."""
        if not self.params.enabled:
            return
        first = next(iter(spikes.values()))
        self._steps, self._samples = first.shape[0], self._samples + first.shape[1]
        for name in self.populations:  # kept per batch, summed once per epoch (see neuron_counts)
            c = spikes[name].detach().sum((0, 1), dtype=torch.float32).reshape(-1)
            parts = self._counts.setdefault(name, [])
            if isinstance(parts, np.ndarray):  # already reduced by neuron_counts(): continue from it
                parts = self._counts[name] = [torch.from_numpy(parts).to(c.device, c.dtype)]
            parts.append(c)

    def end(self, split: str, train: bool, counts: dict[str, np.ndarray] | None = None, samples: int = 0,
            steps: int = 0) -> dict[str, float]:
        """The split's columns. ``counts``: each population's spike count per neuron over the epoch's
        ``samples`` samples of ``steps`` steps, when the caller has counted them (else the
        batches given to :meth:`observe`)."""
        if not self.params.enabled:
            return {}
        if counts is not None:
            self._counts = {n: c for n, c in counts.items() if n in self.populations}
            self._samples, self._steps = samples, steps
        if self._samples == 0:
            return {}
        out: dict[str, float] = {}
        for name, c in self.neuron_counts().items():
            out[f"{split}/silent/{name}"] = float((c == 0).mean())
            out[f"{split}/saturated/{name}"] = float((c / (self._steps * self._samples) >= self.params.saturation).mean())
        total, counts = 0.0, self.synops.counts
        for name in self.synops.projections:
            per_sample = counts.get(name, 0.0) / self._samples
            out[f"{split}/synops/{name}"] = per_sample
            total += per_sample
        out[f"{split}/synops/total"] = total
        out[f"{split}/energy_nj"] = total * self.params.pj_per_synop * 1e-3
        if train and self.weighted:
            out.update(self._weight_columns())
            out.update({f"learner/{k}": total / n for k, (total, n) in self._learner.items() if n})
            for learner in self.learners:
                out.update({f"learner/{k}": v for k, v in learner_metrics(learner).items()})
        return out

    def _weight_columns(self) -> dict[str, float]:
        """``weight_norm/<proj>`` and ``dw/<proj>`` (mean |W − W_start|), in numpy on the host: once
        per epoch, a torch op here costs tens of µs (cold caches, thread wake-ups), numpy's a few."""
        out = {}
        for name, w in zip(self.weighted, self._host_weights()):
            out[f"weight_norm/{name}"] = float(np.linalg.norm(w))
            start = self._start_weights.get(name)
            if start is not None and start.shape == w.shape:
                out[f"dw/{name}"] = float(np.abs(w - start).sum()) / max(w.size, 1)
        return out

    def _host_weights(self) -> list[np.ndarray]:
        """Each weighted projection's weights as a flat float array on the host (a view on CPU)."""
        weights = [projection_weight(self.network.projections[n]).detach() for n in self.weighted]
        return [(w if w.dtype in (torch.float32, torch.float64) else w.float()).cpu().numpy().reshape(-1)
                for w in weights]

    def close(self) -> None:
        """Remove the SynOps hooks from the network."""
        if self.synops is not None:
            self.synops.remove()

    def neuron_counts(self) -> dict[str, np.ndarray]:
        """Per-neuron spike counts of the current split so far (flattened neurons, float64)."""
        for name, parts in self._counts.items():
            if isinstance(parts, list):  # the observed batches' counts, reduced once
                self._counts[name] = torch.stack(parts).sum(0).cpu().numpy().astype(np.float64)
        return dict(self._counts)

    @property
    def samples(self) -> int:
        return self._samples

    @property
    def steps(self) -> int:
        return self._steps


def learner_metrics(learner: Any) -> dict[str, float]:
    """A learner's optional ``metrics()`` hook as plain floats (empty when it has none)."""
    fn = getattr(learner, "metrics", None)
    if not callable(fn):
        return {}
    values = fn() or {}
    return {str(k): float(v) for k, v in values.items()}
