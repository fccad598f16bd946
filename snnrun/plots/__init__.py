"""Figures of a run, drawn from the files in its run directory (PNG in ``<run dir>/plots/``).

Needs the optional extra ``plots`` (matplotlib). Drawn at the end of a run when
``plots.enabled`` and on demand with ``snnrun plot RUN_DIR``; every figure reads
only files, so it can be redrawn later:

=============================  ====================================================
figure                         source
=============================  ====================================================
``learning_curves.png``        ``metrics.csv``: loss and accuracy per split vs epoch
``raster.png``                 ``monitors/sample.npz``: input and every population, sample 0
``membrane.png``               ``monitors/sample.npz``: ``v`` of a few neurons per population (+ ``v_th``)
``firing_rates.png``           ``monitors/sample.npz``: histogram of per-neuron rates (Hz)
``weights_<proj>.png``         ``monitors/sample.npz`` (else ``checkpoints/last.pt``): the weight matrix ``[post, pre]``
``receptive_fields_<proj>.png`` rows of a weight matrix whose source is an image, as an image grid
``confusion_matrix.png``       ``confusion_matrix.csv`` (last test epoch)
``fi_curve.png``               ``fi_curve.csv`` (current-clamp runs)
``probe_<name>.png``           ``monitors/<name>.npz`` (probes and current-clamp monitors)
``stdp_window.png``            ``stdp_window.csv`` with ``dt_ms, dw`` (plasticity protocols)
``sweep_<metric>.png``         a multirun directory: metric vs swept parameter, mean ± std over seeds
=============================  ====================================================
"""

from __future__ import annotations

from .canvas import PlotsParams, matplotlib_available
from .curves import confusion_matrix, fi_curve, learning_curves, stdp_window
from .draw import USAGE, main, plot_after_task, plot_run
from .multirun import is_multirun, sweep
from .recordings import firing_rates, membrane, probe, raster
from .weight_maps import checkpoint_weights, weights

__all__ = ["PlotsParams", "matplotlib_available", "plot_run", "plot_after_task", "main", "USAGE", "is_multirun",
           "sweep", "checkpoint_weights", "learning_curves", "raster", "membrane", "firing_rates", "weights",
           "confusion_matrix", "fi_curve", "stdp_window", "probe"]
