r"""Compiled per-sample loop of the Diehl & Cook (2015) network (``csrc/diehl_cook.cpp``, built
once by :mod:`snnrun.kernels`).

It reproduces, step for step, what the generic simulation computes for the ``diehl_cook``
experiment (the reference: :class:`snnrun.network.Network` stepping the ``diehlandcook``
and ``lif`` neuron modules, with the ``postpre`` rule of :mod:`snnrun.learning.rules` called
from the step hook), but event-driven as Brian2 does:

- input current: the rows of ``W^T`` of the inputs that spiked this step are added (no matvec);
- traces: nearest-spike traces decay by ``exp(−dt/τ)`` each step and are set to 1 at a spike
  (``traces_first``: before the weight update, as BindsNET's PostPre);
- weights change only at events: a presynaptic spike j updates row j
  (``w += lr_post·x_pre,j·s_post − lr_pre·x_post``), a postsynaptic spike i column i, each
  touched weight once per step with the same expression as the reference, then clamped to
  ``[w_min, w_max]``; untouched weights are left alone (the reference adds exactly 0 to them);
- before a learning sample each neuron's incoming weights are scaled to sum to ``w_norm``.

Step order (t = 0 … T−1): exc neurons (decay of v and θ, input from this step's input spikes
and the previous step's inhibitory spikes, unless refractory; threshold ``v_th + θ``; reset;
θ += θ+ when learning; refractory count), then inh neurons (Euler LIF driven by this step's
exc spikes through the one-to-one weight), then the STDP update.
The state (v, refractoriness, traces) starts from rest for every sample; θ persists.
Floating point: float64; the only difference to the reference is the order in which the
input current is summed (≈1e-16 relative).
"""

from __future__ import annotations

import torch

from .loader import Extension

_EXTENSION = Extension("diehl_cook", "diehl_cook.cpp", ["dc_sample"], ["-O3", "-march=native"])


def load():
    """The compiled module, or None when it cannot be built here."""
    return _EXTENSION.load()


def available() -> bool:
    """Whether the extension builds here (a C++ compiler and the torch headers are present)."""
    return load() is not None


def run_sample(spikes: torch.Tensor, weight_t: torch.Tensor, theta: torch.Tensor, params: list[float]) -> torch.Tensor:
    """Simulate one sample in place: ``spikes`` uint8 [T, n_in], ``weight_t`` float64 [n_in, n]
    (the transposed dense weight, updated when learning), ``theta`` float64 [n] (updated).
    Returns the exc spike counts int64 [n]."""
    _EXTENSION.ran("compiled")
    return load().dc_sample(spikes, weight_t, theta, params)


