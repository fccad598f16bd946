"""``snnrun reproduce RUN_DIR``: re-run a saved run and compare its final metrics.

The saved ``.hydra/config.yaml`` is used as the primary config of a fresh ``snnrun`` process
(so it is re-validated and built exactly like a new run) writing into a new directory
(``--out DIR``, default ``RUN_DIR-reproduced[-N]``). Saved and reproduced final metrics are
printed side by side; the exit code is 1 when any differs by more than ``--tol`` (absolute,
default 0: on CPU with the same seed the run is bit-for-bit deterministic). Differences in the
snnrun, torch or Python version or the git commit recorded in ``summary.json`` are warned about.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from .errors import SnnrunError

VERSION_KEYS = ("snnrun", "torch", "python", "git_commit")


def _new_dir(run_dir: Path) -> Path:
    candidate = run_dir.with_name(run_dir.name + "-reproduced")
    n = 2
    while candidate.exists():
        candidate = run_dir.with_name(f"{run_dir.name}-reproduced-{n}")
        n += 1
    return candidate


def version_warnings(saved: dict, current: dict) -> list[str]:
    return [f"{key} differs: saved {saved.get(key)}, now {current.get(key)}"
            for key in VERSION_KEYS if saved.get(key) != current.get(key)]


def world_size_warning(summary: dict) -> str | None:
    """A run trained by N > 1 torchrun processes had ``data.batch_size`` per process; the re-run is one."""
    world = int(summary.get("world_size") or 1)
    if world <= 1:
        return None
    return (f"the run was trained by {world} processes (torchrun) with data.batch_size per process; this re-run "
            f"is one process: pass data.batch_size={world}x that for the same global batch (results then agree "
            f"up to float summation order, so also --tol)")


def metric_rows(saved: dict, new: dict, tol: float) -> tuple[list[tuple[str, object, object, str]], bool]:
    """(metric, saved, reproduced, verdict) rows and whether all agree within ``tol``."""
    rows, ok = [], True
    for key in sorted(set(saved) | set(new)):
        a, b = saved.get(key), new.get(key)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            same = (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol
        else:
            same = a == b
        if key in ("wall_time", "samples_per_s"):  # timings never reproduce
            rows.append((key, a, b, "(timing)"))
            continue
        ok &= same
        rows.append((key, a, b, "ok" if same else "DIFFERS"))
    return rows, ok


def reproduce(run_dir: Path, out: Path | None = None, tol: float = 0.0, overrides: list[str] | None = None) -> bool:
    saved_cfg = run_dir / ".hydra" / "config.yaml"
    saved_summary = run_dir / "summary.json"
    if not saved_cfg.is_file():
        raise SnnrunError(f"reproduce: {run_dir} is not a run directory: {saved_cfg} is missing")
    if not saved_summary.is_file():
        raise SnnrunError(f"reproduce: {run_dir} has no summary.json (the run did not finish): nothing to compare")
    saved = json.loads(saved_summary.read_text())
    out = out or _new_dir(run_dir)
    from .reproducibility import versions
    for warning in version_warnings(saved.get("versions", {}), versions()) + [world_size_warning(saved)]:
        if warning:
            print(f"snnrun: warning: {warning}", file=sys.stderr)
    cmd = [sys.executable, "-m", "snnrun", "--config-path", str(saved_cfg.parent.resolve()),
           "--config-name", "config", f"hydra.run.dir={out}", *(overrides or [])]
    print(f"snnrun: reproducing {run_dir} into {out}", flush=True)
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        raise SnnrunError(f"reproduce: the re-run failed (exit code {proc.returncode}); see {out}")
    new = json.loads((out / "summary.json").read_text())
    rows, ok = metric_rows(saved.get("final", {}), new.get("final", {}), tol)
    width = max([len(r[0]) for r in rows] + [6])
    print(f"{'metric'.ljust(width)}  {'saved':>14}  {'reproduced':>14}")
    for key, a, b, verdict in rows:
        print(f"{key.ljust(width)}  {_fmt(a):>14}  {_fmt(b):>14}  {verdict}")
    print(f"snnrun: {'reproduced' if ok else 'NOT reproduced'} (tolerance {tol:g}); new run directory {out}")
    return ok


def _fmt(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


USAGE = ("usage: snnrun reproduce RUN_DIR [--out DIR] [--tol X] [key=value ...]\n\nRe-run RUN_DIR from its saved "
         ".hydra/config.yaml into a new directory and compare final metrics (exit 1 if any differs by more than --tol, "
         "default 0).")


def main(args: list[str]) -> None:
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return
    run_dir, rest = Path(args[0]), list(args[1:])
    out, tol = None, 0.0
    for flag in ("--out", "--tol"):
        if flag in rest:
            i = rest.index(flag)
            if i + 1 >= len(rest):
                raise SnnrunError(f"reproduce: {flag} needs a value")
            value = rest[i + 1]
            del rest[i:i + 2]
            if flag == "--out":
                out = Path(value)
            else:
                try:
                    tol = float(value)
                except ValueError:
                    raise SnnrunError(f"reproduce: --tol expects a number, got {value!r}") from None
    if not reproduce(run_dir, out, tol, rest):
        sys.exit(1)
