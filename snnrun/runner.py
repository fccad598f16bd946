"""The experiment loop: train and evaluate epochs, log metrics, checkpoint, resume."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from . import checkpoint
from .activity import ActivityCheck, ActivityError
from .build import Experiment
from .data import TensorBatches
from .decoders.base import Decoder
from .distributed import DataParallel
from .errors import NumericalError, SnnrunError
from .faults import StopSignals, check_writable, find_nonfinite, finish_then_summarise
from .learning import local
from .loggers import MetricLogger, truncate_after
from .monitors import Instruments
from .optim import advance_scheduler, configured_lr, optimizer_compatible, schedule_compatible
from .reproducibility import rng_state, set_rng_state, state_bytes, state_tensor, versions
from .resume import config_changes
from .kernels import report as kernel_report
from .tally import EpochTally, epoch_line

log = logging.getLogger("snnrun")


class Interrupted(Exception):
    """SIGINT/SIGTERM arrived; raised between batches (the message says where)."""


class Runner:
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

    # --- loops -------------------------------------------------------------------
    def _batches(self, split: str):
        d, p = self.exp.data, self.exp.data_params
        if hasattr(d, "train_set"):  # file-backed datasets: a torch DataLoader with workers
            dataset = {"train": d.train_set, "val": d.val_set, "test": d.test_set}[split]
            sampler = self.dist.sampler(len(dataset), split == "train", self.generator)
            return torch.utils.data.DataLoader(dataset, batch_size=p.batch_size if split == "train" else
                                               (p.test_batch_size or p.batch_size),
                                               shuffle=split == "train" and sampler is None, sampler=sampler,
                                               generator=self.generator, num_workers=p.num_workers)
        if split == "train":
            return self.dist.tensor_batches(TensorBatches(d.x_train, d.y_train, p.batch_size, shuffle=True,
                                                          generator=self.generator,
                                                          shift=getattr(p, "random_shift", 0)), train=True)
        x, y = (d.x_val, d.y_val) if split == "val" else (d.x_test, d.y_test)
        return self.dist.tensor_batches(TensorBatches(x, y, p.test_batch_size or p.batch_size), train=False)

    def _forward(self, x: torch.Tensor):
        exp = self.exp
        exp.network.reset()
        spikes_in = exp.encoder(x)
        record = {exp.network.output: ("v",)} if exp.decoder.needs_voltage else None
        out = exp.network(spikes_in, record=record)
        v = out.traces.get(exp.network.output, {}).get("v")
        scores = exp.decoder(out.spikes[exp.network.output], v)
        return scores, out

    def _counts(self, out) -> dict[str, torch.Tensor]:
        """This batch's spike count of each spiking population's neurons, summed over steps and
        samples, ``[*shape]`` (as the fused scan counted them, else summed here). Kept per batch
        and reduced once per epoch, for the rates and the spike metrics."""
        counts = out.counts
        return {name: counts[name] if name in counts else out.spikes[name].detach().sum((0, 1), dtype=torch.float32)
                for name in self.spiking}

    def _record(self, tally: EpochTally, split: str, loss_value: float, scores: torch.Tensor, y: torch.Tensor,
                out, last: bool, penalty: torch.Tensor | None = None) -> None:
        """A batch's bookkeeping: loss, scores, spike counts, the learner's penalty, the instruments.
        Only what must be kept is taken here; it is compared and reduced once per epoch (:meth:`_summarise`)."""
        tally.add(loss_value, scores, y, self._counts(out), next(iter(out.spikes.values())).shape[0], penalty)
        self.instruments.observe(split, out, last)

    @staticmethod
    def _rates(counts: dict[str, np.ndarray], steps: int) -> dict[str, float]:
        """Each population's spikes per neuron and step, summed over samples."""
        return {name: float(c.sum()) / (steps * c.size) for name, c in counts.items()}

    def _summarise(self, tally: EpochTally, split: str, train: bool, elapsed: float) -> dict[str, float]:
        """The split's metrics row from its epoch tally (all ranks agree on it)."""
        pred, labels = tally.predictions()
        counts = tally.neuron_counts()
        rates = self._rates(counts, tally.steps)
        loss_sum, correct, count, rates = self.dist.sum_totals(tally.loss_sum, int((pred == labels).sum()),
                                                               tally.count, rates)
        metrics = {f"{split}/loss": loss_sum / max(count, 1), f"{split}/accuracy": correct / max(count, 1),
                   "samples_per_s": count / elapsed if elapsed > 0 else float("nan")}
        for name in rates:
            metrics[f"{split}/rate/{name}"] = self._hz(rates, count, name)
        if tally.penalty is not None:  # the epoch's mean firing-rate penalty per batch (learner.rate_reg)
            metrics[f"{split}/rate_reg_loss"] = float(tally.penalty) / tally.batches
        metrics.update(self.instruments.end(split, train, pred, labels, tally.classes, counts, tally.count,
                                            tally.steps))
        return self.dist.agree(metrics)

    def run_epoch(self, train: bool, split: str | None = None) -> dict[str, float]:
        exp = self.exp
        split = split or ("train" if train else "test")
        limit = exp.trainer.limit_train_batches if train else exp.trainer.limit_test_batches
        if train:
            self.dist.seed_epoch(exp.seed, self.epoch)
        batches = self._batches(split)
        total = min(len(batches), limit) if limit else len(batches)
        exp.network.train(train)
        tally = EpochTally(exp.decoder.predict)
        learner = local.gradient_learner(exp.learners, self.epoch + 1, train)
        bar = tqdm(total=total, desc=f"epoch {self.epoch + 1}/{exp.trainer.epochs} {split}", leave=False,
                   disable=self._bar_disabled(), dynamic_ncols=True, file=sys.stderr)
        start = time.perf_counter()
        self.instruments.begin(split, train)
        anomaly = bool(getattr(exp.trainer, "detect_anomaly", False)) and train
        bf16 = getattr(exp.trainer, "precision", "fp32") == "bf16"
        autocast = (lambda: torch.autocast(exp.device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
        observe = train and type(exp.decoder).observe is not Decoder.observe  # decoders that learn from activity
        local_learners = local.local_learners(exp.learners, self.epoch + 1) if train else []
        to_device = exp.device.type != "cpu"  # in-memory and loader batches are on the CPU already there
        with torch.set_grad_enabled(train and learner.gradient), torch.autograd.set_detect_anomaly(anomaly):
            for i, (x, y) in enumerate(batches):
                if i >= total:
                    break
                if to_device:
                    x, y = x.to(exp.device, non_blocking=True), y.to(exp.device, non_blocking=True)
                active = local.begin_batch(exp, local_learners, x.shape[0])
                with autocast():
                    scores, out = self._forward(x)
                    if active:
                        self.instruments.learner_batch(local.end_batch(exp, active, scores, y))
                    loss = learner.loss(scores, y) if learner.gradient else torch.zeros((), device=exp.device)
                    penalty = learner.penalty(out) if train and learner.gradient else None  # learner.rate_reg
                loss_value = loss.item()  # read once per batch for the metrics; checked before any update
                if not math.isfinite(loss_value):
                    raise self._nonfinite(f"the {split} loss ({loss_value})", split, i, total, x)
                if train and learner.gradient:
                    exp.optimizer.zero_grad(set_to_none=True)
                    try:
                        (loss if penalty is None else loss + penalty).backward()
                    except RuntimeError as err:  # trainer.detect_anomaly: a backward function produced NaN
                        if not anomaly:
                            raise
                        raise self._nonfinite(f"a gradient (autograd anomaly: {str(err).splitlines()[0]})",
                                              split, i, total, x) from None
                    if self.dist.enabled:
                        self.dist.average_gradients(learner.parameters())
                    if learner.params.max_grad_norm:
                        torch.nn.utils.clip_grad_norm_(learner.parameters(), learner.params.max_grad_norm)
                    exp.optimizer.step()
                    exp.network.apply_constraints()
                    if exp.scheduler is not None and exp.scheduler_interval == "step":
                        exp.scheduler.step()
                if observe:
                    exp.decoder.observe(out.spikes[exp.network.output].detach(), y)
                if train:
                    self.step += 1
                self._record(tally, split, loss_value, scores, y, out, last=i == total - 1, penalty=penalty)
                if train:
                    self.activity.after_batch(i, self.epoch, tally)  # once, after the first training batches
                if self.signals.received:
                    raise Interrupted(f"{split}, batch {i + 1}/{total}")
                if not bar.disable:
                    first = self.populations[0] if self.populations else None
                    rates = {first: tally.running_spikes(first) / (tally.steps * tally.counts[first][0].numel())} \
                        if first in tally.counts else {}
                    bar.update(1)
                    bar.set_postfix(loss=f"{tally.loss_sum / tally.count:.3f}",
                                    acc=f"{tally.running_correct() / tally.count:.3f}",
                                    rate=f"{self._hz(rates, tally.count, first):.1f}Hz" if rates else "-")
        bar.close()
        if train:
            exp.decoder.end_epoch()
        return self._summarise(tally, split, train, time.perf_counter() - start)

    def _hz(self, rates: dict, count: int, name: str) -> float:
        """Mean firing rate in Hz: spikes per neuron per step / dt (ms) · 1000."""
        return rates.get(name, 0.0) / max(count, 1) * 1000.0 / self.exp.network.dt

    def _bar_disabled(self):
        progress = self.exp.trainer.progress
        if not self.dist.is_main:
            return True
        return None if progress is None else not progress

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
        overrides = list(getattr(resume, "overrides", ()))
        changes = config_changes(state.get("config_yaml"), self.config_yaml) if self.config_yaml and \
            state.get("config_yaml") else {}
        carried = [k for k in ("optimizer", "scheduler") if self.carried[k]]
        if source is not None:
            self.forked_from = {"run_dir": str(source), "epoch": self.epoch, "checkpoint": path.name,
                                "overrides": overrides, "changes": changes}
            self.best = {}  # best.pt of the fork is chosen among its own epochs
            log.info("forking %s at epoch %d into %s; carried over: model, decoder, learners, RNG%s; changed: %s",
                     source, self.epoch, self.run_dir, "".join(", " + k for k in carried), ", ".join(changes) or "nothing")
        else:
            self.history.append({"epoch": self.epoch, "overrides": overrides, "changes": changes})
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

    def _nonfinite(self, what: str, split: str, batch: int | None, total: int | None,
                   inputs: torch.Tensor | None = None) -> NumericalError:
        """The error for NaN/Inf in ``what``: where it is, when, and which checkpoint is still good."""
        where = f"{split}, batch {batch + 1}/{total}, step {self.step}" if batch is not None else \
            f"after training, step {self.step}"
        cause = find_nonfinite(self.exp.network, inputs) if batch is not None else None
        cause = f"; first non-finite value: {cause}" if cause else \
            ("; weights, neuron states and the input batch are finite" if batch is not None else "")
        epoch = self.epoch + 1 if split == "train" else self.epoch  # evaluation runs after the epoch count grew
        last = self.run_dir / "checkpoints" / "last.pt"
        message = (f"non-finite values in {what} in epoch {epoch} ({where}){cause}; the run stopped, "
                   f"last good checkpoint {last} (epoch {epoch - 1}) is kept")
        log.error(message)
        return NumericalError(message)

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
                **({"activity": self.activity.summary()} if self.activity.mode != "off" else {}),
                **({"resumes": self.history} if self.history else {}),
                **({"forked_from": self.forked_from} if self.forked_from else {})}
