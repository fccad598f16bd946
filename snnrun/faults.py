"""Run faults: non-finite numbers, stop signals and unwritable output directories.

- :func:`find_nonfinite` names the first projection weight, population parameter or
  neuron state variable that holds NaN or ±Inf. The runner checks the loss of every
  batch (its value is already read for the metrics, so the check adds no host
  synchronisation) and the weights and last neuron states once per epoch, before the
  epoch's checkpoint is written, so a checkpoint never holds non-finite weights.
- :class:`StopSignals` turns SIGINT/SIGTERM into a flag the runner polls between
  batches; a second signal interrupts at once.
- :func:`check_writable` probes an output directory with a real write before training.
- :func:`atomic_path` / :func:`write_text_atomic` write a file under a temporary name and rename
  it into place, so a full disk never leaves a truncated file (the temporary file is removed) and
  the failure is one :class:`SnnrunError` naming the file (``no space left writing PATH``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import threading
from pathlib import Path
from typing import Iterable, Iterator

import torch

from .errors import SnnrunError


def _count(tensor: torch.Tensor) -> str:
    bad = ~torch.isfinite(tensor)
    kinds = []
    if torch.isnan(tensor).any():
        kinds.append("nan")
    if torch.isinf(tensor).any():
        kinds.append("inf")
    return f"{int(bad.sum())} of {tensor.numel()} values {'/'.join(kinds)}"


def _nonfinite(named: Iterable[tuple[str, torch.Tensor]]) -> list[str]:
    return [f"{name} ({_count(tensor)})" for name, tensor in named
            if torch.is_tensor(tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]


def all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """Whether every floating-point value of ``tensors`` is finite, from one norm per tensor (a
    NaN/Inf makes its norm non-finite) taken in one call. A norm can also overflow from finite
    values: then this says False and :func:`find_nonfinite`'s element check decides."""
    floats = [t.detach() for t in tensors if torch.is_tensor(t) and t.is_floating_point() and t.numel()]
    return not floats or bool(torch.isfinite(torch.stack(torch._foreach_norm(floats))).all())


def find_nonfinite(network, inputs: torch.Tensor | None = None, limit: int = 4) -> str | None:
    """Where the network holds NaN/Inf, e.g. ``"projection inp_hidden stage 0.weight (3 of 640 values nan)"``
    (up to ``limit`` places, in network order: input batch, projections, populations), or None."""
    named = []
    if inputs is not None and inputs.is_floating_point():
        named.append(("the input batch", inputs))
    for name, proj in network.projections.items():
        tensors = list(proj.named_parameters()) + list(proj.named_buffers())
        named += [(f"projection {name} {t.replace('stages.', 'stage ')}", v) for t, v in tensors]
    for name, pop in network.populations.items():
        if pop.neuron is None:
            continue
        tensors = list(pop.neuron.named_parameters()) + list(pop.neuron.named_buffers())
        named += [(f"population {name} parameter {t}", v) for t, v in tensors]
        state = pop.neuron.state
        fields = state._asdict().items() if hasattr(state, "_asdict") else ()
        named += [(f"population {name} state {field}", v) for field, v in fields]
    if all_finite(v for _, v in named):
        return None
    found = _nonfinite(named)
    if not found:
        return None
    more = f" and {len(found) - limit} more" if len(found) > limit else ""
    return ", ".join(found[:limit]) + more


class Interrupted(Exception):
    """SIGINT/SIGTERM arrived (:class:`StopSignals`); raised at the next safe point of a run (between
    batches, samples or trials; the message says where)."""


class StopSignals:
    """Context manager: SIGINT/SIGTERM set ``received`` (the signal number) instead of killing the run.

    Only installed in the main thread (Python's rule). A second signal restores the
    previous handler's behaviour: SIGINT raises ``KeyboardInterrupt``, SIGTERM exits.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self._old: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.received is not None:  # second signal: stop now
            self.__exit__()
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)
        self.received = signum

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received else ""


def check_writable(directory: Path) -> None:
    """Create ``directory`` and write, fsync and delete a probe file in it; a clear error if that fails."""
    directory = Path(directory)
    probe = directory / f".snnrun-write-probe-{os.getpid()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as err:
        raise SnnrunError(f"output directory {directory} is not writable ({err.strerror or err}); "
                          f"choose another with hydra.run.dir=... (hydra.sweep.dir=... for -m)") from None


def check_output_parent(path: Path, key: str) -> None:
    """Before Hydra creates ``path``: its nearest existing ancestor must be a writable directory."""
    path = Path(path).absolute()
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor == path and path.is_dir():
        writable = os.access(path, os.W_OK | os.X_OK)
    elif not ancestor.is_dir():
        raise SnnrunError(f"{key}: cannot create the output directory {path}: {ancestor} is a file, not a directory")
    else:
        writable = os.access(ancestor, os.W_OK | os.X_OK)
    if not writable:
        raise SnnrunError(f"{key}: cannot create the output directory {path}: {ancestor} is not writable")


#: errno values of a full disk, an exhausted quota and a file size limit (RLIMIT_FSIZE)
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def write_error(path: Path | str, err: OSError) -> SnnrunError:
    """The one-line error for a failed write of ``path``."""
    reason = err.strerror or str(err)
    if err.errno in NO_SPACE:
        return SnnrunError(f"no space left writing {path} ({reason})")
    return SnnrunError(f"cannot write {path} ({reason})")


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same suffix, so writers that go by it still work);
    when the block ends without error it is renamed to ``path``. On any error the temporary file
    is removed (``path`` keeps its previous content, if any) and an ``OSError`` becomes
    :func:`write_error`'s :class:`SnnrunError`."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(err, OSError):
            raise write_error(path, err) from None
        raise


def write_text_atomic(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` (UTF-8) through :func:`atomic_path`, flushed to disk before the rename."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def finish_then_summarise(finish, status: str, summary: dict, run_dir: Path | None) -> None:
    """End a run: ``finish(status)`` (confusion matrix, monitors' sample file, plots), then
    ``run_dir/summary.json`` (``run_dir`` None: a process that writes no files), so the summary is
    the last file a run writes and never says ``completed`` before everything else is on disk. If
    ``finish`` fails (a full disk), the summary says ``failed`` with the error instead, or, when
    even that cannot be written, an older summary of the run directory is removed."""
    import json

    try:
        finish(status)
    except Exception as err:
        if run_dir is not None:
            failed = {**summary, "status": "failed", "error": str(err)}
            try:
                write_text_atomic(Path(run_dir) / "summary.json", json.dumps(failed, indent=2) + "\n")
            except SnnrunError:
                with contextlib.suppress(OSError):
                    (Path(run_dir) / "summary.json").unlink()
        raise
    if run_dir is not None:
        write_text_atomic(Path(run_dir) / "summary.json", json.dumps(summary, indent=2) + "\n")
