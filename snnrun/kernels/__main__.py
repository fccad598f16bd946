"""``python -m snnrun.kernels``: build the C++ kernels now and report each (the set-up runs it).

Each kernel is otherwise built on first use. A kernel that cannot be built here is reported with
the compiler's first error lines, and snnrun runs its torch reference path (same results).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from . import all_kernels, cache_root


def _build(ext) -> str:
    start = time.perf_counter()
    status = "compiled" if ext.load() is not None else f"reference path ({ext.error})"
    return f"snnrun kernel {ext.name}: {status} ({time.perf_counter() - start:.1f} s)"


def main() -> None:
    kernels = all_kernels()
    print(f"snnrun kernels: cache {cache_root()}", flush=True)
    with ThreadPoolExecutor(len(kernels)) as pool:  # separate extensions: the compilers run side by side
        for line in pool.map(_build, kernels.values()):
            print(line, flush=True)


if __name__ == "__main__":
    main()
