r"""Compiled step engine: one sample (batch 1, float64) of a whole network for all T steps, local
learning on or off, in C++ (``csrc/step_engine.cpp``, built once by :mod:`snnrun.kernels`), without
a Python call per step; or a batch of independent samples without learning, one sample per task
over torch's intra-op threads (each sample stays event-driven: a dense batched step would visit
every weight for the few inputs that spike).

It interprets a *plan* that :mod:`snnrun.engine` builds (the rows of each component by
:mod:`snnrun.engine_plans`) from the network's components, each of which declares what the engine
may run for it (``engine_model`` on neuron classes, ``engine_synapse`` on synapse classes,
``engine_rule`` on learners; see :mod:`snnrun.engine`):

- populations in ``network.order`` (input, or a neuron model code with its float parameters and
  state vectors: ``v`` and the model's other variables — θ, ``a``, ``w``, ``u``, clif's synaptic
  current, glif's θ_s, θ_v and two after-spike currents — and a refractory count); a non-spiking
  ``leaky`` readout outputs its potential (its counts are float64 ``Σ_t v``, its raster float64);
- projections in ``network.projections`` order (so each target sums its incoming currents in the
  order :meth:`snnrun.network.Network._run_steps` does), each ``dense`` (the weight kept transposed,
  ``[n_source, n_target]``: the rows of the inputs that spiked are added, event-driven, in
  ascending input order from zero, as :mod:`snnrun.kernels.spike_linear` sums them), ``one_to_one``,
  ``lateral_inhibition``, ``sparse`` (each spiking input adds its outgoing COO values; every target
  then sums its entries in ascending input order from zero, as ``torch.sparse.mm`` does),
  ``delayed_dense`` (per-synapse delays: the current of each delay group, summed in ascending input
  order, joins a ring of future currents as ``DelayedDense._step`` adds them), ``conv2d`` (groups 1,
  stride, padding, bias: each input spike adds its kernel entries to the outputs whose windows hold
  it) or a ``delay`` alone (the delayed spikes); a ``delay`` stage before the synapse keeps a ring of the last ``D + 1`` steps of
  its source's spikes and feeds ``s_j(t − d_j)`` on; a ``recurrent`` back edge reads the previous
  step's spikes (zeros at the first step);
- learning rules (pair STDP of :func:`snnrun.learning.rules.stdp_step`: nearest or all-to-all
  traces, weights_first or traces_first, additive or multiplicative weight dependence, hard bounds,
  weight decay), applied after each step in the learners' order, event-driven: a presynaptic spike
  updates its row, a postsynaptic spike its column, with the reference's expression (the other
  weights receive an exact 0 in the reference); every weight is visited at the first step (the
  reference clamps all of them there) and at every step with weight decay. STDP on a ``conv2d``
  weight (:func:`snnrun.learning.rules.conv2d_outer`): the step's spikes add their windows to
  kernel-shaped correlations, then every kernel entry takes the dense rule's expression;
- the reward rules (``mstdp``, ``mstdpet``) do not change the weights during the sample: they
  accumulate the pair terms (event-driven) or the eligibility trace (every entry, every step), each
  weighted by the step's output spikes with ``reward_at: output_spikes``, into two [m, n] tensors of
  the plan that the learner's ``end_sample`` reads.

Every floating-point expression is the reference's, operation by operation (compiled with
``-ffp-contract=off``), so float64 results agree with the torch simulation; the exceptions are sums
whose order torch leaves to a BLAS (a ``recurrent`` synapse's GEMV, a ``dense`` input denser than
:data:`snnrun.kernels.spike_linear.MAX_DENSITY` in one step, ``delayed_dense``'s GEMM over the
inputs of a delay group, whose layer-by-layer path also adds the groups in another order than its
step path, ``conv2d``'s convolution and its STDP correlation over the positions) and AdEx's ``exp`` (torch's vectorised
exp may differ from the C library's by one unit in the last place): there the state agrees to
≈1e-15 relative and the spikes in practice.
"""

from __future__ import annotations

import torch

from .loader import Extension

_EXTENSION = Extension("step_engine", "step_engine.cpp", ["engine_sample", "engine_batch"],
                       ["-O3", "-march=native", "-ffp-contract=off"])


def load():
    """The compiled module, or None when it cannot be built here."""
    return _EXTENSION.load()


def available() -> bool:
    """Whether the extension builds here (a C++ compiler and the torch headers are present)."""
    return load() is not None


def ran(path: str) -> None:
    """Record that a sample took the ``compiled`` or the ``reference`` path (``snnrun.kernels.report``)."""
    _EXTENSION.ran(path)


def run_sample(tensors: list[torch.Tensor], pops: torch.Tensor, projs: torch.Tensor, rules: torch.Tensor,
               floats: torch.Tensor, steps: int, learn: bool, record: bool) -> list[torch.Tensor]:
    """Simulate one sample in place (weights and persistent state in ``tensors`` are updated).
    Returns the spike counts int64 [n] of every population in plan order, then (``record``) their
    rasters uint8 [T, n] (a non-spiking population: float64 ``Σ_t v`` [n] and its potential [T, n])."""
    _EXTENSION.ran("compiled")
    return load().engine_sample(tensors, pops, projs, rules, floats, int(steps), bool(learn), bool(record))


def run_batch(tensors: list[torch.Tensor], pops: torch.Tensor, projs: torch.Tensor, rules: torch.Tensor,
              floats: torch.Tensor, batch: int, steps: int) -> list[torch.Tensor]:
    """Simulate ``batch`` independent samples without learning (each input tensor [B, T, n]), spread
    over torch's intra-op threads; nothing in ``tensors`` is written. Returns the spike counts int64
    [B, n] (float64 ``Σ_t v`` of a non-spiking population) of every population in plan order, each
    sample's equal to :func:`run_sample`'s."""
    _EXTENSION.ran("compiled")
    return load().engine_batch(tensors, pops, projs, rules, floats, int(batch), int(steps))
