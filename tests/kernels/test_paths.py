"""Same config and seed, same results whether the compiled kernels run or their torch references."""

import json

import torch
from omegaconf import OmegaConf

from tests.conftest import compiled
from snnrun import kernels
from snnrun.build import build_experiment
from snnrun.runner import Runner

TIMINGS = ("wall_time", "samples_per_s")


def _run(cfg, run_dir):
    exp = build_experiment(cfg)
    Runner(exp, run_dir, OmegaConf.to_yaml(cfg)).fit()
    return json.loads((run_dir / "summary.json").read_text()), exp.network.state_dict()


def test_compiled_and_reference_paths_give_identical_runs(tiny_cfg, tmp_path, monkeypatch):
    """Poisson input (Bernoulli kernel), binary hidden spikes (gather projection), LIF layers
    (scan), trained two epochs: the same metrics and weights, bit for bit."""
    for name in ("bernoulli", "lif_scan", "spike_linear"):
        compiled(kernels.all_kernels()[name])
    cfg = tiny_cfg("encoder=poisson", "monitors=off")
    fast, fast_weights = _run(cfg, tmp_path / "compiled")
    ran = fast["kernels"]["kernels"]
    assert {ran[k]["ran"] for k in ("bernoulli", "lif_scan", "spike_linear")} == {"compiled"}

    monkeypatch.setattr(kernels.Extension, "load", lambda self: None)  # as on a machine without a compiler
    ref, ref_weights = _run(cfg, tmp_path / "reference")
    ran = ref["kernels"]["kernels"]
    assert {ran[k]["ran"] for k in ("bernoulli", "lif_scan", "spike_linear")} == {"reference"}

    strip = lambda d: {k: v for k, v in d.items() if not any(t in k for t in TIMINGS)}  # noqa: E731
    assert strip(fast["final"]) == strip(ref["final"]) and fast["final"]["train/loss"] > 0
    assert fast_weights.keys() == ref_weights.keys()
    for key in fast_weights:
        assert torch.equal(fast_weights[key], ref_weights[key]), key
