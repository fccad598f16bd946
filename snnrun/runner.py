"""The experiment loop: train and evaluate epochs, log metrics, checkpoint, resume."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.contrib.logging import logging_redirect_tqdm

from . import checkpoint
from .activity import ActivityCheck, ActivityError
from .build import Experiment
from .distributed import DataParallel
from .batch_loop import BatchLoop
from .errors import SnnrunError
from .faults import Interrupted, StopSignals, check_writable, find_nonfinite, finish_then_summarise
from .loggers import MetricLogger, truncate_after
from .monitors import Instruments
from .optim import advance_scheduler, configured_lr, optimizer_compatible, schedule_compatible
from .reproducibility import rng_state, set_rng_state, state_bytes, state_tensor, versions
from .services import resume_record
from .kernels import report as kernel_report
from .tally import epoch_line

log = logging.getLogger("snnrun")


class Runner(BatchLoop):
    """Runs an :class:`Experiment` into ``run_dir``.

    Each epoch writes one metrics row per split, ``checkpoints/last.pt`` (the one
    before it kept as ``prev.pt``; a fresh run also saves epoch 0) and, when the
    monitored metric improves, ``checkpoints/best.pt``; the end writes
    ``summary.json``. ``fit(resume=True)`` continues from ``last.pt`` (``prev.pt`` if
    ``last.pt`` fails or lacks its checksum); ``fit(resume=ResumeRequest(source=DIR))`` forks
    from ``DIR``'s (see :meth:`load_state_dict` for what is carried over). NaN/Inf in the loss, weights or neuron states
    raise :class:`NumericalError`; SIGINT/SIGTERM stop at the next batch with status
    ``interrupted`` (see ``snnrun/faults.py``).
    """

    def __init__(self, exp: Experiment, run_dir: Path, config_yaml: str):
        self.exp = exp
        self.run_dir = Path(run_dir)
        self.config_yaml = config_yaml
        self.epoch = 0
        self.step = 0
        self.best: dict[str, Any] = {}
        self.final: dict[str, Any] = {}
        self.wall_offset = 0.0
        self.history: list[dict] = []  # the resumes that led to this state: epoch, overrides, config changes
        self.forked_from: dict | None = None  # a fork's source run directory and epoch
        self.writer = checkpoint.BackgroundWriter()
        self.generator = torch.Generator()
        pops = [n for n, p in exp.network.populations.items() if not p.is_input]
        self.populations = pops
        self.spiking = [n for n in pops if exp.network.populations[n].neuron.spiking]  # have spike counts
        splits = ("train", "val", "test") if exp.data.val_size else ("train", "test")
        regularised = any(getattr(lr, "rate_reg", None) is not None for lr in exp.learners)  # learner.rate_reg
        self.columns = (["epoch", "step", "split"] + [f"{s}/{m}" for s in splits for m in ("loss", "accuracy")] + ["lr"]
                        + [f"{s}/rate/{p}" for s in splits for p in pops]
                        + (["train/rate_reg_loss"] if regularised else [])
                        + ["samples_per_s", "wall_time"])
        self.dist = DataParallel(exp)  # torchrun: shards, gradient/metric all-reduce, rank-0 files (snnrun/distributed.py)
        self.instruments = self.dist.instruments(lambda: Instruments(exp, self.run_dir))  # spike metrics, monitors, plots
        self.columns[-2:-2] = self.instruments.columns(splits)
        self.signals = StopSignals()  # entered by fit(); polled between batches
        self.activity = ActivityCheck(exp, self.dist)  # silent/saturated populations (trainer.activity_check)
        self.threads: tuple[int, str] | None = None  # (intra-op threads, why): snnrun.threads.policy

    # --- state -------------------------------------------------------------------
    def state_dict(self) -> dict:
        exp = self.exp
        return {
            "model": exp.network.state_dict(),
            "decoder": exp.decoder.state_dict(),
            "optimizer": exp.optimizer.state_dict() if exp.optimizer else {},
            "optimizer_class": type(exp.optimizer).__name__ if exp.optimizer else "",
            "scheduler": exp.scheduler.state_dict() if exp.scheduler else {},
            "scheduler_class": type(exp.scheduler).__name__ if exp.scheduler else "",
            "learners": [lr.state_dict() for lr in exp.learners],
            "rng": rng_state(),
            "data_rng": state_bytes(self.generator.get_state()),
            "epoch": self.epoch,
            "step": self.step,
            "best": self.best,
            "final": self.final,
            "wall_time": self.wall_time(),
            "config_yaml": self.config_yaml,
            "history": self.history,
            "forked_from": self.forked_from,
            "activity": self.activity.state_dict(),
            "versions": versions(),
        }

    def load_state_dict(self, state: dict, source: str | Path = "the checkpoint") -> None:
        """Continue from ``state`` (from the checkpoint ``source``). The model and decoder tensors must
        fit the config (names and shapes; else one :class:`SnnrunError` naming the parameter and both
        shapes). The optimizer state (moments, step counts) is carried over only when the optimizer is
        configured as it was (:func:`snnrun.optim.optimizer_compatible`), else it starts fresh; the
        scheduler state only when, in addition, the schedule is the same
        (:func:`snnrun.optim.schedule_compatible`). Otherwise the scheduler is the one the current
        config builds, advanced to the checkpoint's epoch (or step, for ``interval: step``): the
        epochs that follow get the learning rates a run started with this config has at those epochs
        (e.g. more ``trainer.epochs`` under a cosine schedule whose horizon is ``trainer.epochs``)."""
        exp = self.exp
        checkpoint.check_fits(exp.network.state_dict(), state["model"], "the model", source)
        checkpoint.check_fits(exp.decoder.state_dict(), state.get("decoder", {}), "the decoder", source)
        exp.network.load_state_dict(state["model"])
        exp.decoder.load_state_dict(state.get("decoder", {}))
        self.carried = {"optimizer": False, "scheduler": False}
        fresh = [(g["lr"], g.get("initial_lr")) for g in exp.optimizer.param_groups] if exp.optimizer else []
        if exp.optimizer and state.get("optimizer") and \
                optimizer_compatible(exp.optimizer, state["optimizer"], state.get("optimizer_class")):
            exp.optimizer.load_state_dict(state["optimizer"])
            self.carried["optimizer"] = True
        if exp.scheduler and self.carried["optimizer"] and state.get("scheduler") and \
                schedule_compatible(exp.scheduler, state["scheduler"], state.get("scheduler_class")):
            exp.scheduler.load_state_dict(state["scheduler"])
            self.carried["scheduler"] = True
        elif exp.optimizer and (exp.scheduler or state.get("scheduler")):
            for group, (lr, initial) in zip(exp.optimizer.param_groups, fresh):  # the schedule's start
                group["lr"] = lr
                if initial is not None:
                    group["initial_lr"] = initial
            if exp.scheduler:
                self.carried["advanced"] = advance_scheduler(
                    exp.scheduler, state["step"] if exp.scheduler_interval == "step" else state["epoch"])
        for learner, learner_state in zip(exp.learners, state.get("learners", [])):
            learner.load_state_dict(learner_state)
        set_rng_state(state["rng"])
        self.generator.set_state(state_tensor(state["data_rng"]))
        self.epoch, self.step = state["epoch"], state["step"]
        self.best, self.final = dict(state["best"]), dict(state["final"])
        self.wall_offset = float(state["wall_time"])
        self.history = [dict(r) for r in state.get("history") or []]
        self.forked_from = dict(state["forked_from"]) if state.get("forked_from") else None
        self.activity.load_state_dict(state.get("activity"))

    def wall_time(self) -> float:
        return self.wall_offset + (time.perf_counter() - self._start if hasattr(self, "_start") else 0.0)

    # --- fit -----------------------------------------------------------------------
    def fit(self, resume: bool = False, trust_unverified: bool | None = None) -> dict:
        """Train to ``trainer.epochs``; ``resume`` continues from the last verified checkpoint
        (``trust_unverified``: also from one without a valid checksum file; None: the process
        default, ``snnrun resume --trust-unverified``). ``resume`` may be a
        :class:`snnrun.resume.ResumeRequest`: a fork's source run directory, the overrides to record,
        a call once the state has loaded. Each resume is recorded (``resumes`` in ``summary.json``):
        the epoch it started from, its overrides and the config keys that differ from the checkpoint's."""
        exp = self.exp
        ckpt_dir = self.run_dir / "checkpoints"
        if self.dist.is_main:
            check_writable(ckpt_dir)  # creates the run directory; unwritable or full: a clear error before training
            # temporary files of killed writes: of dead processes, or all of them while we hold the run lock
            checkpoint.remove_stale_temporaries(ckpt_dir, exclusive=checkpoint.holds_run_lock(self.run_dir))
        source = getattr(resume, "source", None)  # a fork: another run directory's state
        if resume:
            self._resume(resume, source, trust_unverified)
        else:
            self.generator.manual_seed(exp.seed)  # global RNGs were seeded when the experiment was built
        self.dist.broadcast_parameters(exp.network)
        self._start = time.perf_counter()
        metrics_log = self.dist.metric_logger(lambda: MetricLogger(self.run_dir, exp.logger.sinks, self.columns,
                                                                   config=exp.config))
        status, ran, stopped = "completed", 0, None
        self.signals = StopSignals()
        try:
            self.instruments.start(self.epoch)
            if (not resume or source is not None) and self.dist.is_main:  # epoch 0 (a fork: its first state):
                # a run killed in its first epoch resumes exactly
                checkpoint.save_rotating(self.state_dict(), ckpt_dir)
            self.checkpointed = self.epoch
            # with progress bars on screen, log lines go through tqdm so they never tear the bars
            disabled = self._bar_disabled()  # None: tqdm shows bars on a terminal
            bars = disabled is False or (disabled is None and sys.stderr.isatty())
            with logging_redirect_tqdm() if bars else contextlib.nullcontext(), self.signals:
                while self.epoch < exp.trainer.epochs:
                    if exp.trainer.stop_after is not None and ran >= exp.trainer.stop_after:
                        status = "stopped"
                        break
                    self._fit_epoch(metrics_log, ckpt_dir)
                    ran += 1
        except Interrupted as where:
            status = "interrupted"
            self.writer.wait()  # the last epoch's checkpoint is on disk before we say so
            self.epoch = self.checkpointed  # a partly run epoch (train done, evaluation cut) is not counted
            log.warning("%s received during epoch %d (%s): the partial epoch is discarded; checkpoints/last.pt "
                        "holds epoch %d; resume with: snnrun resume %s", self.signals.name, self.epoch + 1, where,
                        self.epoch, self.run_dir)
        except ActivityError as err:  # trainer.activity_check=stop: the checkpoints written so far are kept
            self.writer.wait()
            status, self.epoch = "failed", self.checkpointed
            stopped = ActivityError(f"{err}; {ckpt_dir / 'last.pt'} holds epoch {self.epoch}")
        finally:
            try:
                self.writer.close()
            finally:
                metrics_log.close()
        summary = self.summary(status)
        if status == "interrupted":
            summary["signal"] = self.signals.name
        if stopped is not None:
            summary["error"] = str(stopped)
        # monitors and plots first: summary.json is the last file a run writes ("failed" if one fails)
        finish_then_summarise(self.instruments.finish, status, summary, self.run_dir if self.dist.is_main else None)
        if stopped is not None:
            raise stopped
        return summary

    def _resume(self, resume, source: Path | None, trust_unverified: bool | None) -> None:
        exp = self.exp
        # prev.pt, with a warning, when last.pt is damaged or unverified
        state, path = checkpoint.load_latest((source or self.run_dir) / "checkpoints", trust_unverified=trust_unverified)
        self.load_state_dict(state, path)
        if self.epoch > exp.trainer.epochs:
            raise SnnrunError(f"resume: trainer.epochs={exp.trainer.epochs} is fewer than the {self.epoch} epochs "
                              f"{path} holds; set trainer.epochs to {self.epoch} or more")
        record = resume_record(resume, self.epoch, state.get("config_yaml"), self.config_yaml)
        overrides, changes = record["overrides"], record["changes"]
        carried = [k for k in ("optimizer", "scheduler") if self.carried[k]]
        if source is not None:
            self.forked_from = {"run_dir": str(source), "epoch": self.epoch, "checkpoint": path.name,
                                "overrides": overrides, "changes": changes}
            self.best = {}  # best.pt of the fork is chosen among its own epochs
            log.info("forking %s at epoch %d into %s; carried over: model, decoder, learners, RNG%s; changed: %s",
                     source, self.epoch, self.run_dir, "".join(", " + k for k in carried), ", ".join(changes) or "nothing")
        else:
            self.history.append(record)
            if self.dist.is_main:
                truncate_after(self.run_dir, self.epoch)
            log.info("resuming %s from epoch %d%s", self.run_dir, self.epoch,
                     f"; changed: {', '.join(changes)}" if changes else "")
        if not self.carried["scheduler"] and exp.scheduler is not None:
            at = f"at {exp.scheduler_interval} {self.step if exp.scheduler_interval == 'step' else self.epoch}" \
                if self.carried.get("advanced") else "fresh (its steps need the monitored metric)"
            log.info("the learning-rate schedule is not the checkpoint's: %s rebuilt from this config %s, lr %.6g",
                     type(exp.scheduler).__name__, at, configured_lr(exp.optimizer))
        on_start = getattr(resume, "on_start", None)
        if on_start is not None and self.dist.is_main:
            on_start(self.epoch)

    def _fit_epoch(self, metrics_log: MetricLogger, ckpt_dir: Path) -> None:
        exp = self.exp
        lr = configured_lr(exp.optimizer) if exp.optimizer else None  # in the config's unit (groups scale it)
        train = self.run_epoch(train=True)
        found = find_nonfinite(exp.network)  # weights and last neuron states, before this epoch is checkpointed
        if found:
            raise self._nonfinite(found, "train", None, None)
        self.epoch += 1
        row = {"epoch": self.epoch, "step": self.step, "split": "train", "lr": lr, **train,
               "wall_time": self.wall_time()}
        metrics_log.log(row)
        metrics = {k: v for k, v in train.items() if k.startswith("train/")}
        if exp.data.val_size:
            val = self.run_epoch(train=False, split="val")
            metrics_log.log({"epoch": self.epoch, "step": self.step, "split": "val", "lr": lr, **val,
                             "wall_time": self.wall_time()})
            metrics.update({k: v for k, v in val.items() if k.startswith("val/")})
        if self.epoch % exp.trainer.eval_every == 0 or self.epoch == exp.trainer.epochs:
            test = self.run_epoch(train=False)
            metrics_log.log({"epoch": self.epoch, "step": self.step, "split": "test", "lr": lr, **test,
                             "wall_time": self.wall_time()})
            metrics.update({k: v for k, v in test.items() if k.startswith("test/")})
        if exp.scheduler is not None and exp.scheduler_interval == "epoch":
            if isinstance(exp.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):  # the monitor: val/* by default
                exp.scheduler.step(metrics.get(exp.trainer.monitor, metrics.get("train/loss")))
            else:
                exp.scheduler.step()
        self.final = {**self.final, **metrics, "epoch": self.epoch}
        improved = self._improved(metrics)
        if improved:
            self.best = {**metrics, "epoch": self.epoch}
        log.info("%s", epoch_line(self.epoch, exp.trainer.epochs, metrics))
        if self.dist.is_main:
            # the state is taken now; the files are written while the next epoch trains
            self.writer.submit(self._write_checkpoints, ckpt_dir, checkpoint.serialize(self.state_dict()), improved)
        self.checkpointed = self.epoch
        self.instruments.after_epoch(self.epoch, metrics_log)
        self.activity.after_epoch(self.epoch, train)  # may stop the run (trainer.activity_check=stop)

    @staticmethod
    def _write_checkpoints(ckpt_dir: Path, data: bytes, improved: bool) -> None:
        last = checkpoint.save_rotating(data, ckpt_dir)  # the one before becomes prev.pt
        if improved:
            checkpoint.save_copy(last, ckpt_dir / "best.pt")

    def _improved(self, metrics: dict) -> bool:
        key = self.exp.trainer.monitor
        value = metrics.get(key)
        if value is None or not math.isfinite(value):
            return not self.best
        old = self.best.get(key)
        if old is None:
            return True
        return value > old if self.exp.trainer.mode == "max" else value < old

    def selection(self) -> dict:
        """How best.pt was selected: the monitored metric, its split, the validation split used."""
        exp = self.exp
        split = exp.trainer.monitor.split("/")[0]
        return {"monitor": exp.trainer.monitor, "mode": exp.trainer.mode,
                "split": split if split in ("train", "val", "test") else None,
                "select_on_test": exp.trainer.select_on_test, "val_size": exp.data.val_size,
                "val_fraction": getattr(exp.data_params, "val_fraction", None),
                "val_seed": getattr(exp.data_params, "val_seed", None)}

    def summary(self, status: str) -> dict:
        exp = self.exp
        return {"status": status, "epochs_completed": self.epoch, "epochs": exp.trainer.epochs,
                "final": self.final, "best": self.best, "monitor": exp.trainer.monitor, "selection": self.selection(),
                "seed": exp.seed,
                "device": str(exp.device), "wall_time_s": round(self.wall_time(), 3), "versions": versions(),
                "kernels": kernel_report(),
                "run_dir": str(self.run_dir), "world_size": self.dist.ctx.world_size,  # processes (torchrun)
                **({"threads": {"count": self.threads[0], "chosen_by": self.threads[1]}} if self.threads else {}),
                **({"activity": self.activity.summary()} if self.activity.mode != "off" else {}),
                **({"resumes": self.history} if self.history else {}),
                **({"forked_from": self.forked_from} if self.forked_from else {})}
