"""One pass over a split's batches: encode, simulate, decode, loss, update and tally (the body of an epoch)."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

from .data import TensorBatches
from .decoders.base import Decoder
from .errors import NumericalError
from .faults import Interrupted, find_nonfinite
from .learning import local
from .tally import EpochTally

log = logging.getLogger("snnrun")


class BatchLoop:
    """The batches of an epoch, for :class:`snnrun.runner.Runner` (which owns the state it reads:
    the experiment, the epoch and step counters, the data generator, the instruments, the
    distributed context, the activity check and the stop signals)."""

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
