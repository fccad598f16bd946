"""Count- and voltage-based readouts."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ShapeError
from ..schema import param
from .base import DECODERS, Decoder


@DECODERS.register("spike_counts")
class SpikeCounts(Decoder):
    """Scores are spike counts over the presentation, ``n_c = Σ_t s_c[t]``, or over its last
    ``window`` ms only (for tasks where the answer is due at the end)."""

    @dataclass
    class Params:
        window: float | None = param(None, unit="ms", help="count only the last window ms (null = all)")

    def forward(self, spikes, v=None):
        if self.params.window is not None:
            spikes = spikes[-max(1, int(round(self.params.window / self.dt))):]
        return spikes.reshape(spikes.shape[0], spikes.shape[1], -1).sum(0)


@DECODERS.register("final_step_voltage")
class FinalStepVoltage(Decoder):
    """Scores are the membrane potentials at the last step, ``v_c[T-1]``."""

    needs_voltage = True

    def forward(self, spikes, v=None):
        return v[-1].reshape(v.shape[1], -1)


@DECODERS.register("spike_rate")
class SpikeRate(Decoder):
    """Scores are firing rates in Hz: ``n_c / (T · dt) · 1000``."""

    def forward(self, spikes, v=None):
        counts = spikes.reshape(spikes.shape[0], spikes.shape[1], -1).sum(0)
        return counts * (1000.0 / (spikes.shape[0] * self.dt))


@DECODERS.register("voltage_sum")
class VoltageSum(Decoder):
    """Scores are the membrane potential summed over time, ``Σ_t v_c[t] · dt`` (ms·mV)."""

    needs_voltage = True

    def forward(self, spikes, v=None):
        return v.reshape(v.shape[0], v.shape[1], -1).sum(0) * self.dt


@DECODERS.register("max_voltage")
class MaxVoltage(Decoder):
    """Scores are the peak membrane potential over time, ``max_t v_c[t]``."""

    needs_voltage = True

    def forward(self, spikes, v=None):
        return v.reshape(v.shape[0], v.shape[1], -1).amax(0)


@DECODERS.register("time_softmax")
class TimeSoftmax(Decoder):
    """Log of the time-averaged softmax of the voltages, ``log (1/T) Σ_t softmax(v[t])_c``;
    use with the ``nll`` loss (the scores are log-probabilities)."""

    needs_voltage = True

    def forward(self, spikes, v=None):
        probs = torch.softmax(v.reshape(v.shape[0], v.shape[1], -1), dim=-1).mean(0)
        return torch.log(probs.clamp(min=1e-12))


@DECODERS.register("first_spike")
class FirstSpike(Decoder):
    """Scores are minus the first spike time in ms (earlier = more likely); a neuron that never
    fires gets ``T·dt``. The time is ``Σ_t t·s[t]·Π_{t'<t}(1 − s[t'])`` so surrogate gradients
    reach the spikes (use with ``cross_entropy`` or ``first_spike_time``)."""

    def forward(self, spikes, v=None):
        s = spikes.reshape(spikes.shape[0], spikes.shape[1], -1)
        silent_before = torch.cumprod(torch.cat([torch.ones_like(s[:1]), 1 - s[:-1]]), dim=0)
        first = silent_before * s
        t = torch.arange(s.shape[0], device=s.device, dtype=s.dtype).view(-1, 1, 1) * self.dt
        never = silent_before[-1] * (1 - s[-1])
        return -((first * t).sum(0) + never * s.shape[0] * self.dt)


@DECODERS.register("population_vote")
class PopulationVote(Decoder):
    """``neurons_per_class`` output neurons per class (class-major order); the score of a
    class is the total spike count of its group."""

    @dataclass
    class Params:
        neurons_per_class: int = param(10, ge=1, help="output neurons voting for each class")

    def output_size(self):
        return None if self.num_classes is None else self.num_classes * self.params.neurons_per_class

    def forward(self, spikes, v=None):
        counts = spikes.reshape(spikes.shape[0], spikes.shape[1], -1).sum(0)
        n = self.params.neurons_per_class
        if counts.shape[1] % n:
            raise ShapeError(f"decoder.neurons_per_class: {n} does not divide the {counts.shape[1]} output neurons")
        return counts.reshape(counts.shape[0], -1, n).sum(-1)


@DECODERS.register("label_assignment")
class LabelAssignment(Decoder):
    """Unsupervised readout of Diehl & Cook (2015).

    During each training epoch every output neuron's spike count is accumulated per class
    (``observe``); at the end of the epoch each neuron is assigned the class for which its
    mean response is highest (``end_epoch``). A sample's score for class c is the mean count of
    the neurons assigned to c (``weighting: all``), or the count weighted by each neuron's
    proportion of responses to c (``weighting: proportion``). Before the first assignment all
    scores are zero. Assignments and proportions are buffers, saved with checkpoints.
    """

    @dataclass
    class Params:
        weighting: str = param("all", choices=("all", "proportion"), help="class vote: all-activity or proportion-weighted")

    differentiable = False

    def output_size(self):
        return None  # any number of neurons, each assigned a class

    def __init__(self, params, dt=1.0, num_classes=None):
        super().__init__(params, dt, num_classes)
        self.register_buffer("assignments", torch.empty(0, dtype=torch.long))
        self.register_buffer("proportions", torch.empty(0))
        self.register_buffer("class_rates", torch.empty(0))
        self._sums: torch.Tensor | None = None
        self._counts: torch.Tensor | None = None

    def observe(self, spikes, target):
        counts = spikes.reshape(spikes.shape[0], spikes.shape[1], -1).sum(0).double()
        classes = self.num_classes or int(target.max()) + 1
        if self._sums is None:
            self._sums = torch.zeros(counts.shape[1], classes, dtype=torch.float64, device=counts.device)
            self._counts = torch.zeros(classes, dtype=torch.float64, device=counts.device)
        self._sums.index_add_(1, target, counts.t())
        self._counts += torch.bincount(target, minlength=classes).double()

    def end_epoch(self):
        if self._sums is None:
            return
        rates = self._sums / self._counts.clamp(min=1)
        self.class_rates = rates.float()
        self.assignments = rates.argmax(1)
        self.proportions = (rates / rates.sum(1, keepdim=True).clamp(min=1e-12)).float()
        self._sums = self._counts = None

    def forward(self, spikes, v=None):
        counts = spikes.reshape(spikes.shape[0], spikes.shape[1], -1).sum(0)
        classes = self.num_classes or 1
        if self.assignments.numel() == 0:
            return torch.zeros(counts.shape[0], classes, device=counts.device, dtype=counts.dtype)
        if self.params.weighting == "proportion":
            return counts @ self.proportions.to(counts.dtype)
        onehot = torch.nn.functional.one_hot(self.assignments, classes).to(counts.dtype)
        per_class = onehot.sum(0).clamp(min=1)
        return (counts @ onehot) / per_class

    def get_extra_state(self) -> dict:
        """The responses observed since the last assignment, so that a checkpoint taken in the middle
        of an assignment pass resumes it exactly."""
        return {"sums": self._sums, "counts": self._counts}

    def set_extra_state(self, state: dict) -> None:
        self._sums, self._counts = state.get("sums"), state.get("counts")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, *args, **kwargs):
        for name in ("assignments", "proportions", "class_rates"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, *args, **kwargs)
        if prefix + "_extra_state" in missing_keys:  # a checkpoint written before any response was kept
            missing_keys.remove(prefix + "_extra_state")
            self._sums = self._counts = None
