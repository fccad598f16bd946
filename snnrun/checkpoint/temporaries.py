"""The temporary files ``.<name>.tmp-<PID>`` that atomic checkpoint writes use, and removing
those an interrupted write left behind."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

log = logging.getLogger("snnrun")

#: temporary files of atomic writes: ``.<name>.tmp-<PID of the writer>``
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>[0-9]+)$")


def temporary_path(path: Path) -> Path:
    """The temporary file beside ``path`` that this process writes before renaming it over ``path``."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` may still be running (True when that cannot be told)."""
    if pid == os.getpid():
        return True
    if pid <= 0 or os.name == "nt":  # Windows: os.kill(pid, 0) would terminate the process
        return pid > 0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OverflowError:  # not a possible PID
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    return True


def remove_stale_temporaries(directory: str | os.PathLike, exclusive: bool = False) -> list[Path]:
    """Delete the temporary files ``.<name>.tmp-<PID>`` that a write killed midway left in
    ``directory``: those whose writer is no longer alive or, with ``exclusive`` (the caller holds
    the run directory's lock, so no other process writes there, and none of its own writes is
    running), all of them. Returns the removed paths."""
    directory = Path(directory)
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    removed = []
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        if not exclusive and _alive(int(match["pid"])):
            continue
        path = Path(entry.path)
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as err:
            log.warning("cannot remove the stale temporary file %s: %s", path, err.strerror or err)
            continue
        removed.append(path)
    if removed:
        log.info("removed %d temporary file(s) left by interrupted checkpoint writes in %s: %s", len(removed),
                 directory, ", ".join(p.name for p in removed))
    return removed


def holds_run_lock(run_dir: str | os.PathLike) -> bool:
    """Whether this process holds ``run_dir``'s writer lock (:mod:`snnrun.runlock`)."""
    from .. import runlock

    return os.path.realpath(run_dir) in getattr(runlock, "_held", {})
