"""Data-parallel training across processes with ``torch.distributed`` (``torchrun``).

``torchrun --nproc_per_node=N -m snnrun [overrides]`` starts N copies of ``snnrun``; each reads
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` from the environment (torchrun's rendezvous sets
``MASTER_ADDR``/``MASTER_PORT``) and joins one process group: gloo on CPU, nccl on CUDA (rank r
then uses ``cuda:LOCAL_RANK``). Without ``WORLD_SIZE > 1`` nothing here does anything.

What each rank does, and what is shared:

* **Data**: every rank draws the same shuffle permutation (same seed, same data generator) and
  takes every N-th index of it starting at its rank, as ``DistributedSampler`` does; the training
  permutation is padded by wrapping around to a multiple of N so every rank runs the same number
  of steps. ``data.batch_size`` is per rank: the global batch is ``batch_size × N``, and step k of
  the N ranks together covers exactly the samples of step k of one process with that global batch.
  Evaluation splits are sharded without padding, so every sample is counted once.
  ``trainer.limit_train_batches``/``limit_test_batches`` count each rank's batches.
* **Gradients**: after ``backward`` the gradients of the gradient learner's parameters are summed
  over the ranks with one ``all_reduce`` per dtype and divided by N (DDP's averaging). With a loss
  that is a mean over the batch (every snnrun loss) and equal per-rank batches, this is the
  gradient of the mean over the global batch. Parameters start equal (same seed, and rank 0's
  values are broadcast at the start of ``fit``).
* **Metrics**: loss sums, correct counts, sample counts and spike totals are all-reduced, so the
  logged loss, accuracy and rates are those of the whole split. The remaining columns (spike
  metrics of ``monitors.metrics``: silent/saturated fractions, synops, weight norms) are rank 0's
  and are broadcast so that every rank sees the same metrics (schedulers, ``best``).
* **Files**: only rank 0 creates the run directory and writes ``.hydra/``, the log, metrics,
  checkpoints, monitors, plots and ``summary.json``. The other ranks run Hydra with
  ``hydra.run.dir=.``, no output subdir and no job logging (so they write nothing), and receive
  rank 0's run directory by broadcast. ``snnrun resume RUN`` works the same under torchrun.
* **Randomness**: rank 0 keeps the run's RNG stream (saved in checkpoints); rank r > 0 reseeds
  its global RNGs at each training epoch from (seed, epoch, rank), so stochastic encoders draw
  different noise on each rank and a resumed run repeats exactly.

Not supported (a ``ConfigError`` says so): local learners (STDP and other rules that update
weights themselves: their updates would differ per rank and are not averaged), neuron models that
keep state across samples in buffers (``diehlandcook``'s θ), decoders that learn from training data
(``label_assignment``), tasks other than ``train``, and sweeps (``-m``).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import ConfigError, SnnrunError

log = logging.getLogger("snnrun")

#: Hydra overrides for ranks > 0: no output directory of their own, no .hydra/, no log file.
QUIET_HYDRA = ["hydra.run.dir=.", "hydra.output_subdir=null", "hydra/job_logging=none", "hydra/hydra_logging=none"]


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise SnnrunError(f"environment variable {name}={value!r} is not an integer (set by torchrun)") from None


@dataclass(frozen=True)
class Context:
    """This process's place in the job: ``rank`` of ``world_size``, GPU ``local_rank``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def context() -> Context:
    """Read ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (torchrun's variables; absent = one process)."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    if world < 1 or not 0 <= rank < world:
        raise SnnrunError(f"environment: RANK={rank} WORLD_SIZE={world} is not a valid torchrun rank")
    return Context(rank, world, _env_int("LOCAL_RANK", rank))


def is_main() -> bool:
    return context().is_main


def hydra_argv(argv: list[str]) -> list[str]:
    """This process's Hydra arguments: ``argv`` for rank 0; for the other ranks ``argv`` without any
    of the :data:`QUIET_HYDRA` keys, preceded by :data:`QUIET_HYDRA` (before the options, as
    ``--cfg job`` must stay last)."""
    ctx = context()
    if not ctx.enabled:
        return list(argv)
    if any(a in ("-m", "--multirun") for a in argv):
        raise ConfigError(f"-m: sweeps cannot run under torchrun (WORLD_SIZE={ctx.world_size}); run the sweep "
                          f"without torchrun, or one torchrun per configuration")
    if ctx.is_main:
        return list(argv)
    keys = tuple(q.split("=")[0] + "=" for q in QUIET_HYDRA)
    return list(QUIET_HYDRA) + [a for a in argv if not a.lstrip("+~").startswith(keys)]


def _device_name(cfg) -> str:
    try:
        return str(cfg.get("device", "auto"))
    except Exception:  # noqa: BLE001 - an unresolvable device is reported by build_experiment
        return "auto"


def local_device(cfg) -> str | None:
    """The device this rank builds on: ``cuda:LOCAL_RANK`` for CUDA runs under torchrun, else None
    (the config's ``device``)."""
    ctx = context()
    if not ctx.enabled:
        return None
    from .device import resolve_device

    return f"cuda:{ctx.local_rank}" if resolve_device(_device_name(cfg)).type == "cuda" else None


def setup(cfg, run_dir: Path) -> Path:
    """Join the process group (once) and return rank 0's run directory. A no-op for one process."""
    ctx = context()
    if not ctx.enabled:
        return Path(run_dir)
    import torch.distributed as dist

    task = cfg.get("task", "train")
    if task != "train":
        raise ConfigError(f"task: only task=train runs data-parallel under torchrun (WORLD_SIZE={ctx.world_size}); "
                          f"run task={task} in one process")
    if not dist.is_available():
        raise SnnrunError("torch.distributed is not available in this torch build; run without torchrun")
    if not dist.is_initialized():
        from .device import resolve_device

        cuda = resolve_device(_device_name(cfg)).type == "cuda"
        if cuda:
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group("nccl" if cuda else "gloo", rank=ctx.rank, world_size=ctx.world_size)
        if ctx.is_main:
            log.info("data-parallel: %d processes (%s); data.batch_size is per process", ctx.world_size,
                     dist.get_backend())
    shared = [str(run_dir)]
    dist.broadcast_object_list(shared, src=0)
    return Path(shared[0])


def teardown() -> None:
    if context().enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def check_supported(exp, world_size: int) -> None:
    """Refuse what cannot run data-parallel, with the config key that selects it."""
    from .decoders.base import Decoder

    for learner in exp.learners:
        if getattr(learner, "local", False):
            name = getattr(learner, "registry_name", type(learner).__name__)
            raise ConfigError(f"{learner.key}: local learner '{name}' cannot train data-parallel (WORLD_SIZE="
                              f"{world_size}): its weight updates are made on each rank's own samples and are not "
                              f"averaged across ranks; run it in one process (without torchrun)")
    for name, population in exp.network.populations.items():
        neuron = getattr(population, "neuron", None)
        kept = [k for k, v in neuron.named_buffers() if v.is_floating_point()] if neuron is not None else []
        if kept:
            raise ConfigError(f"network.populations.{name}.neuron: '{getattr(neuron, 'registry_name', '?')}' keeps "
                              f"state across samples ({', '.join(kept)}) that each rank would adapt on its own "
                              f"samples under torchrun (WORLD_SIZE={world_size}); run it in one process")
    if type(exp.decoder).observe is not Decoder.observe:
        name = getattr(exp.decoder, "registry_name", type(exp.decoder).__name__)
        raise ConfigError(f"decoder: '{name}' learns from the training samples it observes, which differ per rank "
                          f"under torchrun (WORLD_SIZE={world_size}); run it in one process (without torchrun)")


def shard_indices(n: int, world_size: int, rank: int, shuffle: bool, generator: torch.Generator | None,
                  pad: bool) -> torch.Tensor:
    """This rank's sample indices: ``order[rank::world_size]`` of one permutation shared by all ranks
    (drawn from ``generator``), padded by wrap-around to a multiple of ``world_size`` when ``pad``."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    if pad and n % world_size:
        total = math.ceil(n / world_size) * world_size
        order = torch.cat([order, order.repeat(math.ceil(total / n))[: total - n]])
    return order[rank::world_size]


class ShardedBatches:
    """:class:`snnrun.data.TensorBatches` restricted to this rank's shard (a new shard each epoch)."""

    def __init__(self, batches, world_size: int, rank: int, pad: bool):
        self.batches, self.world_size, self.rank, self.pad = batches, world_size, rank, pad

    def _size(self) -> int:
        n, w = len(self.batches.x), self.world_size
        return math.ceil(n / w) if self.pad else len(range(self.rank, n, w))

    def __len__(self) -> int:
        return math.ceil(self._size() / self.batches.batch_size)

    def __iter__(self):
        b = self.batches
        index = shard_indices(len(b.x), self.world_size, self.rank, b.shuffle, b.generator, self.pad)
        shift = getattr(b, "shift", 0)  # training augmentation (data.random_shift), offsets from the shared generator
        for start in range(0, len(index), b.batch_size):
            idx = index[start:start + b.batch_size]
            if shift:
                from .data import random_shift
                yield random_shift(b.x[idx], shift, b.generator), b.y[idx]
            else:
                yield b.x[idx], b.y[idx]


class ShardSampler(torch.utils.data.Sampler):
    """The same sharding for a torch ``DataLoader`` over a file-backed dataset."""

    def __init__(self, n: int, world_size: int, rank: int, shuffle: bool, generator, pad: bool):
        self.n, self.world_size, self.rank, self.shuffle, self.generator, self.pad = n, world_size, rank, shuffle, generator, pad

    def __len__(self) -> int:
        return math.ceil(self.n / self.world_size) if self.pad else len(range(self.rank, self.n, self.world_size))

    def __iter__(self):
        return iter(shard_indices(self.n, self.world_size, self.rank, self.shuffle, self.generator, self.pad).tolist())


class _Quiet:
    """Stands in for the metric logger and the instruments on ranks > 0: every call does nothing."""

    def columns(self, splits) -> list:
        return []

    def end(self, split, train, *args) -> dict:
        return {}

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


class DataParallel:
    """What :class:`snnrun.runner.Runner` calls; every method is a pass-through for one process."""

    def __init__(self, exp, ctx: Context | None = None):
        self.exp = exp
        self.ctx = ctx or context()
        if self.ctx.enabled:
            import torch.distributed as dist

            check_supported(exp, self.ctx.world_size)
            if not dist.is_initialized():
                raise SnnrunError(f"WORLD_SIZE={self.ctx.world_size} but no process group: start data-parallel runs "
                                  f"with torchrun ... -m snnrun")

    @property
    def enabled(self) -> bool:
        return self.ctx.enabled

    @property
    def is_main(self) -> bool:
        return self.ctx.is_main

    # --- files --------------------------------------------------------------------------
    def metric_logger(self, make):
        return make() if self.is_main else _Quiet()

    def instruments(self, make):
        return make() if self.is_main else _Quiet()

    # --- data ---------------------------------------------------------------------------
    def tensor_batches(self, batches, train: bool):
        return ShardedBatches(batches, self.ctx.world_size, self.ctx.rank, pad=train) if self.enabled else batches

    def sampler(self, n: int, train: bool, generator):
        if not self.enabled:
            return None
        return ShardSampler(n, self.ctx.world_size, self.ctx.rank, train, generator, pad=train)

    # --- training -----------------------------------------------------------------------
    def seed_epoch(self, seed: int, epoch: int) -> None:
        """Ranks > 0: fresh global RNG streams per (seed, epoch, rank); rank 0 keeps the saved one."""
        if self.enabled and not self.is_main:
            from .reproducibility import seed_everything

            seed_everything(((seed * 1_000_003 + epoch) * 4099 + self.ctx.rank) % 2 ** 63)  # a 64-bit seed

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        if not self.enabled:
            return
        import torch.distributed as dist

        with torch.no_grad():
            for p in module.parameters():
                dist.broadcast(p.data, src=0)

    def average_gradients(self, params) -> None:
        """Replace each gradient by its mean over the ranks (one all-reduce per dtype and device)."""
        if not self.enabled:
            return
        import torch.distributed as dist

        groups: dict[tuple, list[torch.Tensor]] = {}
        for p in params:
            if p.grad is not None:
                groups.setdefault((p.grad.dtype, p.grad.device), []).append(p.grad)
        for grads in groups.values():
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            flat /= self.ctx.world_size
            offset = 0
            for g in grads:
                g.copy_(flat[offset:offset + g.numel()].view_as(g))
                offset += g.numel()

    def sum_totals(self, loss_sum: float, correct: int, count: int, rates: dict[str, float]):
        """Sum the epoch's running totals over the ranks."""
        if not self.enabled:
            return loss_sum, correct, count, rates
        import torch.distributed as dist

        # every rank lists the same populations, even one whose shard of a small split is empty
        names = sorted(n for n, p in self.exp.network.populations.items() if not p.is_input and p.neuron.spiking)
        t = torch.tensor([loss_sum, correct, count] + [rates.get(n, 0.0) for n in names], dtype=torch.float64,
                         device=self.exp.device)
        dist.all_reduce(t)
        values = t.tolist()
        count = int(round(values[2]))
        return values[0], int(round(values[1])), count, dict(zip(names, values[3:])) if count else {}

    def agree(self, metrics: dict) -> dict:
        """Rank 0's metrics on every rank (so schedulers and ``best`` decide alike)."""
        if not self.enabled:
            return metrics
        import torch.distributed as dist

        shared = [metrics]
        dist.broadcast_object_list(shared, src=0)
        return shared[0]
