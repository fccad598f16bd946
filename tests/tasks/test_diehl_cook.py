"""Diehl & Cook: the compiled per-sample kernel reproduces the generic torch simulation; an
interrupted run resumes bit-identical; its metrics reach TensorBoard."""

from __future__ import annotations

import csv

import pytest
import torch
from omegaconf import OmegaConf

from snnrun import checkpoint
from snnrun.build import build_experiment
from snnrun.errors import ConfigError
from snnrun.kernels import step_engine
from snnrun.tasks import get_task
from snnrun.tasks.diehl_cook import DiehlCookNetwork

from conftest import compose_config
from stopping import stop_after_checkpoints, tensorboard_scalars


def small_config(**network):
    cfg = OmegaConf.to_container(compose_config(["experiment=diehl_cook", "network.duration=60",
                                                  "network.populations.exc.shape=6",
                                                  "network.populations.inh.shape=6", "learner.w_norm=3.0"]))
    # val_fraction 0 as in experiment=diehl_cook: every training sample trains and assigns labels
    cfg["data"] = {"name": "synthetic", "features": 16, "classes": 3, "train_size": 8, "test_size": 4, "batch_size": 1,
                   "val_fraction": 0.0}
    cfg.pop("hydra", None)
    cfg["device"] = "cpu"
    return cfg


def spike_trains(n, steps=60, inputs=16, rate=0.15, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(steps, inputs, generator=g) < rate for _ in range(n)]


def _pair(cfg, one_spike=None):
    """The torch reference and the compiled engine on the same freshly built network."""
    if not step_engine.available():  # strict mode (conftest): a failed build with a compiler present raises
        pytest.skip("no C++ compiler here: only the torch reference path runs")
    return [DiehlCookNetwork(build_experiment(cfg), backend, one_spike) for backend in ("torch", "cpp")]


@pytest.mark.parametrize("one_spike", [False, True])
@pytest.mark.parametrize("variant", ["shipped", "all_to_all_multiplicative"])
def test_engine_matches_generic_simulation(one_spike, variant):
    cfg = small_config()
    if variant != "shipped":  # a rule the former hand-written D&C loop did not run
        cfg["learner"].update(mode="all_to_all", weight_dependence="multiplicative")
    ref, fast = _pair(cfg, one_spike)
    assert (ref.backend, fast.backend) == ("torch", "cpp")
    weight = {m: m.net.projections["inp_exc"].stages[-1].weight for m in (ref, fast)}
    theta = {m: m.net.populations[m.exc].neuron.theta for m in (ref, fast)}
    for model in (ref, fast):  # a declared param of the exc neuron, the module's step left as its class defines it
        neuron = model.net.populations[model.exc].neuron
        assert neuron.params.one_spike is one_spike and "step" not in vars(neuron)
    torch.testing.assert_close(weight[ref].detach(), weight[fast].detach(), rtol=0, atol=0)
    initial = weight[ref].detach().clone()
    total = 0
    for i, spikes in enumerate(spike_trains(10)):
        learn = i < 7
        a, b = ref.sample(spikes, learn), fast.sample(spikes, learn)
        assert torch.equal(a, b), f"sample {i}: spike counts differ: {a.tolist()} vs {b.tolist()}"
        total += int(a.sum())
        if one_spike:
            assert int(a.sum()) <= 60
    fast.sync()
    assert total > 10  # the network was active, so weights and thresholds moved
    torch.testing.assert_close(weight[ref].detach(), weight[fast].detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(theta[ref], theta[fast], rtol=0, atol=1e-12)
    assert float(theta[ref].sum()) > 0
    assert not torch.equal(weight[ref].detach(), initial)


def test_cpp_backend_names_what_the_engine_does_not_run():
    cfg = small_config()
    cfg["learner"]["boundary"] = "soft"
    with pytest.raises(ConfigError, match=r"^learner: learner 'stdp': boundary: soft"):
        DiehlCookNetwork(build_experiment(cfg), "cpp")


def test_escape_noise_takes_the_torch_backend(caplog):
    """The engine's thresholds are deterministic: escape noise is refused by the cpp backend and
    ``auto`` runs the generic simulation, saying why once."""
    cfg = small_config()
    cfg["network"]["populations"]["exc"]["neuron"]["escape_noise"] = True
    with pytest.raises(ConfigError, match=r"^network.populations.exc: neuron model 'diehlandcook': escape_noise"):
        DiehlCookNetwork(build_experiment(cfg), "cpp")
    with caplog.at_level("WARNING", logger="snnrun"):
        assert DiehlCookNetwork(build_experiment(cfg), "auto").backend == "torch"
    assert [r.getMessage() for r in caplog.records if "step engine" in r.getMessage()][0].startswith(
        "diehl_cook: the compiled step engine does not run this network (network.populations.exc")


def test_the_protocol_needs_local_learners():
    cfg = small_config()
    cfg["learner"] = {"name": "bptt"}
    with pytest.raises(ConfigError, match=r"^learner.name: bptt trains through gradients"):  # the build says it
        build_experiment(cfg)
    cfg["learner"] = {"name": "noop"}  # a local learner that learns nothing runs; no learner at all does not
    assert DiehlCookNetwork(build_experiment(cfg), "torch").backend == "torch"


def test_protocol_runs_and_writes_run_dir(tmp_path):
    from snnrun.tasks.diehl_cook import DiehlCookParams, run_diehl_cook

    cfg = small_config()
    cfg["encoder"]["max_rate"] = 500.0
    summary = run_diehl_cook(build_experiment(cfg), DiehlCookParams(backend="torch", log_every=4), tmp_path)
    assert summary["train_samples"] == 8 and summary["test_samples"] == 4 and summary["backend"] == "torch"
    assert 0.0 <= summary["test/accuracy_all"] <= 1.0 and summary["train_samples_per_s"] > 0
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("samples,train_samples_per_s") and len(rows) == 3
    assert (tmp_path / "checkpoints" / "last.pt").is_file()


def test_experiment_trains_on_every_training_sample_without_a_monitor():
    """diehl_cook selects no model: its experiment holds out no validation split, and the
    trainer.monitor rules (auto needs a validation split) do not apply to it."""
    cfg = compose_config(["experiment=diehl_cook"])
    assert cfg.data.val_fraction == 0.0 and cfg.trainer.monitor == "auto"
    exp = build_experiment(small_config())  # val_fraction 0, monitor auto: accepted for this task
    assert exp.data.x_val is None and len(exp.data.x_train) == 8


def task_config(backend, assign, **extra):
    """small_config as a diehl_cook run: 8 training samples (a checkpoint every 3), 4 test samples,
    30 steps each."""
    cfg = small_config()
    cfg["network"]["duration"] = 30.0
    cfg["encoder"]["max_rate"] = 400.0  # some samples fall silent and are presented again, boosted
    cfg["plots"] = {"enabled": False}
    cfg["diehl_cook"] = {"backend": backend, "assign": assign, "log_every": 3, "max_boosts": 2, **extra}
    return cfg


def rows(run_dir):
    """metrics.csv without its timing columns."""
    return [{k: v for k, v in r.items() if k not in ("train_samples_per_s", "wall_time")}
            for r in csv.DictReader(open(run_dir / "metrics.csv"))]


@pytest.mark.parametrize("backend,assign,k", [("torch", "online", 3), ("torch", "frozen", 4), ("cpp", "frozen", 2),
                                              ("cpp", "online", 4)])
def test_interrupted_run_resumes_bit_identical(tmp_path, monkeypatch, backend, assign, k):
    """SIGTERM after the k-th checkpoint (0, 3, 6, 8 samples: k = 4 stops in the label assignment or
    test pass), then resume: weights, θ, label assignments, accuracies and metric rows equal the
    uninterrupted run's."""
    if backend == "cpp" and not step_engine.available():
        pytest.skip("no C++ compiler here: only the torch reference path runs")
    cfg = task_config(backend, assign)
    task = get_task("diehl_cook")
    reference = task.run(cfg, tmp_path / "reference", False)
    assert reference["boosts"] > 0 and reference["backend"] == backend
    saved = stop_after_checkpoints(monkeypatch, k)
    stopped = task.run(cfg, tmp_path / "run", False)
    position = [0, 3, 6, 8][k - 1]
    assert stopped["status"] == "interrupted" and stopped["checkpoint"] == {"samples": position}
    assert saved == [0, 3, 6, 8][:k]
    resumed = task.run(cfg, tmp_path / "run", True)
    assert saved[k:] == [3, 6, 8, 8][k - 1:]  # from the checkpoint on; the last one holds the final state
    assert resumed["status"] == "completed" and resumed["resumes"][0]["samples"] == position
    for key in ("test/accuracy_all", "test/accuracy_proportion", "boosts", "train_samples", "test_samples"):
        assert resumed[key] == reference[key], key
    assert rows(tmp_path / "run") == rows(tmp_path / "reference")
    final, expected = (checkpoint.load(tmp_path / d / "checkpoints" / "last.pt") for d in ("run", "reference"))
    for part in ("model", "decoder"):
        assert final[part].keys() == expected[part].keys()
        for name, value in expected[part].items():
            if isinstance(value, dict):  # the decoder's extra state: responses since the last assignment
                assert value.keys() == final[part][name].keys(), name
                assert all((v is None and final[part][name][k] is None) or torch.equal(final[part][name][k], v)
                           for k, v in value.items()), name
            else:
                assert torch.equal(final[part][name], value), f"{part} {name}"
    assert float(final["model"]["populations.exc.neuron.theta"].sum()) > 0  # θ learned
    again = task.run(cfg, tmp_path / "run", True)  # a finished run: nothing left to run
    assert again["test/accuracy_all"] == reference["test/accuracy_all"] and len(again["resumes"]) == 2
    assert rows(tmp_path / "run") == rows(tmp_path / "reference")


def test_metrics_reach_tensorboard(tmp_path):
    pytest.importorskip("tensorboard", reason="the TensorBoard sink needs: the `tensorboard` extra")
    cfg = task_config("torch", "online")
    cfg["logger"] = {"sinks": ["csv", "tensorboard"]}
    get_task("diehl_cook").run(cfg, tmp_path, False)
    scalars = tensorboard_scalars(tmp_path)
    expected = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [step for step, _ in scalars["exc_spikes_per_sample"]] == [3, 6, 8]
    assert [value for _, value in scalars["boosts"]] == [float(r["boosts"]) for r in expected]
    assert "samples" not in scalars
