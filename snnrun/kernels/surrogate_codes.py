"""The surrogate derivatives the C++ backward passes evaluate in place (``surrogate()`` of
``csrc/simd_math.h``), by code; any other surrogate's derivative is evaluated by torch."""

from __future__ import annotations

#: surrogate class name -> (code in ``csrc/simd_math.h``'s ``surrogate()``, name of its width parameter)
SURROGATE_CODES = {"Sigmoid": (0, "alpha"), "ATan": (1, "alpha"), "FastSigmoid": (2, "slope"),
                   "Triangle": (3, "width"), "Rectangle": (4, "width")}


def surrogate_code(spike_fn) -> tuple[int, float]:
    """(code in the C++ backward, its width parameter), or (-1, 0) for a surrogate it does not evaluate."""
    code, width = SURROGATE_CODES.get(type(spike_fn).__name__, (-1, None))
    if code < 0 or type(spike_fn).__module__ != "snnrun.surrogate":
        return -1, 0.0
    return code, float(getattr(spike_fn.params, width))
