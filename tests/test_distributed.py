"""Data-parallel training (snnrun/distributed.py): sharding, refusals, and a real 2-process gloo run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from snnrun import distributed
from snnrun.errors import ConfigError
from tests.conftest import TINY, compose_config


def test_the_ranks_of_one_step_cover_the_single_process_batch():
    """Per-rank batch b on N ranks == batch N*b in one process: same samples at every step."""
    n, world, per_rank = 40, 2, 8
    single = torch.randperm(n, generator=torch.Generator().manual_seed(3))
    shards = [distributed.shard_indices(n, world, r, True, torch.Generator().manual_seed(3), pad=True)
              for r in range(world)]
    for step in range(n // (world * per_rank)):
        together = torch.cat([s[step * per_rank:(step + 1) * per_rank] for s in shards])
        expected = single[step * world * per_rank:(step + 1) * world * per_rank]
        assert sorted(together.tolist()) == sorted(expected.tolist())


def test_training_shards_are_padded_and_evaluation_shards_partition_the_split():
    train = [distributed.shard_indices(7, 3, r, True, torch.Generator().manual_seed(0), pad=True) for r in range(3)]
    assert [len(s) for s in train] == [3, 3, 3]  # equal step counts on every rank
    assert set(torch.cat(train).tolist()) == set(range(7))  # 2 samples repeated by wrap-around
    test = [distributed.shard_indices(7, 3, r, False, None, pad=False) for r in range(3)]
    assert [s.tolist() for s in test] == [[0, 3, 6], [1, 4], [2, 5]]  # every sample exactly once
    from snnrun.data import TensorBatches

    x, y = torch.arange(7.0)[:, None], torch.arange(7)
    batches = distributed.ShardedBatches(TensorBatches(x, y, 2), 3, 1, pad=False)
    assert len(batches) == 1 and [b[1].tolist() for b in batches] == [[1, 4]]
    sampler = distributed.ShardSampler(7, 3, 2, False, None, pad=True)  # DataLoader datasets: the same shards
    assert len(sampler) == 3 and list(sampler) == [2, 5, 1]


def test_local_learners_and_learning_decoders_are_refused_under_torchrun():
    from snnrun.build import build_experiment

    exp = build_experiment(compose_config(TINY + ["learner=stdp", "data.subset=8"]))
    with pytest.raises(ConfigError, match=r"^learner: local learner 'stdp' cannot train data-parallel "
                                          r"\(WORLD_SIZE=2\).*not averaged across ranks"):
        distributed.DataParallel(exp, distributed.Context(rank=0, world_size=2))
    exp = build_experiment(compose_config(TINY + ["data.subset=8"]))
    from snnrun.decoders import DECODERS
    exp.decoder = DECODERS.build({"name": "label_assignment"}, "decoder", num_classes=4)  # (the build refuses it
    # with a gradient learner, and refuses every local learner under torchrun first)
    with pytest.raises(ConfigError, match=r"^decoder: 'label_assignment' learns from the training samples"):
        distributed.check_supported(exp, 2)
    exp = build_experiment(compose_config(TINY + ["neuron=diehlandcook", "data.subset=8"]))
    with pytest.raises(ConfigError, match=r"^network.populations.hidden.neuron: 'diehlandcook' keeps state across "
                                          r"samples \(theta\)"):
        distributed.check_supported(exp, 2)
    distributed.check_supported(build_experiment(compose_config(TINY + ["data.subset=8"])), 2)  # bptt + lif: fine


def test_ranks_above_0_run_hydra_quietly_and_a_sweep_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(ConfigError, match=r"^-m: sweeps cannot run under torchrun"):
        distributed.hydra_argv(["-m", "seed=0,1"])
    argv = ["seed=0", "hydra.run.dir=/x", "hydra/job_logging=stdout", "--cfg", "job"]
    assert distributed.hydra_argv(argv) == distributed.QUIET_HYDRA + ["seed=0", "--cfg", "job"]
    monkeypatch.setenv("RANK", "0")
    assert distributed.hydra_argv(argv) == argv


#: deterministic input (encoder=direct), so one process and two see exactly the same global batches
DDP = [o for o in TINY if not o.startswith("trainer.epochs")] + ["encoder=direct", "trainer.epochs=2", "monitors=off"]


def _torchrun(args, cwd: Path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "HYDRA_FULL_ERROR"):
        env.pop(key, None)
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "snnrun", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="this torch build has no torch.distributed gloo backend")
def test_two_processes_match_one_process_with_the_same_global_batch_and_resume(tmp_path):
    """2 ranks x batch 16 (gradients averaged) vs 1 process x batch 32: the same global batches and
    a mean loss, so the runs agree up to float summation order: final accuracy exactly, losses to
    1e-4, weights to 1e-4. The 2-process run stops after epoch 1 and is resumed under torchrun."""
    from snnrun.build import build_experiment
    from snnrun.runner import Runner

    single_dir = tmp_path / "single"
    exp = build_experiment(compose_config(DDP + ["data.batch_size=32"]))
    single = Runner(exp, single_dir, "").fit()

    work = tmp_path / "work"
    work.mkdir()
    first = _torchrun([*DDP, "data.batch_size=16", "trainer.stop_after=1"], work)
    assert first.returncode == 0, first.stderr[-3000:]
    runs = list((work / "outputs").glob("*/*"))
    assert len(runs) == 1, runs  # both ranks used rank 0's run directory; rank 1 made none of its own
    run = runs[0]
    assert json.loads((run / "summary.json").read_text())["status"] == "stopped"
    second = _torchrun(["resume", str(run)], work)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("snnrun: completed 2/2 epochs") == 1  # only rank 0 prints

    assert sorted(p.name for p in work.iterdir()) == ["outputs"]  # nothing else written in the cwd
    assert sorted(p.name for p in run.iterdir()) == [".hydra", ".lock", "checkpoints", "confusion_matrix.csv",
                                                   "metrics.csv", "metrics.jsonl", "snnrun.log", "summary.json"]
    assert "last.pt" in {p.name for p in (run / "checkpoints").iterdir()}
    lines = (run / "metrics.csv").read_text().splitlines()
    assert len(lines) == 1 + 6  # header + (train, val, test) x 2 epochs, written once (rank 0)

    ddp = json.loads((run / "summary.json").read_text())
    assert ddp["status"] == "completed" and ddp["world_size"] == 2 and single["world_size"] == 1
    assert ddp["final"]["test/accuracy"] == single["final"]["test/accuracy"]
    assert ddp["final"]["train/accuracy"] == single["final"]["train/accuracy"]
    for key in ("train/loss", "test/loss"):
        assert abs(ddp["final"][key] - single["final"][key]) < 1e-4, key
    a = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(single_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    for name, value in b.items():
        if value.is_floating_point():
            assert torch.allclose(a[name], value, atol=1e-4, rtol=0), name
