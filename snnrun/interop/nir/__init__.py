r"""NIR export (:func:`to_nir`) and import (:func:`convert`, :func:`build_from_nir`).

NIR describes neurons in continuous time; snnrun simulates them at a step ``dt`` (ms). A graph's
time unit is fixed by ``nir_dt``, one step's duration in that unit: by default ``dt / 1000``, so
the graph's times are in seconds (norse's convention: import with ``norse.from_nir(graph,
dt=nir_dt)``). snnTorch's importer assumes one step is ``1e-4``: export with ``nir_dt=1e-4`` for it.
Writing ``s = nir_dt / dt`` (graph units per ms):

==========================  ==============================================================
snnrun                      NIR node and parameters
==========================  ==============================================================
``lif`` (hard reset)        ``LIF``: tau = tau_m s, r = r, v_leak = v_rest, v_threshold = v_th,
                            v_reset = v_reset
``plif``                    ``LIF`` with tau = dt / sigmoid(w) s per neuron (or one value)
``if`` (hard reset)         ``IF``: r = r / (tau_m s) (NIR's IF is ``dv/dt = R I``), v_threshold,
                            v_reset; needs v_rest = 0 (NIR's IF has no resting potential)
``clif``                    ``CubaLIF``: tau_syn = tau_syn s, tau_mem = tau_m s, r, v_leak = v_rest,
                            v_threshold, v_reset, w_in = tau_syn / dt
``leaky`` (non-spiking)     ``LI``: tau = tau_m s, r, v_leak = v_rest
``dense`` / ``recurrent``   ``Affine`` (with bias) or ``Linear``; a ``Flatten`` first when the source
/ ``sparse``                is multi-dimensional; ``recurrent``: its masked weights
``conv2d``                  ``Conv2d`` (bias zeros when it has none)
``batchnorm`` (tdbn, eval)  folded into the conv2d/dense stage before it: W' = W γ/σ,
                            b' = (b − μ) γ/σ + β, σ = sqrt(running var + eps)
``avgpool``                 ``AvgPool2d``
``maxpool`` of spikes       ``SumPool2d`` then ``Threshold(0.5)`` (exact for 0/1 inputs only)
``flatten``                 ``Flatten``
``delay``                   ``Delay``: delay = steps · nir_dt per presynaptic neuron
``one_to_one``              ``Scale``
``lateral_inhibition``      ``Linear`` with w off the diagonal
``dropout``                 nothing (the identity at evaluation)
==========================  ==============================================================

Why these are the exact counterparts: an input value ``x`` of one step is a current held over the
step, so forward Euler of NIR's ``tau dv/dt = (v_leak − v) + R I`` is snnrun's LIF update
``v += dt/tau_m (−(v − v_rest) + r x)``; snnTorch's and norse's importers integrate the same way.
CubaLIF's ``tau_syn dI/dt = −I + w_in S`` with ``w_in = tau_syn/dt`` gives the jump ``w_in dt/tau_syn
x = x`` per step that snnrun's clif adds (snnrun then decays ``I`` by ``exp(−dt/tau_syn)``, the
peers by ``1 − dt/tau_syn``). Node metadata keep what NIR does not say (the snnrun model, its
integration scheme, the projection's name), so snnrun → NIR → snnrun rebuilds the same network; a
graph without them imports with forward Euler. snnrun fires at ``v >= v_th``, NIR at ``v > v_th``.

Refused with a message naming the population or projection: other neuron models (alif, adex,
izh, hh, glif, qif, diehlandcook), soft resets, refractory periods, maxpool of non-spike values,
batchnorm per time step or not after a weighted stage, dense stages into multi-dimensional
populations, per-synapse delays (``delayed_dense``) and any other synapse.
"""

from __future__ import annotations

from .common import clean, require_nir
from .export import NEURON_MAP, to_nir, write
from .from_nir import build_from_nir, convert, load_nir
from .graph import Converted, read
from .neuron_specs import NIR_NEURONS
from .synapse_specs import NIR_STAGES

__all__ = ["NEURON_MAP", "NIR_NEURONS", "NIR_STAGES", "Converted", "build_from_nir", "clean", "convert", "load_nir",
           "read", "require_nir", "to_nir", "write"]
