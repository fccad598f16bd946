"""Compiled fast paths (optional: each falls back to the pure-PyTorch reference)."""

from __future__ import annotations

import os
import threading
from types import ModuleType


class Extension:
    """A C++ extension built with ``torch.utils.cpp_extension.load_inline`` on first use (cached on
    disk by torch in ``$TORCH_EXTENSIONS_DIR``). :meth:`load` returns the module, or ``None`` when it
    cannot be built here (no compiler): callers then take their torch reference path."""

    def __init__(self, name: str, source: str, functions: list[str], cflags: list[str]):
        self.name, self.source, self.functions, self.cflags = name, source, functions, cflags
        self.module: ModuleType | None = None
        self.failed = False
        self._lock = threading.Lock()

    def load(self) -> ModuleType | None:
        with self._lock:
            if self.module is None and not self.failed:
                try:
                    from torch.utils.cpp_extension import load_inline

                    os.environ.setdefault("TORCH_EXTENSIONS_DIR",
                                          os.path.join(os.path.expanduser("~"), ".cache", "torch_extensions"))
                    self.module = load_inline(name=self.name, cpp_sources=[self.source], functions=self.functions,
                                              extra_cflags=self.cflags)
                except Exception:  # noqa: BLE001 - any build failure: the caller's torch path
                    self.failed = True
            return self.module
