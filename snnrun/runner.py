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
from .build import Experiment
from .data import TensorBatches
from .decoders.base import Decoder
from .distributed import DataParallel
from .errors import NumericalError, SnnrunError
from .faults import StopSignals, check_writable, find_nonfinite
from .learning import local
from .loggers import MetricLogger, truncate_after
from .monitors import Instruments
from .reproducibility import rng_state, set_rng_state, state_bytes, state_tensor, versions
from .kernels import report as kernel_report

log = logging.getLogger("snnrun")


class Interrupted(Exception):
    """SIGINT/SIGTERM arrived; raised between batches (the message says where)."""


class EpochTally:
    """One split's sums over an epoch: loss and samples, and per batch the detached scores, labels
    and spike counts. Those are kept as they are and compared or reduced once, at the end of the
    epoch: a small tensor op costs about as much as a batch of the default network's encoding."""

    def __init__(self, predict):
        self.predict = predict  # the decoder's scores -> classes (stateless)
        self.loss_sum, self.count, self.steps, self.classes = 0.0, 0, 1, 0
        self.scores: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []
        self.counts: dict[str, list[torch.Tensor]] = {}
        self._correct, self._checked = 0, 0  # correct predictions among the first `_checked` batches
        self._spikes: dict[str, tuple[float, int]] = {}  # per population: spikes among the first n batches

    def add(self, loss_value: float, scores: torch.Tensor, y: torch.Tensor, counts: dict[str, torch.Tensor],
            steps: int) -> None:
        n = y.shape[0]
        self.loss_sum += loss_value * n
        self.count += n
        self.steps = steps
        self.classes = max(self.classes, int(scores.shape[-1]) if scores.dim() > 1 else 0)
        self.scores.append(scores.detach() if scores.requires_grad else scores)
        self.labels.append(y)
        for name, c in counts.items():
            self.counts.setdefault(name, []).append(c)

    def predictions(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every prediction and label of the epoch, ``[samples]`` each."""
        if not self.scores:
            return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
        return self.predict(torch.cat(self.scores)).reshape(-1), torch.cat(self.labels).reshape(-1)

    def running_correct(self) -> int:
        """Correct predictions so far, for the progress bar (predicts only the new batches)."""
        if self._checked < len(self.scores):
            pred = self.predict(torch.cat(self.scores[self._checked:])).reshape(-1)
            self._correct += int((pred == torch.cat(self.labels[self._checked:]).reshape(-1)).sum())
            self._checked = len(self.scores)
        return self._correct

    def running_spikes(self, name: str) -> float:
        """Spikes of population ``name`` so far, for the progress bar (sums only the new batches)."""
        total, seen = self._spikes.get(name, (0.0, 0))
        parts = self.counts[name]
        total += sum(float(c.sum()) for c in parts[seen:])
        self._spikes[name] = (total, len(parts))
        return total

    def neuron_counts(self) -> dict[str, np.ndarray]:
        """Each spiking population's spike count per neuron over the epoch (flattened, float64)."""
        return {name: torch.stack(cs).sum(0).reshape(-1).cpu().numpy().astype(np.float64)
                for name, cs in self.counts.items()}


class Runner:
    """Runs an :class:`Experiment` into ``run_dir``.

    Each epoch writes one metrics row per split, ``checkpoints/last.pt`` (the one
    before it kept as ``prev.pt``; a fresh run also saves epoch 0) and, when the
    monitored metric improves, ``checkpoints/best.pt``; the end writes
    ``summary.json``. ``fit(resume=True)`` continues from ``last.pt`` (``prev.pt`` if
    ``last.pt`` fails its checksum). NaN/Inf in the loss, weights or neuron states
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
        self.writer = checkpoint.BackgroundWriter()
        self.generator = torch.Generator()
        pops = [n for n, p in exp.network.populations.items() if not p.is_input]
        self.populations = pops
        self.spiking = [n for n in pops if exp.network.populations[n].neuron.spiking]  # have spike counts
        splits = ("train", "val", "test") if exp.data.val_size else ("train", "test")
        self.columns = (["epoch", "step", "split"] + [f"{s}/{m}" for s in splits for m in ("loss", "accuracy")] + ["lr"]
                        + [f"{s}/rate/{p}" for s in splits for p in pops]
                        + ["samples_per_s", "wall_time"])
        self.dist = DataParallel(exp)  # torchrun: shards, gradient/metric all-reduce, rank-0 files (snnrun/distributed.py)
        self.instruments = self.dist.instruments(lambda: Instruments(exp, self.run_dir))  # spike metrics, monitors, plots
        self.columns[-2:-2] = self.instruments.columns(splits)
        self.signals = StopSignals()  # entered by fit(); polled between batches

    # --- state -------------------------------------------------------------------
    def state_dict(self) -> dict:
        exp = self.exp
        return {
            "model": exp.network.state_dict(),
            "decoder": exp.decoder.state_dict(),
            "optimizer": exp.optimizer.state_dict() if exp.optimizer else {},
            "scheduler": exp.scheduler.state_dict() if exp.scheduler else {},
            "learners": [lr.state_dict() for lr in exp.learners],
            "rng": rng_state(),
            "data_rng": state_bytes(self.generator.get_state()),
            "epoch": self.epoch,
            "step": self.step,
            "best": self.best,
            "final": self.final,
            "wall_time": self.wall_time(),
            "config_yaml": self.config_yaml,
            "versions": versions(),
        }

    def load_state_dict(self, state: dict) -> None:
        exp = self.exp
        exp.network.load_state_dict(state["model"])
        exp.decoder.load_state_dict(state.get("decoder", {}))
        if exp.optimizer and state.get("optimizer"):
            exp.optimizer.load_state_dict(state["optimizer"])
        if exp.scheduler and state.get("scheduler"):
            exp.scheduler.load_state_dict(state["scheduler"])
        for learner, learner_state in zip(exp.learners, state.get("learners", [])):
            learner.load_state_dict(learner_state)
        set_rng_state(state["rng"])
        self.generator.set_state(state_tensor(state["data_rng"]))
        self.epoch, self.step = state["epoch"], state["step"]
        self.best, self.final = dict(state["best"]), dict(state["final"])
        self.wall_offset = float(state["wall_time"])

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
                out, last: bool) -> None:
        """A batch's bookkeeping: loss, scores, spike counts, the instruments. Only what must be kept
        is taken here; it is compared and reduced once per epoch (:meth:`_summarise`)."""
        tally.add(loss_value, scores, y, self._counts(out), next(iter(out.spikes.values())).shape[0])
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
                loss_value = loss.item()  # read once per batch for the metrics; checked before any update
                if not math.isfinite(loss_value):
                    raise self._nonfinite(f"the {split} loss ({loss_value})", split, i, total, x)
                if train and learner.gradient:
                    exp.optimizer.zero_grad(set_to_none=True)
                    try:
                        loss.backward()
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
                self._record(tally, split, loss_value, scores, y, out, last=i == total - 1)
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
    def fit(self, resume: bool = False) -> dict:
        exp = self.exp
        ckpt_dir = self.run_dir / "checkpoints"
        if self.dist.is_main:
            check_writable(ckpt_dir)  # creates the run directory; unwritable or full: a clear error before training
        if resume:
            state, _ = checkpoint.load_latest(ckpt_dir)  # prev.pt, with a warning, when last.pt is damaged
            self.load_state_dict(state)
            if self.dist.is_main:
                truncate_after(self.run_dir, self.epoch)
            log.info("resuming %s from epoch %d", self.run_dir, self.epoch)
        else:
            self.generator.manual_seed(exp.seed)  # global RNGs were seeded when the experiment was built
        self.dist.broadcast_parameters(exp.network)
        self._start = time.perf_counter()
        metrics_log = self.dist.metric_logger(lambda: MetricLogger(self.run_dir, exp.logger.sinks, self.columns,
                                                                   config=exp.config))
        status, ran = "completed", 0
        self.signals = StopSignals()
        try:
            self.instruments.start(self.epoch)
            if not resume and self.dist.is_main:  # epoch 0: a run killed in its first epoch resumes exactly
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
        finally:
            try:
                self.writer.close()
            finally:
                metrics_log.close()
        summary = self.summary(status)
        if status == "interrupted":
            summary["signal"] = self.signals.name
        if self.dist.is_main:
            (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        self.instruments.finish(status)
        return summary

    def _fit_epoch(self, metrics_log: MetricLogger, ckpt_dir: Path) -> None:
        exp = self.exp
        lr = exp.optimizer.param_groups[0]["lr"] if exp.optimizer else None
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
        log.info("epoch %d: %s", self.epoch, ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                                                       if isinstance(v, float)))
        if self.dist.is_main:
            # the state is taken now; the files are written while the next epoch trains
            self.writer.submit(self._write_checkpoints, ckpt_dir, checkpoint.serialize(self.state_dict()), improved)
        self.checkpointed = self.epoch
        self.instruments.after_epoch(self.epoch, metrics_log)

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
                "run_dir": str(self.run_dir), "world_size": self.dist.ctx.world_size}  # processes (torchrun)
