"""The run services a task gets: metric sinks, checkpoints with exact resume, stop signals, summary.

``task: train`` has them in :class:`snnrun.runner.Runner`; every other task (``current_clamp``,
``stdp_window``, ``diehl_cook``, ``rstdp_xor``, a plug-in's) runs its loop inside
:meth:`RunServices.run`::

    services = RunServices.from_config(cfg, run_dir, "rstdp_xor", seed, COLUMNS, step_key="trial")
    services.register_generator("noise", noise)      # saved and restored with the global RNG
    return services.run(body, resume)                 # body(services, state) -> the task's summary fields

``state`` is None on a fresh run and the task's own state of the checkpoint on ``resume``. In its
loop the body

- logs metric rows with :meth:`RunServices.log`, through the configured ``logger.sinks``
  (:class:`snnrun.loggers.MetricLogger`: ``metrics.csv``/``.jsonl``, TensorBoard, MLflow, W&B); a
  row's step is its ``step_key`` column;
- saves its state with :meth:`RunServices.checkpoint` at safe points, and once at the start of a
  fresh run (so a run killed before its first boundary resumes): ``checkpoints/last.pt``, the one
  before kept as ``prev.pt``, each with its SHA-256 (:func:`snnrun.checkpoint.save_rotating`,
  written on a background thread), holding the task's state, the global RNG state and the state of
  every registered ``torch.Generator``;
- calls :meth:`RunServices.poll` at each point where it may stop: after SIGINT/SIGTERM
  (:class:`snnrun.faults.StopSignals`) it raises :class:`Interrupted`; the run ends with status
  ``interrupted``, the last checkpoint kept (work after it is redone on resume).

On ``resume`` (``snnrun resume RUN_DIR``) the latest verified checkpoint is loaded (``prev.pt`` when
``last.pt`` is damaged or unverified), the RNG streams are restored, metric rows after it are
dropped (:func:`snnrun.loggers.truncate_after`) and the resume is recorded (``resumes`` in
``summary.json``: where it started, its overrides, the config keys it changed). A run resumed from
a checkpoint ends as the uninterrupted run does when the task's state holds everything its loop
carries.

``summary.json`` gets the task's fields and the common ones (status, task, seed, versions, kernels
report, run_dir, wall_time_s; ``resumes``; ``signal`` and ``checkpoint`` when interrupted); the
figures (``plots``) are drawn before it, so it is the last file a run writes. With ``run_dir``
None nothing is written (the services still poll for signals).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch

from . import checkpoint
from .errors import SnnrunError
from .faults import Interrupted, StopSignals, check_writable, finish_then_summarise
from .loggers import MetricLogger, truncate_after
from .reproducibility import rng_state, set_rng_state, state_bytes, state_tensor, versions

log = logging.getLogger("snnrun")

#: checkpoint keys the services own; a task's state uses other names (``model``, ``rows``, ...)
RESERVED = ("format_version", "task", "position", "step_key", "rng", "generators", "wall_time", "config_yaml",
            "history", "versions")


def written_config(cfg) -> str:
    """``cfg`` (a DictConfig or mapping) as YAML, interpolations as written and without ``hydra``: what
    a checkpoint records and a resume compares (:func:`snnrun.resume.config_changes`)."""
    from omegaconf import OmegaConf

    written = cfg if OmegaConf.is_config(cfg) else OmegaConf.create(dict(cfg))
    if "hydra" in written:
        written = written.copy()
        OmegaConf.set_struct(written, False)
        del written["hydra"]
    return OmegaConf.to_yaml(written)


def resume_record(resume: Any, position: int, saved_yaml: str | None, config_yaml: str | None,
                  key: str = "epoch") -> dict:
    """The record of one resume (``resumes`` in ``summary.json``): where it started (``{key: position}``),
    the command line's overrides (a :class:`snnrun.resume.ResumeRequest`'s) and the config keys that
    differ between the checkpoint's config ``saved_yaml`` and the one that runs now."""
    from .resume import config_changes

    changes = config_changes(saved_yaml, config_yaml) if saved_yaml and config_yaml else {}
    return {key: position, "overrides": list(getattr(resume, "overrides", ())), "changes": changes}


class RunServices:
    """Metric sinks, checkpoints with exact resume, stop signals and the summary of one task run.

    ``columns``: the metric columns (``metrics.csv``'s header), ``step_key`` the one that counts the
    rows (trials, samples; TensorBoard's step; what a resume truncates after); ``scalars``: the
    columns TensorBoard shows (default: all but ``step_key`` and ``wall_time``); ``sinks``:
    ``logger.sinks``; ``config``: the resolved config (MLflow/W&B params), ``config_yaml`` the config
    as written (compared with the checkpoint's on resume); ``plots``: the ``plots`` node."""

    def __init__(self, run_dir: str | Path | None, task: str, seed: int | None, columns: Iterable[str],
                 step_key: str, sinks: Iterable[str] = ("csv", "jsonl"), scalars: Iterable[str] | None = None,
                 config: Mapping | None = None, config_yaml: str = "", plots: Any = None):
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.task, self.seed = task, seed
        self.columns, self.step_key = list(columns), step_key
        if step_key not in self.columns:
            raise ValueError(f"RunServices: step_key {step_key!r} is not one of the columns {self.columns}")
        self.scalars = tuple(scalars) if scalars is not None else \
            tuple(c for c in self.columns if c not in (step_key, "wall_time"))
        self.sinks, self.config, self.config_yaml, self.plots = list(sinks), dict(config or {}), config_yaml, plots
        self.generators: dict[str, torch.Generator] = {}
        self.history: list[dict] = []  # the resumes that led to this state
        self.position: int | None = None  # the step of the last checkpoint
        self.wall_offset = 0.0
        self.signals = StopSignals()
        self.writer = checkpoint.BackgroundWriter()
        self.metrics: MetricLogger | None = None
        self._start: float | None = None

    @classmethod
    def from_config(cls, cfg, run_dir: str | Path | None, task: str, seed: int | None, columns: Iterable[str],
                    step_key: str, scalars: Iterable[str] | None = None) -> "RunServices":
        """The services of a task run of ``cfg`` (a DictConfig or mapping): its ``logger`` node parsed
        with :class:`snnrun.build.LoggerParams`, its ``plots`` node, the config for the record."""
        from .build import LoggerParams, to_container
        from .schema import parse_params

        config = to_container(cfg)
        config.pop("hydra", None)
        logger = parse_params(LoggerParams, config.get("logger") or {}, "logger")
        return cls(run_dir, task, seed, columns, step_key, logger.sinks, scalars, config, written_config(cfg),
                   config.get("plots"))

    # --- what a task calls ------------------------------------------------------------
    def register_generator(self, name: str, generator: torch.Generator) -> None:
        """Save ``generator``'s state with every checkpoint and restore it on resume (before the run)."""
        self.generators[name] = generator

    def log(self, row: Mapping[str, Any]) -> None:
        """One metrics row (keys: ``columns``) to the configured sinks."""
        if self.metrics is not None:
            self.metrics.log(dict(row))

    def checkpoint(self, position: int, state: Mapping[str, Any]) -> None:
        """Save ``state`` (tensors and primitives; a network's ``state_dict()`` under ``model``, as
        ``train`` does) as the run's state at ``position`` (in ``step_key`` units), with the RNG
        states. The bytes are taken now; the file is written while the task goes on."""
        clash = [k for k in state if k in RESERVED]
        if clash:
            raise ValueError(f"RunServices.checkpoint: {', '.join(clash)} are the services' own checkpoint keys")
        self.position = int(position)
        if self.run_dir is None:
            return
        payload = {**state, "task": self.task, "position": self.position, "step_key": self.step_key,
                   "rng": rng_state(),
                   "generators": {name: state_bytes(g.get_state()) for name, g in self.generators.items()},
                   "wall_time": self.wall_time(), "config_yaml": self.config_yaml, "history": self.history,
                   "versions": versions()}
        self.writer.submit(checkpoint.save_rotating, checkpoint.serialize(payload), self.run_dir / "checkpoints")

    def poll(self, where: str = "") -> None:
        """Raise :class:`Interrupted` if SIGINT/SIGTERM arrived (call it where the task may stop)."""
        if self.signals.received:
            raise Interrupted(where)

    def wall_time(self) -> float:
        """Seconds this run has run, over all its resumes."""
        return self.wall_offset + (time.perf_counter() - self._start if self._start is not None else 0.0)

    # --- the run ----------------------------------------------------------------------
    def run(self, body: Callable[["RunServices", dict | None], Mapping[str, Any] | None], resume: Any = False,
            trust_unverified: bool | None = None) -> dict:
        """Run ``body(services, state)`` with the services and return the summary (written to
        ``summary.json`` last). ``resume`` (True or a :class:`snnrun.resume.ResumeRequest`)
        continues from the latest verified checkpoint (``trust_unverified``: also from one without a
        valid checksum file; None: the process default, ``snnrun resume --trust-unverified``)."""
        state = None
        if self.run_dir is not None:
            ckpt_dir = self.run_dir / "checkpoints"
            check_writable(ckpt_dir)  # creates the run directory; unwritable or full: a clear error first
            checkpoint.remove_stale_temporaries(ckpt_dir, exclusive=checkpoint.holds_run_lock(self.run_dir))
            if resume:
                state = self._resume(resume, trust_unverified)
            self.metrics = MetricLogger(self.run_dir, self.sinks, self.columns, config=self.config,
                                        step_key=self.step_key, scalars=self.scalars)
        elif resume:
            raise SnnrunError(f"{self.task}: resume needs a run directory")
        self._start = time.perf_counter()
        status, fields = "completed", {}
        try:
            with self.signals:
                fields = dict(body(self, state) or {})
        except Interrupted as where:
            status = "interrupted"
            self.writer.wait()  # the last checkpoint is on disk before we say so
            log.warning("%s received (%s): the work after the last checkpoint is discarded; checkpoints/last.pt "
                        "holds %s %s; resume with: snnrun resume %s", self.signals.name, where, self.step_key,
                        self.position, self.run_dir)
        finally:
            try:
                self.writer.close()
            finally:
                if self.metrics is not None:
                    self.metrics.close()
        summary = self.summary(status, fields)
        finish_then_summarise(self._figures, status, summary, self.run_dir)
        return summary

    def summary(self, status: str, fields: Mapping[str, Any]) -> dict:
        """The task's ``fields`` with the fields every run's summary has."""
        from .kernels import report as kernel_report

        summary = {"status": status, "task": self.task, **fields}
        summary.update({"status": status, "task": self.task, "seed": self.seed, "versions": versions(),
                        "kernels": kernel_report(), "run_dir": str(self.run_dir) if self.run_dir else None,
                        "wall_time_s": round(self.wall_time(), 3)})
        if self.history:
            summary["resumes"] = self.history
        if status == "interrupted":
            summary["signal"] = self.signals.name
            summary["checkpoint"] = {self.step_key: self.position}
            summary["message"] = (f"interrupted by {self.signals.name}; checkpoints/last.pt holds {self.step_key} "
                                  f"{self.position}; resume with: snnrun resume {self.run_dir}")
        return summary

    def _figures(self, status: str) -> None:
        """The run's figures (``plots``), for a completed run, before ``summary.json``."""
        if status == "completed" and self.run_dir is not None:
            from .plots import plot_after_task
            plot_after_task(self.plots, self.run_dir)

    def _resume(self, resume: Any, trust_unverified: bool | None) -> dict:
        """Load the latest verified checkpoint: RNG streams restored, later metric rows dropped, the
        resume recorded; returns the task's state."""
        state, path = checkpoint.load_latest(self.run_dir / "checkpoints", trust_unverified=trust_unverified)
        if state.get("task") != self.task:
            raise SnnrunError(f"resume: {path} is a checkpoint of task {state.get('task') or 'train'}, not of "
                              f"{self.task}")
        missing = [name for name in self.generators if name not in (state.get("generators") or {})]
        if missing:
            raise SnnrunError(f"resume: {path} holds no state of the random generator {', '.join(missing)}")
        set_rng_state(state["rng"])
        for name, generator in self.generators.items():
            generator.set_state(state_tensor(state["generators"][name]))
        self.position = int(state["position"])
        self.wall_offset = float(state.get("wall_time") or 0.0)
        self.history = [dict(r) for r in state.get("history") or []]
        record = resume_record(resume, self.position, state.get("config_yaml"), self.config_yaml, self.step_key)
        self.history.append(record)
        truncate_after(self.run_dir, self.position, self.step_key)
        log.info("resuming %s (%s) from %s %d%s", self.run_dir, self.task, self.step_key, self.position,
                 f"; changed: {', '.join(record['changes'])}" if record["changes"] else "")
        on_start = getattr(resume, "on_start", None)
        if on_start is not None:
            on_start(self.position)
        return {k: v for k, v in state.items() if k not in RESERVED}
