"""``snnrun compare DIR...``: one table over runs and sweeps.

A directory holding ``.hydra/config.yaml`` or ``summary.json`` is a run; any other directory
is searched (recursively) for runs, so a sweep directory expands to its jobs. Columns: the run,
the config keys whose values differ between the runs, every final metric, the best value of the
monitored metric, status (``completed``/``stopped`` from ``summary.json``, ``failed`` when the
job left ``error.txt``/``traceback.txt``, ``incomplete`` otherwise) and wall time in seconds.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

from .errors import SnnrunError

IGNORED_KEYS = ("hydra",)


def is_run(path: Path) -> bool:
    return (path / ".hydra" / "config.yaml").is_file() or (path / "summary.json").is_file()


def find_runs(paths: list[Path]) -> list[Path]:
    """Runs in ``paths``: each path itself when it is a run, else every run below it (sorted)."""
    runs: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise SnnrunError(f"compare: {path} is not a directory")
        if is_run(path):
            runs.append(path)
            continue
        found = sorted({p.parent.parent for p in path.rglob(".hydra/config.yaml")}
                       | {p.parent for p in path.rglob("summary.json")}, key=_natural)
        if not found:
            raise SnnrunError(f"compare: no run directory (with .hydra/config.yaml or summary.json) under {path}")
        runs.extend(found)
    return runs


def _natural(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in path.parts]


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as ``{"a.b.c": value}``; lists stay values."""
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if not prefix and key in IGNORED_KEYS:
            continue
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def load_config(run: Path) -> dict:
    path = run / ".hydra" / "config.yaml"
    if not path.is_file():
        return {}
    from omegaconf import OmegaConf
    return OmegaConf.to_container(OmegaConf.load(path), resolve=False)


def load_summary(run: Path) -> dict:
    path = run / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def run_status(run: Path, summary: dict) -> str:
    if (run / "error.txt").is_file() or (run / "traceback.txt").is_file():
        return "failed"
    return summary.get("status", "incomplete")


def run_row(run: Path) -> tuple[dict, dict]:
    """(flattened config, result columns) of one run."""
    summary = load_summary(run)
    result: dict[str, Any] = {}
    for key, value in (summary.get("final") or {}).items():
        if key != "epoch" and isinstance(value, (int, float)):
            result[f"final {key}"] = value
    monitor, best = summary.get("monitor"), summary.get("best") or {}
    if monitor and monitor in best:
        result[f"best {monitor}"] = best[monitor]
        result["best epoch"] = best.get("epoch")
    result["status"] = run_status(run, summary)
    result["wall_s"] = summary.get("wall_time_s")
    return flatten(load_config(run)), result


def differing_keys(configs: list[dict]) -> list[str]:
    keys: list[str] = []
    for config in configs:
        keys.extend(k for k in config if k not in keys)
    missing = object()
    return [k for k in keys if len({repr(c.get(k, missing)) for c in configs}) > 1]


def compare_table(paths: list[Path]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the comparison of every run found in ``paths``."""
    runs = find_runs(paths)
    rows = [run_row(run) for run in runs]
    keys = differing_keys([config for config, _ in rows])
    result_cols: list[str] = []
    for _, result in rows:
        result_cols.extend(k for k in result if k not in result_cols and k not in ("status", "wall_s"))
    header = ["run"] + keys + result_cols + ["status", "wall_s"]
    table = []
    for run, (config, result) in zip(runs, rows):
        table.append([str(run)] + [config.get(k, "") for k in keys]
                     + [result.get(k, "") for k in result_cols + ["status", "wall_s"]])
    return header, table


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def short_names(names: list[str]) -> list[str]:
    """Each dotted config key as its shortest suffix no other key ends with (``neuron.tau_m`` → ``tau_m``);
    metric columns lose their ``final`` prefix."""
    out = []
    for name in names:
        if name.startswith("final "):
            out.append(name[6:])
            continue
        parts = name.split(".")
        for i in range(len(parts) - 1, -1, -1):
            suffix = ".".join(parts[i:])
            if not any(o != name and (o == suffix or o.endswith("." + suffix)) for o in names):
                break
        out.append(suffix)
    return out


def _run_names(runs: list[str]) -> list[str]:
    """Run paths relative to their common folder (the sweep directory), so the first column stays narrow."""
    import os
    if len(runs) < 2:
        return [Path(r).name or r for r in runs]
    common = os.path.commonpath([os.path.abspath(r) for r in runs])
    return [os.path.relpath(os.path.abspath(r), common) for r in runs]


def format_table(header: list[str], rows: list[list[Any]], width: int = 100, cell: int = 32) -> str:
    """The table as text no wider than ``width``: the run column, then as many further columns as fit;
    the rest follow in further blocks, each starting with the run column again. Cells longer than
    ``cell`` characters are cut with "…" (the CSV keeps them whole)."""
    def fit(text: str) -> str:
        return text if len(text) <= cell else text[:cell - 1] + "…"

    names = _run_names([str(r[0]) for r in rows])
    cells = [[fit(h) for h in ["run"] + short_names(header[1:])]]
    cells += [[fit(name)] + [fit(format_value(v)) for v in row[1:]] for name, row in zip(names, rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    blocks, current, used = [], [], widths[0]
    for i in range(1, len(header)):
        if current and used + 2 + widths[i] > width:
            blocks.append(current)
            current, used = [], widths[0]
        current.append(i)
        used += 2 + widths[i]
    blocks.append(current)
    out = []
    for block in blocks:
        columns = [0] + block
        lines = ["  ".join(row[i].ljust(widths[i]) for i in columns).rstrip() for row in cells]
        lines.insert(1, "  ".join("-" * widths[i] for i in columns))
        out.append("\n".join(lines))
    return "\n\n".join(out)


def _terminal_width() -> int:
    import shutil
    return shutil.get_terminal_size((100, 24)).columns if sys.stdout.isatty() else 100


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


USAGE = ("usage: snnrun compare DIR... [--csv FILE] [--width N]\n\nOne table over runs and sweep directories: config keys "
         "that differ, final and best metrics, status, wall time. The printed table wraps its columns into blocks "
         "of at most N characters (default: the terminal's width, 100 without a terminal); --csv writes every "
         "column with full keys and values.")


def main(args: list[str]) -> None:
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return
    options = {}
    for flag in ("--csv", "--width"):
        if flag in args:
            i = args.index(flag)
            if i + 1 >= len(args):
                raise SnnrunError(f"compare: {flag} needs a value")
            options[flag], args = args[i + 1], args[:i] + args[i + 2:]
    csv_path = Path(options["--csv"]) if "--csv" in options else None
    width = options.get("--width", "")
    if width and not (width.isdigit() and int(width) >= 40):
        raise SnnrunError(f"compare: --width must be a whole number of columns >= 40, got {width!r}")
    header, rows = compare_table([Path(a) for a in args])
    print(format_table(header, rows, int(width) if width else _terminal_width()))
    if csv_path is not None:
        write_csv(csv_path, header, rows)
        print(f"snnrun: wrote {csv_path}", file=sys.stderr)
