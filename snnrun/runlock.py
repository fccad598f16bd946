"""One writer per run directory.

Two ``snnrun`` processes writing one run directory (two runs with the same ``hydra.run.dir``, two
``snnrun resume RUN``, a run and a resume) would interleave metric rows and overwrite each other's
checkpoints. A writer therefore holds an exclusive ``fcntl.flock`` on ``RUN_DIR/.lock`` for as long
as it runs; a second writer is refused at once (:class:`RunDirBusy`, exit code 2) with the holder's
PID, which the lock file holds as text. The kernel releases a ``flock`` when its process ends, also
on SIGKILL, so a lock file left behind never blocks ``snnrun resume``: its PID text is information
only. On systems without ``fcntl`` there is no lock.

Before it writes, the holder also refuses run directories whose files snnrun appends to are
symbolic links leading out of the directory (a crafted run directory with ``snnrun.log`` linked to
a shell start-up file would otherwise get log lines appended to that file).
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import SnnrunError

LOCK_NAME = ".lock"
#: files and folders snnrun writes at the top of a run directory (checked for outward links)
WRITTEN = (".hydra", "snnrun.log", "metrics.csv", "metrics.jsonl", "summary.json", "error.txt", "traceback.txt",
           "confusion_matrix.csv")

_held: dict[str, int] = {}  # real path of a locked run directory -> the lock file's descriptor


class RunDirBusy(SnnrunError):
    """Another process is writing this run directory."""


def _check_links(run_dir: Path) -> None:
    root = os.path.realpath(run_dir)
    for name in WRITTEN:
        path = run_dir / name
        if path.is_symlink():
            target = os.path.realpath(path)
            if not (target == root or target.startswith(root + os.sep)):
                raise SnnrunError(f"{path} is a symbolic link to {target}, outside the run directory; snnrun does "
                                  f"not write through it (remove the link)")


def lock_run_dir(run_dir: Path | str) -> bool:
    """Create ``run_dir`` if needed and hold its lock until :func:`unlock_run_dir` or the end of the
    process; True if this call took it. Taking a lock this process already holds does nothing."""
    run_dir = Path(run_dir)
    try:
        import fcntl
    except ImportError:  # not POSIX
        return False
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SnnrunError(f"cannot create the run directory {run_dir} ({err.strerror or err})") from None
    key = os.path.realpath(run_dir)
    if key in _held:
        return False
    _check_links(run_dir)
    path = run_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as err:
        raise SnnrunError(f"cannot open the run directory's lock file {path} ({err.strerror or err})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunDirBusy(f"{run_dir} is in use by another snnrun process (PID {holder}); one process writes a run "
                         f"directory at a time: wait for it to end, or stop it") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[key] = fd
    return True


def unlock_run_dir(run_dir: Path | str) -> None:
    """Release the lock taken by :func:`lock_run_dir` (the file stays; it is not a lock by itself)."""
    fd = _held.pop(os.path.realpath(run_dir), None)
    if fd is not None:
        os.close(fd)  # closing the only descriptor releases the flock
