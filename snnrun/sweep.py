"""Sweeps (``snnrun -m``): per-job preparation and error files, and the end-of-sweep summary.

* :func:`prepare_job` (called by the Hydra task in ``cli.py``): under a launcher other than
  Hydra's basic one (joblib, submitit, ray: several jobs share a terminal or have none),
  ``trainer.progress: null`` (auto) becomes ``false`` so bars never interleave; each job
  already logs into its own directory (``<sweep dir>/<job num>/snnrun.log`` via Hydra's job
  logging).
* :func:`write_job_error`: a failed job leaves ``error.txt`` (one line) and, for unexpected
  exceptions, ``traceback.txt``; the sweep goes on.
* :class:`SweepSummary` (a Hydra ``Callback`` registered under ``hydra.callbacks`` in
  ``configs/config.yaml``): at ``on_multirun_end`` it reads every job directory of the sweep
  and writes ``sweep_summary.csv`` (one row per job: job number, overrides, final metrics, best
  monitored metric, status, wall time) and, when ``seed`` is swept, ``sweep_summary_seeds.csv``
  (mean ± sample standard deviation over the seeds of each other-override combination), and
  prints both as tables.
"""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
import traceback
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


def prepare_job(cfg: DictConfig, hydra_cfg: Any) -> None:
    """Switch auto progress bars off when a parallel/remote launcher runs the job."""
    if hydra_cfg.mode.name != "MULTIRUN":
        return
    target = OmegaConf.select(hydra_cfg, "launcher._target_", default=BASIC_LAUNCHER)
    trainer = cfg.get("trainer")
    if target != BASIC_LAUNCHER and trainer is not None and trainer.get("progress") is None:
        with open_dict(cfg):
            cfg.trainer.progress = False


def objective_names() -> list[str]:
    """The metric names listed in ``SNNRUN_OBJECTIVES`` (comma-separated; empty when unset)."""
    return [n.strip() for n in os.environ.get("SNNRUN_OBJECTIVES", "").split(",") if n.strip()]


def objective(summary: dict) -> float | list[float] | None:
    """What the Hydra task returns (the value a sweeper such as Optuna optimises).

    The best value of the monitored metric (``trainer.monitor``: ``val/accuracy`` by default, so a
    sweep selects on the validation split, never on the test set) or its final value if there is
    no best; when the environment variable ``SNNRUN_OBJECTIVES`` lists metric names
    (comma-separated, set per job by ``hydra.job.env_set`` in ``hparams_search/optuna_rate.yaml``),
    a list with one value per name: the monitored metric's best value, the others' final values
    (NaN when missing). ``test/*`` names are refused when the run is built (as ``test/*``
    monitors are) unless ``trainer.select_on_test`` is true.
    """
    monitor = summary.get("monitor")
    best, final = summary.get("best", {}), summary.get("final", {})
    names = objective_names()
    if not names:
        return best.get(monitor, final.get(monitor))
    values = [best.get(n, final.get(n)) if n == monitor else final.get(n) for n in names]
    return [float("nan") if v is None else float(v) for v in values]


def write_job_error(run_dir: Path, err: BaseException, with_traceback: bool) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "error.txt").write_text(f"{type(err).__name__}: {err}\n" if with_traceback else f"{err}\n")
    if with_traceback:
        (run_dir / "traceback.txt").write_text("".join(traceback.format_exception(type(err), err, err.__traceback__)))


def job_dirs(sweep_dir: Path) -> list[Path]:
    jobs = [p.parent.parent for p in sweep_dir.glob("*/.hydra/overrides.yaml")]
    return sorted(jobs, key=lambda p: (0, int(p.name)) if p.name.isdigit() else (1, p.name))


def job_row(job: Path) -> dict[str, Any]:
    overrides = [str(o) for o in OmegaConf.load(job / ".hydra" / "overrides.yaml")]
    summary_path = job / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    row: dict[str, Any] = {"job": job.name}
    for item in overrides:
        key, _, value = item.partition("=")
        row[key.lstrip("+~")] = value
    for key, value in (summary.get("final") or {}).items():
        if key not in ("epoch", "wall_time", "samples_per_s") and isinstance(value, (int, float)):
            row[key] = value
    monitor, best = summary.get("monitor"), summary.get("best") or {}
    if monitor in best:
        row[f"best {monitor}"] = best[monitor]
    if (job / "error.txt").is_file():
        row["status"] = "failed"
        row["error"] = (job / "error.txt").read_text().strip().splitlines()[0][:200]
    else:
        row["status"] = summary.get("status", "incomplete")
    row["wall_s"] = summary.get("wall_time_s")
    return row


def _columns(rows: list[dict], first: list[str], last: list[str]) -> list[str]:
    cols = list(first)
    for row in rows:
        cols.extend(k for k in row if k not in cols and k not in last)
    return cols + [c for c in last if any(c in r for r in rows)]


def seed_groups(rows: list[dict], metrics: list[str], keys: list[str]) -> list[dict]:
    """Mean ± std of ``metrics`` over the seeds of each combination of the other ``keys``."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k, "") for k in keys), []).append(row)
    out = []
    for values, members in groups.items():
        entry: dict[str, Any] = dict(zip(keys, values))
        ok = [m for m in members if m.get("status") in ("completed", "stopped")]
        entry["seeds"] = len(members)
        entry["failed"] = len(members) - len(ok)
        for metric in metrics:
            xs = [float(m[metric]) for m in ok if isinstance(m.get(metric), (int, float))]
            if xs:
                entry[f"{metric} mean"] = statistics.fmean(xs)
                entry[f"{metric} std"] = statistics.stdev(xs) if len(xs) > 1 else 0.0
        out.append(entry)
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def format_rows(cols: list[str], rows: list[dict]) -> str:
    cells = [cols] + [[_fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _write_csv(path: Path, cols: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def summarize_sweep(sweep_dir: Path, swept_keys: list[str] | None = None) -> str:
    """Write ``sweep_summary.csv`` (and ``sweep_summary_seeds.csv``) in ``sweep_dir``; return the tables."""
    rows = [job_row(job) for job in job_dirs(sweep_dir)]
    if not rows:
        return f"snnrun: no jobs found in {sweep_dir}"
    override_keys: list[str] = []
    for row in rows:
        for key in row:
            if key not in override_keys and key not in ("job", "status", "wall_s", "error"):
                override_keys.append(key)
    # override keys are those from overrides.yaml: everything before the first metric column
    overrides = [k for k in override_keys if all(not isinstance(r.get(k), (int, float)) for r in rows)]
    metrics = [k for k in override_keys if k not in overrides]
    cols = ["job"] + overrides + metrics + ["status", "wall_s"] + (["error"] if any("error" in r for r in rows) else [])
    _write_csv(sweep_dir / "sweep_summary.csv", cols, rows)
    # the printed tables show the swept keys and the headline metrics; the CSV files have everything
    swept = [k for k in overrides if len({r.get(k) for r in rows}) > 1]
    shown_metrics = [m for m in metrics if m.endswith(("accuracy", "loss")) or m.startswith("best ")] or metrics
    text = [f"snnrun: sweep {sweep_dir}: {len(rows)} jobs, "
            f"{sum(r['status'] == 'failed' for r in rows)} failed; wrote sweep_summary.csv",
            format_rows(["job"] + swept + shown_metrics + ["status", "wall_s"], rows)]
    seed_swept = "seed" in swept
    if seed_swept:
        others = [k for k in overrides if k != "seed"]
        metrics_all, metrics = metrics, shown_metrics
        groups = seed_groups(rows, metrics_all + ["wall_s"], others)
        gcols = _columns(groups, others + ["seeds", "failed"], [])
        _write_csv(sweep_dir / "sweep_summary_seeds.csv", gcols, groups)
        others = [k for k in swept if k != "seed"]
        shown = [{**{k: g.get(k) for k in others + ["seeds", "failed"]},
                  **{m: f"{_fmt(g.get(m + ' mean'))} ± {_fmt(g.get(m + ' std'))}" for m in metrics + ["wall_s"]
                     if m + " mean" in g}} for g in groups]
        text += ["snnrun: mean ± std over seeds (sweep_summary_seeds.csv)",
                 format_rows(others + ["seeds", "failed"] + [m for m in metrics + ["wall_s"]
                                                            if any(m in s for s in shown)], shown)]
    return "\n".join(text)


class SweepSummary(Callback):
    """Hydra callback: the sweep summary at the end of every multirun."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            print(summarize_sweep(sweep_dir), flush=True)
        except Exception as err:  # noqa: BLE001 - a summary problem must not hide the jobs' results
            print(f"snnrun: could not summarise the sweep in {sweep_dir}: {err}", flush=True)
