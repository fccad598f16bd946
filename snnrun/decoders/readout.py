"""Count- and voltage-based readouts."""

from __future__ import annotations

from .base import DECODERS, Decoder


@DECODERS.register("spike_counts")
class SpikeCounts(Decoder):
    """Scores are spike counts over the presentation: ``n_c = Σ_t s_c[t]``."""

    def forward(self, spikes, v=None):
        return spikes.reshape(spikes.shape[0], spikes.shape[1], -1).sum(0)


@DECODERS.register("final_step_voltage")
class FinalStepVoltage(Decoder):
    """Scores are the membrane potentials at the last step, ``v_c[T-1]``."""

    needs_voltage = True

    def forward(self, spikes, v=None):
        return v[-1].reshape(v.shape[1], -1)
