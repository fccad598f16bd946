"""``snnrun reproduce RUN_DIR``: re-run a saved run and compare its final metrics.

The saved ``.hydra/config.yaml`` is used as the primary config of a fresh ``snnrun`` process
(so it is re-validated and built exactly like a new run) writing into a new directory
(``--out DIR``, default ``RUN_DIR-reproduced[-N]``). A ``hydra`` section in the saved config
(Hydra never writes one there) is dropped with a warning: a run directory's Hydra settings are
not trusted, and the re-run is checked like any other run (snnrun/hydra_policy.py). Saved and
reproduced final metrics are printed side by side; the exit code is 1 when any differs by more
than ``--tol`` (absolute, default 0: on CPU with the same seed the run is bit-for-bit deterministic). Before the metrics,
it says what differs between the saved run and this machine: library versions and git commit,
the CPU (model and feature set the kernels were compiled for), and per compiled kernel whether it
is built here and which path (compiled / torch reference) each run took. The paths give the same
results by design; a difference there explains a mismatch only if that design is broken.

The re-run covers the whole run: the saved ``trainer.stop_after`` (a limit of one invocation) is
ignored. A run resumed with a changed config (``snnrun resume RUN trainer.epochs=N``: the resumes
recorded in ``summary.json`` that changed keys) is replayed as it ran: the config it started with
(the saved one with those changes undone) up to the first such resume's epoch, then ``snnrun
resume`` with each change at its epoch. A fork (``snnrun resume RUN --into NEW``) started from
another run's state: reproduce its source run instead.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import SnnrunError

VERSION_KEYS = ("snnrun", "torch", "python", "numpy", "hydra", "omegaconf", "git_commit")


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


def machine_warnings(saved: dict, current: dict, when: str = "here", field: str = "build") -> list[str]:
    """Differences between two ``kernels`` records (see :func:`snnrun.kernels.report`): the CPU and
    each kernel's ``build`` state, or (``field="ran"``) the path each run took; ``when`` names the
    current record."""
    if not saved:
        return ["the saved run does not record its CPU and compiled kernels"] if field == "build" else []
    out = []
    cpu_a, cpu_b = saved.get("cpu", {}), current.get("cpu", {})
    if field == "build" and cpu_a.get("features") != cpu_b.get("features"):
        out.append(f"CPU differs: saved {cpu_a.get('model')} (features {cpu_a.get('features')}), "
                   f"{when} {cpu_b.get('model')} (features {cpu_b.get('features')})")
    kernels_a, kernels_b = saved.get("kernels", {}), current.get("kernels", {})
    for name in sorted(set(kernels_a) | set(kernels_b)):
        a, b = kernels_a.get(name, {}), kernels_b.get(name, {})
        if field == "build" and "not loaded" in (a.get("build"), b.get("build")):
            continue
        if a.get(field) != b.get(field):
            reason = f" ({b['reason']})" if field == "build" and b.get("reason") else ""
            out.append(f"kernel {name} {field}: saved {a.get(field)}, {when} {b.get(field)}{reason}")
    return out


def world_size_warning(summary: dict) -> str | None:
    """A run trained by N > 1 torchrun processes had ``data.batch_size`` per process; the re-run is one."""
    world = int(summary.get("world_size") or 1)
    if world <= 1:
        return None
    return (f"the run was trained by {world} processes (torchrun) with data.batch_size per process; this re-run "
            f"is one process: pass data.batch_size={world}x that for the same global batch (results then agree "
            f"up to float summation order, so also --tol)")


def same_threads(saved: dict, overrides: list[str]) -> list[str]:
    """``trainer.threads=N`` with the run's recorded thread count (``summary.json``: ``threads``), so
    the re-run reduces in the same order (a convolution's sums may round differently on another
    count); nothing when the command line sets it or the run recorded none."""
    count = (saved.get("threads") or {}).get("count")
    if not isinstance(count, int) or any(o.split("=", 1)[0].lstrip("+") == "trainer.threads" for o in overrides):
        return []
    return [f"trainer.threads={count}"]


#: summary fields of a task run that are not its results (timings, counts of the run's own history)
NOT_RESULTS = ("seed", "world_size", "wall_time_s", "train_time_s", "train_samples_per_s")


def results(summary: dict) -> dict:
    """What a re-run must reproduce: a train run's ``final`` metrics, or a task's numeric summary fields."""
    if "final" in summary:
        return dict(summary["final"])
    return {k: v for k, v in summary.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in NOT_RESULTS}


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


def _trusted_config_dir(saved_cfg: Path, scratch: Path, segments: list[dict] = ()) -> tuple[Path, object]:
    """The folder of the config to re-run and that config: always a copy of the saved ``config.yaml``
    alone in ``scratch`` (so a crafted run directory cannot pull other files of its ``.hydra`` folder in
    through a ``defaults`` list), without a ``hydra`` section (Hydra never saves one there) and
    ``allow_targets``, and with config-changing resumes (``segments``) undone."""
    from omegaconf import OmegaConf

    from .config_files import check_config_file
    from .hydra_policy import drop_saved_hydra
    from .resume import initial_config

    check_config_file(saved_cfg, refuse_allow_targets=False)  # invalid YAML, duplicate keys: one line naming them
    try:
        cfg = OmegaConf.load(saved_cfg)
    except Exception as err:  # noqa: BLE001 - YAML and OmegaConf errors of several types
        raise SnnrunError(f"reproduce: cannot read {saved_cfg} ({str(err).strip().splitlines()[0]})") from None
    if not OmegaConf.is_dict(cfg):
        raise SnnrunError(f"reproduce: {saved_cfg} is not a mapping of config groups")
    if "defaults" in cfg:
        raise SnnrunError(f"reproduce: {saved_cfg} has a defaults list; a saved run's config is the composed "
                          f"config and names no other files")
    cfg = initial_config(drop_saved_hydra(cfg, saved_cfg), list(segments))
    if "allow_targets" in cfg:  # never from a saved config; the command line's own reaches the re-run
        del cfg["allow_targets"]
    OmegaConf.save(cfg, scratch / "config.yaml")
    return scratch, cfg


def _stop_after(cfg, epochs: int | None) -> list[str]:
    """The override that runs ``epochs`` epochs in this invocation (None: to the end), if the config has
    a ``trainer.stop_after`` to set."""
    from omegaconf import OmegaConf

    if not OmegaConf.is_dict(cfg) or OmegaConf.select(cfg, "trainer") is None or "stop_after" not in cfg.trainer:
        return []
    if epochs is None and cfg.trainer.stop_after is None:
        return []
    return [f"trainer.stop_after={'null' if epochs is None else epochs}"]


def reproduce(run_dir: Path, out: Path | None = None, tol: float = 0.0, overrides: list[str] | None = None) -> bool:
    saved_cfg = run_dir / ".hydra" / "config.yaml"
    saved_summary = run_dir / "summary.json"
    if not saved_cfg.is_file():
        raise SnnrunError(f"reproduce: {run_dir} is not a run directory: {saved_cfg} is missing")
    if not saved_summary.is_file():
        raise SnnrunError(f"reproduce: {run_dir} has no summary.json (the run did not finish): nothing to compare")
    from .targets import check_saved_allow_targets  # before anything runs: allow_targets only from this command line
    check_saved_allow_targets(saved_cfg, overrides or [], f"snnrun reproduce {run_dir}")
    saved = json.loads(saved_summary.read_text())
    forked = saved.get("forked_from")
    if isinstance(forked, dict):
        raise SnnrunError(f"reproduce: {run_dir} is a fork of {forked.get('run_dir')} at epoch {forked.get('epoch')} "
                          f"(snnrun resume --into): it did not start from scratch; reproduce {forked.get('run_dir')} "
                          f"and fork it again with the same overrides")
    from .resume import replay_segments, resume_overrides
    segments = replay_segments(saved)
    task = saved.get("task", "train")
    if segments and task != "train":
        raise SnnrunError(f"reproduce: {run_dir} is a {task} run resumed with config changes; replaying such "
                          f"resumes is supported for task train only (re-run its config with the changes instead)")
    replays = [(int(r["epoch"]), resume_overrides(r)) for r in segments]
    out = out or _new_dir(run_dir)
    from .kernels import all_kernels, report
    from .reproducibility import versions
    for name, status in saved.get("kernels", {}).get("kernels", {}).items():
        if status.get("build") == "compiled" and name in all_kernels():
            all_kernels()[name].load()  # is it built here too?
    for warning in (version_warnings(saved.get("versions", {}), versions()) + [world_size_warning(saved)]
                    + machine_warnings(saved.get("kernels", {}), report())):
        if warning:
            print(f"snnrun: warning: {warning}", file=sys.stderr)
    print(f"snnrun: reproducing {run_dir} into {out}", flush=True)
    for epoch, changes in replays:
        print(f"snnrun: replaying its resume at epoch {epoch}: {' '.join(changes)}", flush=True)
    bounds = [epoch for epoch, _ in replays] + [None]
    with tempfile.TemporaryDirectory(prefix="snnrun-reproduce-") as clean:
        config_dir, cfg = _trusted_config_dir(saved_cfg, Path(clean), segments)
        cmd = [sys.executable, "-m", "snnrun", "--config-path", str(config_dir), "--config-name", "config",
               f"hydra.run.dir={out}", *_stop_after(cfg, bounds[0]), *same_threads(saved, overrides or []),
               *(overrides or [])]
        proc = subprocess.run(cmd)
    for i, (epoch, changes) in enumerate(replays):
        if proc.returncode != 0:
            break
        stop = [] if bounds[i + 1] is None else [f"trainer.stop_after={bounds[i + 1] - epoch}"]
        proc = subprocess.run([sys.executable, "-m", "snnrun", "resume", str(out), *changes, *stop,
                               *same_threads(saved, overrides or [])])
    if proc.returncode != 0:
        raise SnnrunError(f"reproduce: the re-run failed (exit code {proc.returncode}); see {out}")
    new = json.loads((out / "summary.json").read_text())
    for warning in machine_warnings(saved.get("kernels", {}), new.get("kernels", {}), "re-run", field="ran"):
        print(f"snnrun: warning: {warning}", file=sys.stderr)
    rows, ok = metric_rows(*(results(summary) for summary in (saved, new)), tol)
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


def main(args: list[str]) -> int:
    """Exit code: 0 when reproduced, 1 when a metric differs."""
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0
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
    return 0 if reproduce(run_dir, out, tol, rest) else 1
