"""``python -m snnrun.kernels``: compile the C++ fast paths now (``scripts/setup.sh`` runs it).

Each kernel is otherwise built on first use, which adds about a minute to the first run on a
fresh machine; torch caches the builds in ``$TORCH_EXTENSIONS_DIR``. A kernel that cannot be
built here (no C++ compiler) is reported, and snnrun then runs its pure-PyTorch reference.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from . import bernoulli, diehl_cook, lif_scan, spike_linear

KERNELS = {"lif_scan": lif_scan._load, "bernoulli": bernoulli._load, "spike_linear": spike_linear._load, "diehl_cook": diehl_cook.available}


def _build(name: str) -> str:
    start = time.perf_counter()
    ok = bool(KERNELS[name]())
    status = "ready" if ok else "not built (no C++ compiler?): the torch reference path is used"
    return f"snnrun kernel {name}: {status} ({time.perf_counter() - start:.1f} s)"


def main() -> None:
    with ThreadPoolExecutor(len(KERNELS)) as pool:  # separate extensions: the compilers run side by side
        for line in pool.map(_build, KERNELS):
            print(line, flush=True)


if __name__ == "__main__":
    main()
