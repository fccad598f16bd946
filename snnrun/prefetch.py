"""Fetch and encode the next batch on a background thread while the current one trains.

The thread runs ``next()`` on the batch iterator, the device copy and the encoder (whose
compiled kernels and torch ops release the GIL), one batch ahead; the loop receives
``(x, y, encoded)`` in the same order as without prefetching. Errors raised while preparing a
batch are re-raised in the loop, at that batch.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator

import torch


class Prefetched:
    """Iterate ``(x, y, encode(x))`` over at most ``limit`` batches; ``encode=None`` leaves the
    third element None (the loop encodes) and only moves the batch to ``device``."""

    def __init__(self, batches: Iterable, limit: int, device: torch.device,
                 encode: Callable[[torch.Tensor], torch.Tensor] | None, background: bool = True):
        self.batches, self.limit, self.device, self.encode = batches, limit, device, encode
        self.background = background

    def _prepare(self, it: Iterator):
        try:
            x, y = next(it)
        except StopIteration:
            return None
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        with torch.no_grad():
            return x, y, (self.encode(x) if self.encode is not None else None)

    def wait(self, pending):
        """The prepared batch (None at the end): blocks until the thread has it."""
        return pending.result() if hasattr(pending, "result") else pending

    def __iter__(self):
        it = iter(self.batches)
        if not self.background:
            for _ in range(self.limit):
                item = self.wait(self._prepare(it))
                if item is None:
                    return
                yield item
            return
        with ThreadPoolExecutor(1, thread_name_prefix="snnrun-prefetch") as pool:
            pending = pool.submit(self._prepare, it) if self.limit > 0 else None
            for i in range(self.limit):
                item = self.wait(pending)
                if item is None:
                    return
                pending = pool.submit(self._prepare, it) if i + 1 < self.limit else None
                yield item
