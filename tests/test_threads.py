"""trainer.threads: how many intra-op threads a run takes (snnrun/threads.py)."""

from __future__ import annotations

import json

import pytest
import torch

from snnrun import threads


@pytest.fixture
def two_idle_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "busy_cores", lambda: 0.0)
    monkeypatch.setattr(threads, "parallel_jobs", lambda: 1)


def test_a_number_is_taken_as_given(two_idle_cores):
    assert threads.choose(3, work=1.0) == (3, "trainer.threads")


def test_auto_follows_the_work_size(two_idle_cores):
    assert threads.choose("auto", work=threads.WORK_PER_THREAD / 2) == \
        (1, "auto: min(cores 2, idle cores 2, work size 1)")
    assert threads.choose("auto", work=threads.WORK_PER_THREAD * 10)[0] == 2
    assert threads.choose("auto") == (2, "auto: min(cores 2, idle cores 2)")  # unknown work is no limit


def test_auto_leaves_busy_cores_alone(two_idle_cores, monkeypatch):
    monkeypatch.setattr(threads, "busy_cores", lambda: 1.2)
    assert threads.choose("auto", work=1e12) == (1, "auto: min(cores 2, idle cores 1, work size 250000)")
    monkeypatch.setattr(threads, "busy_cores", lambda: 5.0)
    assert threads.idle_cores(2) == 1  # never fewer than one


def test_busy_cores_are_measured_now_not_averaged(monkeypatch):
    """The CPU share busy over a short sample of /proc/stat, not the load average of the last minute."""
    samples = iter([(1000, 2000), (1030, 2120)])  # (idle, total) jiffies: 30 of 120 idle -> 75 % busy
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(samples))
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (9.0, 9.0, 9.0))  # stale: not used
    assert threads.busy_cores(0.0) == pytest.approx(3.0)
    monkeypatch.setattr(threads, "_cpu_times", lambda: None)  # no /proc/stat: the load average
    assert threads.busy_cores(0.0) == 9.0


def test_parallel_jobs_share_the_cores(two_idle_cores, monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    monkeypatch.setattr(threads, "parallel_jobs", lambda: 4)
    assert threads.choose("auto", work=1e12) == (2, "auto: min(cores / 4 parallel jobs 2, idle cores 2, "
                                                    "work size 250000)")


def test_omp_num_threads_is_honoured(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.choose("auto", work=1e12) == (torch.get_num_threads(), "OMP_NUM_THREADS")


def test_the_policy_restores_the_thread_count(two_idle_cores):
    before = torch.get_num_threads()
    with threads.policy(1) as (count, why):
        assert torch.get_num_threads() == 1 and (count, why) == (1, "trainer.threads")
    assert torch.get_num_threads() == before


def test_synaptic_work_counts_weights_times_batch():
    from snnrun.network import build_network

    net = build_network({"populations": {"a": {"shape": 5}, "b": {"shape": 3}},
                         "projections": {"ab": {"from": "a", "to": "b"}}}, {"name": "lif"}, (5,))
    assert threads.synaptic_work(net, 7) == 5 * 3 * 7


def test_a_run_records_its_threads(tmp_path, tiny_cfg):
    from snnrun.api import run

    result = run(tiny_cfg("trainer.threads=1"), run_dir=tmp_path / "run", verbose=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["threads"] == {"count": 1, "chosen_by": "trainer.threads"}
    assert result.summary["status"] == "completed"
