"""Everything the runner adds to the computation of an epoch, measured A/B (a cross-check of
``scripts/profile_runner.py``, which times the runner's parts from inside).

Builds the experiment, trains it ``--warmup`` epochs through the runner, then alternates, for
``--rounds`` rounds:

- A: ``--epochs`` runner epochs back to back, exactly as ``snnrun`` runs them: training, test
  evaluation, metrics rows, spike metrics, checkpoints (each serialised and written on the
  background thread while the next epoch trains, as in a run: only the last one's falls outside
  the timing);
- B: the same number of epochs of computation alone: the batches are drawn and encoded
  beforehand (untimed), then network forward, decoder, loss, backward and optimizer step for each
  training batch and the forward for each test batch, with the spike metrics' hooks removed.

and prints the medians per epoch and ``1 - B/A``: the share of a runner epoch spent on anything but the
computation (data, encoding, metrics, checkpointing, and the per-batch glue: learner hooks,
autocast and grad contexts, the finite-loss check). Alternating cancels slow machine drift.

``--compare parts``: B is the runner's own epoch (the same loop and glue) without the four parts
the overhead bar names: the batches are drawn and encoded beforehand (untimed) and handed to it,
and the metrics (bookkeeping, SynOps hooks, instruments, metric rows, the log line) and the
checkpoint (finite check, state, serialisation, files) are switched off. ``1 - B/A`` is then those
four parts' share measured from outside, their side-effects on the rest of the epoch included.

Usage: .venv/bin/python scripts/overhead_ab.py [--compare bare|parts] [--warmup 5] [--rounds 7] [--epochs 3]
       [hydra overrides ...]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch


def compose(overrides: list[str]):
    from snnrun.validate import compose as compose_like_snnrun  # the package configs, as the CLI composes them

    return compose_like_snnrun(["trainer.progress=false", "plots=off", *overrides])


def bare_epoch(exp, train_batches, test_batches) -> None:
    """The computation of one epoch on encoded batches, nothing else."""
    from snnrun.learning import local

    net, learner = exp.network, local.gradient_learner(exp.learners, 1, True)
    net.train(True)
    for spikes, y in train_batches:
        net.reset()
        scores = exp.decoder(net(spikes).spikes[net.output], None)
        loss = learner.loss(scores, y)
        exp.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        exp.optimizer.step()
    net.train(False)
    with torch.no_grad():
        for spikes, y in test_batches:
            net.reset()
            exp.decoder(net(spikes).spikes[net.output], None)


@contextlib.contextmanager
def without_parts(runner, metrics_log, epochs):
    """The runner with data, encoding, metrics and checkpointing taken out: each ``_fit_epoch`` in
    the block takes the next of ``epochs``, ``{split: [(x, y, spikes), ...]}`` drawn and encoded
    beforehand."""
    from snnrun import runner as runner_module
    from snnrun.spike_metrics import SynOpsCounter

    exp, metrics = runner.exp, runner.instruments.metrics
    spikes_of = {id(x): spikes for epoch in epochs for split in epoch.values() for x, _, spikes in split}
    queue = iter(epochs)
    current = {}

    def batches(split):
        if split == "train":
            current.update(next(queue))
        return [(x, y) for x, y, _ in current[split]]

    with contextlib.ExitStack() as stack:
        for target, name, value in [
                (runner, "_batches", batches), (exp, "encoder", lambda x: spikes_of[id(x)]),
                (runner, "_record", lambda *a, **k: None), (runner, "_summarise", lambda *a, **k: {}),
                (runner.instruments, "begin", lambda *a, **k: None), (runner.instruments, "after_epoch", lambda *a, **k: None),
                (metrics_log, "log", lambda *a, **k: None), (runner_module.log, "disabled", True),
                (runner_module, "find_nonfinite", lambda *a, **k: None), (runner, "state_dict", lambda: {}),
                (runner_module.checkpoint, "serialize", lambda state: b""), (runner.writer, "submit", lambda *a, **k: None)]:
            stack.enter_context(mock.patch.object(target, name, value))
        if metrics.synops is not None:
            metrics.synops.remove()
        try:
            yield
        finally:
            if metrics.synops is not None:
                metrics.synops = SynOpsCounter(exp.network)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per round and side")
    parser.add_argument("--compare", choices=("bare", "parts"), default="bare",
                        help="B: the bare computation, or the runner without data, encoding, metrics, checkpoint")
    args, overrides = parser.parse_known_args()

    from snnrun.build import build_experiment
    from snnrun.faults import StopSignals
    from snnrun.loggers import MetricLogger
    from snnrun.runner import Runner
    from snnrun.spike_metrics import SynOpsCounter

    cfg = compose([*overrides, f"trainer.epochs={args.warmup + 2 * args.rounds * args.epochs + 10}"])
    exp = build_experiment(cfg)
    if exp.decoder.needs_voltage or any(getattr(lr, "local", False) for lr in exp.learners):
        raise SystemExit("overhead_ab.py: the bare loop covers gradient learners and spike-reading decoders only")
    run_dir = Path(tempfile.mkdtemp(prefix="snnrun_ab_"))
    runner = Runner(exp, run_dir, "")
    runner.signals = StopSignals()
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True)
    metrics_log = MetricLogger(run_dir, exp.logger.sinks, runner.columns, config=exp.config)
    runner._start = time.perf_counter()
    metrics = runner.instruments.metrics
    for _ in range(args.warmup):
        runner._fit_epoch(metrics_log, ckpt_dir)

    def encoded(split: str):
        with torch.no_grad():
            return [(exp.encoder(x.to(exp.device)), y.to(exp.device)) for x, y in runner._batches(split)]

    times: dict[str, list[float]] = {"runner": [], "bare": []}
    for _ in range(args.rounds):
        runner.writer.wait()
        t0 = time.perf_counter()
        for _ in range(args.epochs):
            runner._fit_epoch(metrics_log, ckpt_dir)
        times["runner"].append((time.perf_counter() - t0) / args.epochs)
        if args.compare == "parts":
            with torch.no_grad():
                drawn = [{split: [(x, y, exp.encoder(x)) for x, y in runner._batches(split)] for split in ("train", "test")}
                         for _ in range(args.epochs)]
            runner.writer.wait()  # the last checkpoint is on disk: B runs alone
            with without_parts(runner, metrics_log, drawn):
                t0 = time.perf_counter()
                for _ in drawn:
                    runner._fit_epoch(metrics_log, ckpt_dir)
                times["bare"].append((time.perf_counter() - t0) / args.epochs)
            continue
        epochs = [(encoded("train"), encoded("test")) for _ in range(args.epochs)]
        runner.writer.wait()  # the last checkpoint is on disk: B runs alone
        if metrics.synops is not None:
            metrics.synops.remove()
        t0 = time.perf_counter()
        for train_batches, test_batches in epochs:
            bare_epoch(exp, train_batches, test_batches)
        times["bare"].append((time.perf_counter() - t0) / args.epochs)
        if metrics.synops is not None:
            metrics.synops = SynOpsCounter(exp.network)
    runner.writer.close()
    metrics_log.close()
    a, b = statistics.median(times["runner"]), statistics.median(times["bare"])
    what = ("without data, encoding, metrics and checkpoint", "their share") if args.compare == "parts" else \
        ("bare computation", "runner's share")
    print(f"overhead A/B ({' '.join(overrides) or 'default experiment'}, {torch.get_num_threads()} threads, "
          f"{args.rounds} rounds of {args.epochs} epochs): runner epoch {a * 1e3:.1f} ms, {what[0]} {b * 1e3:.1f} ms, "
          f"{what[1]} {100 * (1 - b / a):.1f} %")


if __name__ == "__main__":
    main()
