"""The run directory of an API run: a fresh path, refused if it holds a run, ``.hydra`` and the log
written as the CLI writes them; the metrics and summary read back."""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from omegaconf import DictConfig, OmegaConf

from ..errors import SnnrunError
from .composing import PathLike, first_line

#: files and folders a run writes before its task starts; a run that failed with only these is removed
SETUP_FILES = {".hydra", ".lock", "snnrun.log"}
#: Hydra's default job-log format (``snnrun.log`` of a CLI run)
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


def fresh_run_dir() -> Path:
    """``outputs/<date>/<time with microseconds>``, like the CLI's ``hydra.run.dir``."""
    while True:
        now = datetime.now()
        path = Path("outputs") / now.strftime("%Y-%m-%d") / now.strftime("%H-%M-%S-%f")
        if not path.exists():
            return path


def check_new(run_dir: Path) -> None:
    """Refuse a ``run_dir`` that already holds a run."""
    held = [n for n in (".hydra/config.yaml", "summary.json", "metrics.csv", "metrics.jsonl", "checkpoints")
            if (run_dir / n).exists()]
    if held:
        raise SnnrunError(f"run_dir: {run_dir} already holds a run ({held[0]}); give a new directory (or none for "
                          f"a fresh one under outputs/), or continue that run with: snnrun resume {run_dir}")


def write_hydra_dir(run_dir: Path, cfg: DictConfig, overrides: list[str] | None) -> None:
    """``.hydra/config.yaml`` (the config as composed, interpolations kept, as Hydra saves it) and,
    when known, ``.hydra/overrides.yaml``."""
    from ..faults import write_error, write_text_atomic

    folder = run_dir / ".hydra"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_error(folder, err) from None
    write_text_atomic(folder / "config.yaml", OmegaConf.to_yaml(cfg))
    if overrides is not None:
        write_text_atomic(folder / "overrides.yaml", OmegaConf.to_yaml(OmegaConf.create(list(overrides))))


def remove_if_unstarted(run_dir: Path) -> None:
    """A run directory this call created whose task failed before writing anything of its own."""
    with contextlib.suppress(OSError):
        if {p.name for p in run_dir.iterdir()} <= SETUP_FILES:
            shutil.rmtree(run_dir)


@contextlib.contextmanager
def run_log(run_dir: Path | None, verbose: bool) -> Iterator[None]:
    """snnrun's log into ``run_dir/snnrun.log`` (and stdout when ``verbose``) for the block, at INFO."""
    logger = logging.getLogger("snnrun")
    handlers: list[logging.Handler] = []
    if run_dir is not None:
        handlers.append(logging.FileHandler(run_dir / "snnrun.log"))
        handlers[-1].setFormatter(logging.Formatter(LOG_FORMAT))
    if verbose:
        handlers.append(logging.StreamHandler(sys.stdout))
        handlers[-1].setFormatter(logging.Formatter("[snnrun] %(message)s"))
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    for handler in handlers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(level)


def read_metrics(run_dir: PathLike) -> list[dict[str, Any]]:
    """A run's metric rows: ``metrics.jsonl`` (else ``metrics.csv``, numbers parsed; blank -> None),
    one dict per epoch and split; empty when the run wrote neither."""
    run_dir = Path(run_dir)
    jsonl, table = run_dir / "metrics.jsonl", run_dir / "metrics.csv"
    if jsonl.is_file():
        rows = []
        for line in jsonl.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError):  # a line cut short by a killed run
                if line.strip():
                    rows.append(json.loads(line))
        return rows
    if table.is_file():
        with open(table, newline="", encoding="utf-8") as f:
            return [{k: number(v) for k, v in row.items()} for row in csv.DictReader(f)]
    return []


def number(text: str | None) -> Any:
    """A CSV cell as an int or float when it is one; blank -> None."""
    if text is None or text == "":
        return None
    for kind in (int, float):
        with contextlib.suppress(ValueError):
            return kind(text)
    return text


def read_summary(run_dir: Path) -> dict[str, Any]:
    """``summary.json`` of ``run_dir``; empty if the run did not write it."""
    path = run_dir / "summary.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SnnrunError(f"{path}: not readable JSON ({first_line(err)})") from None
