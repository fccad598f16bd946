"""Checkpoint writes on a background thread, so the training loop does not wait for the disk."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor


class BackgroundWriter:
    """Runs checkpoint writes on one background thread, one at a time and in order, so the
    training loop does not wait for the disk (hashing, writing and fsync release the GIL).
    :meth:`wait` blocks until the last write is on disk and re-raises its error."""

    def __init__(self):
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None

    def submit(self, fn, *args) -> None:
        self.wait()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="snnrun-checkpoint")
        self._pending = self._pool.submit(fn, *args)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
