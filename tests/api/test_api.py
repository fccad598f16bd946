"""The Python API (snnrun.api): compose, run, load_run, build_model/build_network, and the
worked example of docs/python-api.md."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

import snnrun
from conftest import ROOT, run_cli
from snnrun import targets
from snnrun.checkpoint import UnverifiedCheckpoint
from snnrun.errors import ConfigError, SnnrunError

#: a run of about a second: digits, 1 epoch of 3 batches; voltage_sum scores are real numbers even
#: before the output population spikes, so predictions can be compared meaningfully
SMALL = ["data=digits", "trainer.epochs=1", "trainer.limit_train_batches=3", "trainer.limit_test_batches=2",
         "network.duration=8", "network.populations.hidden.shape=16", "decoder=voltage_sum",
         "trainer.progress=false", "device=cpu", "plots=off"]


def hydra_initialised() -> bool:
    return GlobalHydra.instance().is_initialized()


@pytest.fixture(scope="module")
def api_run(tmp_path_factory):
    """One small run through the API (from a list of overrides), shared by the tests below."""
    run_dir = tmp_path_factory.mktemp("api") / "run"
    return snnrun.run(SMALL, run_dir=run_dir)


def test_import_snnrun_stays_light():
    code = ("import sys, snnrun; assert 'torch' not in sys.modules and 'hydra' not in sys.modules; "
            "assert callable(snnrun.compose) and 'torch' not in sys.modules; print(snnrun.load_run.__module__)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "snnrun.api", proc.stderr


def test_compose_equals_the_cli_config_and_a_cli_run_loads(tmp_path):
    overrides = SMALL + ["neuron=alif", "optimizer=sgd", "data.batch_size=16", "data.subset=300", "++seed=3"]
    proc = run_cli(*overrides, f"hydra.run.dir={tmp_path / 'cli'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cfg = snnrun.compose(overrides)
    assert OmegaConf.to_container(cfg, resolve=False) == yaml.safe_load((tmp_path / "cli" / ".hydra" / "config.yaml")
                                                                        .read_text())
    assert cfg.neuron.name == "alif" and cfg.seed == 3 and "hydra" not in cfg
    assert not hydra_initialised()
    loaded = snnrun.load_run(tmp_path / "cli")  # a run of the snnrun command loads the same way
    assert type(loaded.network.populations["hidden"].neuron).__name__ == "ALIF"
    assert loaded.summary["status"] == "completed" and len(loaded.metrics) == 3
    assert loaded.model.predict(loaded.data().x_test[:4]).shape == (4,)
    (tmp_path / "mine" / "experiment").mkdir(parents=True)  # config_dir: as `snnrun --config-dir`
    (tmp_path / "mine" / "experiment" / "small.yaml").write_text(
        "# @package _global_\ntrainer:\n  epochs: 1\nneuron:\n  tau_m: 7.0\n")
    mine = snnrun.compose(["experiment=small"], config_dir=tmp_path / "mine")
    assert mine.trainer.epochs == 1 and mine.neuron.tau_m == 7.0
    assert not hydra_initialised()


def test_compose_mistakes_are_one_line():
    cases = {("neuron=nope",): r"^neuron: no option 'nope'; choices: adex, alif, .*\blif\b",
             ("neuron=lfi",): r"^neuron: no option 'lfi' \(did you mean `lif`\?\)",
             ("trainer.epoch=3",): r"^trainer.epoch: unknown key \(did you mean `epochs`\?\)",
             ("trainer=[1,2]",): r"^trainer: a config group is chosen by name, got \[1, 2\]; choices: default",
             ("neuron=lif,if",): r"^neuron: .* is a sweep",
             ("hydra.run.dir=x",): r"Hydra settings do not apply to the Python API",
             ("-m",): r"is an option of the snnrun command",
             ("trainer.epochs=[",): r"^overrides: "}
    for overrides, message in cases.items():
        with pytest.raises(SnnrunError, match=message) as caught:
            snnrun.compose(list(overrides))
        assert "\n" not in str(caught.value)
        assert not hydra_initialised()
    with pytest.raises(ConfigError, match=r"^overrides: expected a list of key=value strings"):
        snnrun.compose("neuron=if")
    with pytest.raises(ConfigError, match=r"^config_dir: .* is not a directory"):
        snnrun.compose([], config_dir="no/such/folder")


def test_run_writes_the_run_directory_the_cli_writes(api_run):
    run_dir = api_run.run_dir
    assert api_run.status == "completed" and run_dir.is_absolute()
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "snnrun.log", "metrics.csv", "metrics.jsonl",
                 "checkpoints/last.pt", "checkpoints/last.pt.sha256", "checkpoints/best.pt", "summary.json"):
        assert (run_dir / name).is_file(), name
    saved = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    assert OmegaConf.to_container(saved) == OmegaConf.to_container(snnrun.compose(SMALL))  # as Hydra saves it
    assert yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text()) == SMALL
    assert api_run.summary == json.loads((run_dir / "summary.json").read_text())
    assert api_run.summary["epochs_completed"] == 1 and api_run.summary["run_dir"] == str(run_dir)
    assert [(row["epoch"], row["split"]) for row in api_run.metrics] == [(1, "train"), (1, "val"), (1, "test")]
    assert api_run.metrics[2]["test/accuracy"] == api_run.summary["final"]["test/accuracy"]
    assert "epoch 1/1" in (run_dir / "snnrun.log").read_text()
    from snnrun.runlock import lock_run_dir, unlock_run_dir
    assert lock_run_dir(run_dir)  # the run released its lock
    unlock_run_dir(run_dir)
    assert not hydra_initialised() and "completed" in repr(api_run)
    with pytest.raises(SnnrunError, match=r"^run_dir: .* already holds a run \(.hydra/config.yaml\); .* snnrun resume"):
        snnrun.run(SMALL, run_dir=run_dir)


def test_a_failed_build_leaves_no_directory_and_the_default_is_under_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SnnrunError, match=r"network.populations.out.shape: the output population has 3 neurons"):
        snnrun.run(SMALL + ["network.populations.out.shape=3"], verbose=False)
    assert list((tmp_path / "outputs").rglob("*.yaml")) == []  # created, then removed again
    with pytest.raises(ConfigError, match=r"^trainer.epochs: "):
        snnrun.run(SMALL + ["trainer.epochs=0"], verbose=False)
    assert not any(p.is_file() for p in (tmp_path / "outputs").rglob("*"))


def test_snnrun_resume_and_compare_take_an_api_run(api_run, tmp_path, capsys):
    part = snnrun.run(snnrun.compose(SMALL + ["trainer.epochs=2", "trainer.stop_after=1"]), run_dir=tmp_path / "part",
                      verbose=False)
    assert part.status == "stopped" and not (tmp_path / "part" / ".hydra" / "overrides.yaml").exists()
    from snnrun.cli import resume
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        resume([str(tmp_path / "part")])  # `snnrun resume RUN`, in this process (it logs through the root logger)
    finally:
        for handler in set(root.handlers) - set(handlers):
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)
    assert "completed 2/2 epochs" in capsys.readouterr().out
    assert json.loads((tmp_path / "part" / "summary.json").read_text())["epochs_completed"] == 2
    from snnrun.compare import main as compare
    assert not compare([str(api_run.run_dir), str(tmp_path / "part")])
    table = capsys.readouterr().out
    assert "epochs" in table.splitlines()[0] and table.count("completed") == 2  # the config key that differs


def test_load_run_in_a_fresh_process_predicts_as_in_process(api_run, tmp_path):
    loaded = api_run.load()
    assert isinstance(loaded.model, torch.nn.Module) and not loaded.model.training
    assert loaded.network is loaded.model.network and loaded.checkpoint.name == "best.pt"
    assert loaded.epoch == api_run.summary["best"]["epoch"] and loaded.config.trainer.epochs == 1
    assert loaded.metrics == api_run.metrics and loaded.summary == api_run.summary
    best = torch.load(loaded.checkpoint, weights_only=True)
    for name, value in loaded.network.state_dict().items():
        assert torch.equal(value, best["model"][name]), name
    x = loaded.data().x_test[:16]
    assert tuple(x.shape[1:]) == loaded.model.input_shape == (64,)
    torch.manual_seed(0)
    with torch.no_grad():
        scores = loaded.model(x)
    assert scores.shape == (16, 10) and scores.std() > 0
    torch.save({"x": x}, tmp_path / "x.pt")
    code = textwrap.dedent("""
        import sys, torch, snnrun
        from hydra.core.global_hydra import GlobalHydra
        loaded = snnrun.load_run(sys.argv[1])
        x = torch.load(sys.argv[2], weights_only=True)["x"]
        torch.manual_seed(0)
        with torch.no_grad():
            scores = loaded.model(x)
        torch.save({"scores": scores, "predicted": loaded.model.decoder.predict(scores)}, sys.argv[3])
        assert not GlobalHydra.instance().is_initialized()
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(api_run.run_dir), str(tmp_path / "x.pt"),
                           str(tmp_path / "out.pt")], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    fresh = torch.load(tmp_path / "out.pt", weights_only=True)
    assert torch.equal(fresh["scores"], scores)
    assert torch.equal(fresh["predicted"], loaded.model.decoder.predict(scores))
    last = snnrun.load_run(api_run.run_dir / "checkpoints" / "last.pt")  # a checkpoint file works too
    assert last.checkpoint.name == "last.pt" and last.epoch == 1


class Payload:
    """Pickles as a call of ``os.system``: what a crafted checkpoint would run on load."""

    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return os.system, (f"touch {self.sentinel}",)


def test_tampered_or_crafted_checkpoints_are_refused(api_run, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(api_run.run_dir, run_dir, ignore=shutil.ignore_patterns(".lock"))
    best = run_dir / "checkpoints" / "best.pt"
    data = bytearray(best.read_bytes())
    data[len(data) // 2] ^= 0xFF
    best.write_bytes(bytes(data))
    with pytest.raises(SnnrunError, match=r"best.pt failed its checksum: checksum mismatch"):
        snnrun.load_run(run_dir)
    with pytest.raises(SnnrunError, match=r"failed its checksum"):
        snnrun.load_run(run_dir, trust_unverified=True)  # a file that differs from its checksum: never
    (run_dir / "checkpoints" / "last.pt.sha256").unlink()
    with pytest.raises(UnverifiedCheckpoint, match=r"last.pt is unverified \(no checksum file .*\); if you trust "
                                                   r"this file, pass trust_unverified=True"):
        snnrun.load_run(run_dir, "last")
    assert snnrun.load_run(run_dir, "last", trust_unverified=True).epoch == 1
    sentinel, prev = tmp_path / "ran", run_dir / "checkpoints" / "prev.pt"
    torch.save({"format_version": 1, "model": Payload(sentinel)}, prev)
    (run_dir / "checkpoints" / "prev.pt.sha256").write_text(f"{hashlib.sha256(prev.read_bytes()).hexdigest()}  prev.pt\n")
    with pytest.raises(SnnrunError, match=r"refusing to load .*prev.pt: it is not a plain tensor checkpoint"):
        snnrun.load_run(run_dir, "prev")
    assert not sentinel.exists()
    with pytest.raises(ConfigError, match=r"^checkpoint: expected one of best, last, prev, got 'first'"):
        snnrun.load_run(run_dir, "first")
    with pytest.raises(SnnrunError, match=r"is not a run directory: .*config.yaml is missing"):
        snnrun.load_run(tmp_path)


def test_allow_targets_only_from_the_argument(api_run, tmp_path, monkeypatch):
    (tmp_path / "mylab_api").mkdir()
    (tmp_path / "mylab_api" / "__init__.py").write_text("")
    (tmp_path / "mylab_api" / "neurons.py").write_text(textwrap.dedent("""
        from snnrun.neurons import NEURONS
        from snnrun.neurons.lif import LIF

        @NEURONS.register("mylab_api_lif")
        class MyLIF(LIF):
            '''LIF under another name (a user's plug-in component).'''
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(targets.ENV, raising=False)
    from snnrun.neurons import NEURONS
    monkeypatch.setattr(NEURONS, "_classes", dict(NEURONS._classes))  # the plug-in's registration is undone after
    cfg = snnrun.compose(SMALL)
    OmegaConf.set_struct(cfg, False)
    cfg.neuron = {"_target_": "mylab_api.neurons.MyLIF", "tau_m": 7.0}
    with pytest.raises(ConfigError, match=r"^neuron._target_: `mylab_api.neurons.MyLIF` is not allowed"):
        snnrun.run(cfg, run_dir=tmp_path / "refused")
    assert not (tmp_path / "refused").exists() and "mylab_api.neurons" not in sys.modules
    cfg.allow_targets = ["mylab_api"]  # in the config only: not honoured
    with pytest.raises(ConfigError, match=r"^allow_targets: \['mylab_api'\] is honoured only from the caller, never "
                                          r"from a config; .* pass build_model\(\.\.\., allow_targets=\['mylab_api'\]\)"):
        snnrun.build_model(cfg)
    model = snnrun.build_model(cfg, allow_targets=["mylab_api"])
    neuron = model.network.populations["hidden"].neuron
    assert type(neuron).__name__ == "MyLIF" and neuron.params.tau_m == 7.0
    assert "mylab_api" not in targets._command_line  # trusted for that call only
    with pytest.raises(ConfigError, match=r"^allow_targets: expected a list of module names"):
        snnrun.build_model(cfg, allow_targets="mylab_api")
    # a saved run's config cannot allow its own targets either
    run_dir = tmp_path / "copy"
    shutil.copytree(api_run.run_dir, run_dir, ignore=shutil.ignore_patterns(".lock"))
    saved = run_dir / ".hydra" / "config.yaml"
    saved.write_text(saved.read_text() + "allow_targets:\n- mylab_api\n")
    with pytest.raises(ConfigError, match=r"config.yaml: allow_targets: \['mylab_api'\] is honoured only from the "
                                          r"caller"):
        snnrun.load_run(run_dir)
    assert snnrun.load_run(run_dir, allow_targets=["mylab_api"]).epoch == 1
    sys.modules.pop("mylab_api.neurons", None)
    sys.modules.pop("mylab_api", None)


def test_build_model_and_build_network_from_dicts():
    cfg = snnrun.compose(SMALL)
    before = torch.get_rng_state()
    a, b = snnrun.build_model(cfg), snnrun.build_model(OmegaConf.to_container(cfg))  # a plain dict too
    assert torch.equal(torch.get_rng_state(), before)  # weights from config.seed; the caller's RNG untouched
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
    assert a.input_shape == (64,) and a.num_classes == 10 and a.time_steps == 8
    assert snnrun.build_model(cfg, input_shape=[64], num_classes=10).time_steps == 8  # without loading the data
    network = snnrun.build_network(cfg)
    assert list(network.populations) == ["inp", "hidden", "out"]

    section = {"dt": 1.0, "duration": 10.0,
               "populations": {"inp": {"shape": None}, "out": {"shape": 3}},
               "projections": {"inp_out": {"from": "inp", "to": "out", "synapse": {"name": "dense", "gain": 3.0}}}}
    with pytest.raises(ConfigError, match=r"^input_shape: input population 'inp' has no shape"):
        snnrun.build_network(section)
    net = snnrun.build_network(section, neuron="if", input_shape=[4])
    assert type(net.populations["out"].neuron).__name__ == "IF"
    out = net(torch.ones(10, 2, 4))
    assert out.spikes["out"].shape == (10, 2, 3) and out.spikes["out"].sum() > 0
    net = snnrun.build_network(section, neuron={"name": "lif", "tau_m": 3.0}, surrogate="atan", input_shape=[4])
    assert net.populations["out"].neuron.params.tau_m == 3.0
    weight = net.projections["inp_out"].stages[0].weight
    net(torch.rand(10, 2, 4)).spikes["out"].sum().backward()  # the surrogate passes gradients to the weights
    assert weight.grad is not None and weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match=r"^surrogate"):
        snnrun.build_network(section, surrogate="nope", input_shape=[4])
    with pytest.raises(ConfigError, match=r"^neuron: no option 'lfi' \(did you mean `lif`\?\); choices: "):
        snnrun.build_network(section, neuron="lfi", input_shape=[4])
    evil = {**section, "projections": {"inp_out": {"from": "inp", "to": "out",
                                                   "synapse": {"_target_": "os.system", "command": "true"}}}}
    with pytest.raises(ConfigError, match=r"^network.projections.inp_out.synapse._target_: `os.system` is not allowed"):
        snnrun.build_network(evil, input_shape=[4])
    with pytest.raises(ConfigError, match=r"network.populations.out.shape: "):
        snnrun.build_network({**section, "populations": {"inp": {"shape": 4}, "out": {"shape": "${data.num_classes}"}}})


def python_blocks(path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_the_docs_example_runs(tmp_path, monkeypatch):
    """docs/python-api.md: every ```python block, in order, with smaller runs (digits, a few batches)."""
    blocks = python_blocks(ROOT / "docs" / "python-api.md")
    assert len(blocks) >= 5 and "snnrun.run(" in "".join(blocks) and "load_run(" in "".join(blocks)
    monkeypatch.chdir(tmp_path)
    compose = snnrun.api.compose
    smaller = ["trainer.limit_train_batches=2", "trainer.limit_test_batches=2", "network.duration=8",
               "trainer.progress=false", "device=cpu", "plots=off", "monitors=off"]
    monkeypatch.setattr(snnrun, "compose", lambda overrides=(), **kw: compose([*overrides, *smaller], **kw),
                        raising=False)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/python-api.md", "exec"), namespace)
    assert namespace["result"].status == "completed" and namespace["loaded"].epoch in (1, 2)
    assert (tmp_path / "runs" / "first" / "checkpoints" / "best.pt").is_file()
    assert (tmp_path / "runs" / "fine-tuned.pt").is_file()


def test_tasks_other_than_train_run_too(tmp_path):
    result = snnrun.run(["experiment=current_clamp", "clamp.duration=20", "plots=off"], run_dir=tmp_path / "clamp",
                        verbose=False)
    assert result.status == "completed" and result.summary["task"] == "current_clamp" and \
        [r["steps"] for r in result.metrics] == [200]
    assert (tmp_path / "clamp" / "fi_curve.csv").is_file() and (tmp_path / "clamp" / ".hydra" / "config.yaml").is_file()
    with pytest.raises(SnnrunError, match=r"^load_run: .*last.pt holds no model weights$"):
        snnrun.load_run(tmp_path / "clamp", "last")
