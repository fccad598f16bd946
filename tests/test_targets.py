"""`_target_` policy: refused unless allowed, nothing runs, allowed targets build registered components."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest
import torch
from omegaconf import OmegaConf

from conftest import TINY, compose_config, run_cli
from snnrun.build import build_experiment
from snnrun.errors import ConfigError
from snnrun import targets
from snnrun.targets import check_targets, command_line_modules, trust_command_line
from snnrun.validate import validate_config

EVIL = {
    "os.system": lambda sentinel: {"_target_": "os.system", "command": f"touch {sentinel}"},
    "builtins.eval": lambda sentinel: {"_target_": "builtins.eval",
                                       "_args_": [f"__import__('pathlib').Path('{sentinel}').touch()"]},
}


@pytest.mark.parametrize("target", sorted(EVIL))
def test_the_payloads_really_run_when_called(tmp_path, target):
    """Control: calling the node's target with its arguments creates the sentinel, so its absence below
    means nothing ran. (Hydra 1.3.8's own best-effort blocklist also refuses these two in `instantiate`;
    snnrun's check is an allow-list and runs first.)"""
    node = EVIL[target](tmp_path / "ran")
    function = {"os.system": os.system, "builtins.eval": eval}[target]
    function(*node.get("_args_", []), **{k: v for k, v in node.items() if not k.startswith("_")})
    assert (tmp_path / "ran").exists()


@pytest.mark.parametrize("target,where", [("os.system", "hydra.callbacks.evil"), ("builtins.eval", "hydra.callbacks.evil"),
                                          ("os.system", "optimizer")])
def test_cli_refuses_a_downloaded_config_before_anything_runs(tmp_path, target, where):
    """A downloaded experiment file (``--config-dir``) with the payload: refused in one line, exit 2,
    no run directory, no sentinel (Hydra would instantiate ``hydra.callbacks`` before the task runs)."""
    sentinel, run_dir = tmp_path / "ran", tmp_path / "run"
    node = EVIL[target](sentinel)
    for key in reversed(where.split(".")):
        node = {key: node}
    (tmp_path / "downloaded" / "experiment").mkdir(parents=True)
    (tmp_path / "downloaded" / "experiment" / "evil.yaml").write_text("# @package _global_\n" + OmegaConf.to_yaml(node))
    proc = run_cli("--config-dir", str(tmp_path / "downloaded"), "experiment=evil", *TINY,
                   f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (f"snnrun: error: {where}._target_: `{target}` is not allowed ("
                                   + ("only snnrun's Hydra callbacks" if where.startswith("hydra") else
                                      "snnrun components, torch.optim and torch.optim.lr_scheduler classes")
                                   + "); if you trust its module, allow it on the command line: snnrun "
                                     "allow_targets=[MODULE] ...")
    assert not sentinel.exists() and not run_dir.exists()


@pytest.mark.parametrize("target", sorted(EVIL))
def test_build_experiment_refuses(tmp_path, target):
    cfg = compose_config(TINY)
    OmegaConf.set_struct(cfg, False)
    cfg.decoder = EVIL[target](tmp_path / "ran")
    with pytest.raises(ConfigError, match=rf"decoder._target_: `{target}` is not allowed"):
        build_experiment(cfg)
    with pytest.raises(ConfigError, match=rf"decoder._target_: `{target}` is not allowed"):
        validate_config(cfg)
    assert not (tmp_path / "ran").exists()


def test_allowed_looking_paths_are_resolved_before_they_are_trusted(tmp_path):
    cfg = compose_config(TINY)
    OmegaConf.set_struct(cfg, False)
    cfg.optimizer = {"_target_": "snnrun.cli.os.system", "command": f"touch {tmp_path / 'ran'}"}
    with pytest.raises(ConfigError, match=r"optimizer._target_: `snnrun.cli.os.system` is `system` from module "
                                          r"posix, which is not allowed"):
        build_experiment(cfg)
    cfg.optimizer = {"_target_": "snnrun.checkpoint.save"}  # an snnrun function, not a component
    with pytest.raises(ConfigError, match="not a registered snnrun component or a torch.optim class"):
        build_experiment(cfg)
    assert not (tmp_path / "ran").exists()


def compose_with_hydra(overrides):
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module="snnrun.configs", version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def test_hydra_logging_factories_and_ext_references_are_checked():
    cfg = compose_with_hydra(TINY)
    check_targets(cfg)  # snnrun's own config: the SweepSummary callback, basic launcher/sweeper, logging classes
    OmegaConf.set_struct(cfg, False)
    cfg.hydra.job_logging.handlers.console["class"] = "os.system"
    with pytest.raises(ConfigError, match=r"hydra.job_logging.handlers.console.class: `os.system` is not allowed"):
        check_targets(cfg)
    cfg.hydra.job_logging.handlers.console["class"] = "logging.StreamHandler"
    cfg.hydra.job_logging.handlers.console.stream = "ext://os.environ"
    with pytest.raises(ConfigError, match=r"`ext://os.environ` is not allowed"):
        check_targets(cfg)
    cfg.hydra.job_logging.handlers.console.stream = "ext://sys.stderr"
    cfg.hydra.hydra_logging.formatters.simple["()"] = "builtins.exec"
    with pytest.raises(ConfigError, match=r"hydra.hydra_logging.formatters.simple.\(\): `builtins.exec` is not allowed"):
        check_targets(cfg)


def test_torch_optim_and_snnrun_targets_build_like_names():
    cfg = compose_config(TINY)
    OmegaConf.set_struct(cfg, False)
    cfg.optimizer = {"_target_": "torch.optim.SGD", "lr": 0.1, "momentum": 0.5}
    cfg.scheduler = {"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 1}
    cfg.neuron = {**OmegaConf.to_container(cfg.neuron), "_target_": "snnrun.neurons.lif.LIF"}
    del cfg.neuron["name"]
    exp = build_experiment(cfg)
    assert isinstance(exp.optimizer, torch.optim.SGD) and exp.optimizer.defaults["momentum"] == 0.5
    assert isinstance(exp.scheduler, torch.optim.lr_scheduler.StepLR)
    assert type(exp.network.populations["hidden"].neuron).__name__ == "LIF"
    cfg.optimizer = {"_target_": "torch.optim.SGD", "name": "Adam"}
    with pytest.raises(ConfigError, match="optimizer: give either `name` or `_target_`, not both"):
        build_experiment(cfg)


def test_allow_targets_imports_a_user_module_that_registers_a_component(tmp_path, monkeypatch):
    (tmp_path / "mylab").mkdir()
    (tmp_path / "mylab" / "__init__.py").write_text("")
    (tmp_path / "mylab" / "neurons.py").write_text(textwrap.dedent(f"""
        import pathlib
        pathlib.Path({str(tmp_path / 'imported')!r}).touch()
        from snnrun.neurons import NEURONS
        from snnrun.neurons.lif import LIF

        @NEURONS.register("mylab_lif")
        class MyLIF(LIF):
            '''LIF under another name (a user's plug-in component).'''

        def helper():
            return 1
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = compose_config(TINY)
    OmegaConf.set_struct(cfg, False)
    cfg.neuron = {"_target_": "mylab.neurons.MyLIF", "tau_m": 7.0}
    with pytest.raises(ConfigError, match=r"neuron._target_: `mylab.neurons.MyLIF` is not allowed"):
        build_experiment(cfg)
    assert not (tmp_path / "imported").exists()  # refused before the module was imported
    cfg.allow_targets = ["mylab"]  # in the config only: not honoured
    with pytest.raises(ConfigError, match=r"allow_targets: \[mylab\] was not given on the command line"):
        build_experiment(cfg)
    assert not (tmp_path / "imported").exists()
    monkeypatch.setenv(targets.ENV, "mylab")  # as `snnrun allow_targets=[mylab]` passes it on
    exp = build_experiment(cfg)
    neuron = exp.network.populations["hidden"].neuron
    assert type(neuron).__name__ == "MyLIF" and neuron.params.tau_m == 7.0
    assert (tmp_path / "imported").exists()
    cfg.neuron = {"_target_": "mylab.neurons.helper"}
    with pytest.raises(ConfigError, match="`mylab.neurons.helper` is not a registered snnrun component"):
        build_experiment(cfg)
    cfg.allow_targets = "mylab"
    with pytest.raises(ConfigError, match=r"allow_targets: expected a list of module names, got 'mylab'"):
        build_experiment(cfg)
    sys.modules.pop("mylab.neurons", None)
    sys.modules.pop("mylab", None)


def test_allow_targets_lets_hydra_run_a_trusted_callback(tmp_path):
    (tmp_path / "mycb.py").write_text(textwrap.dedent(f"""
        import pathlib
        from hydra.experimental.callback import Callback

        class Mark(Callback):
            def on_run_start(self, config, **kwargs):
                pathlib.Path({str(tmp_path / 'started')!r}).touch()
    """))
    args = [*TINY, "trainer.epochs=1", "trainer.limit_train_batches=1", "trainer.limit_test_batches=1", "monitors=off",
            "+hydra.callbacks.mark._target_=mycb.Mark"]
    refused = run_cli(*args, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert refused.returncode == 2 and "hydra.callbacks.mark._target_: `mycb.Mark` is not allowed" in refused.stderr
    for i, form in enumerate(("allow_targets=[mycb]", "+allow_targets=[mycb]")):  # the command line, with or without +
        (tmp_path / "started").unlink(missing_ok=True)
        allowed = run_cli(*args, f"hydra.run.dir={tmp_path / f'run{i}'}", form, cwd=tmp_path,
                          env={"PYTHONPATH": str(tmp_path)})
        assert allowed.returncode == 0, allowed.stderr
        assert (tmp_path / "started").exists()


# --- allow_targets only from the command line ------------------------------------------------------
COPY = {"_target_": "shutil.copyfile"}  # a callback "class" that writes where the config says, when Hydra builds it


def copy_payload(tmp_path):
    (tmp_path / "secret").write_text("x")
    return {"hydra": {"callbacks": {"evil": {**COPY, "src": str(tmp_path / "secret"), "dst": str(tmp_path / "marker")}}}}


def test_a_config_file_cannot_allow_its_own_targets(tmp_path):
    """A downloaded experiment that lists `shutil` in its own `allow_targets` and calls `shutil.copyfile`
    as a Hydra callback: refused naming the file and the line, nothing written, also by `validate`; the
    same file is refused when the command line allows `shutil` too (a config never sets allow_targets)."""
    (tmp_path / "downloaded" / "experiment").mkdir(parents=True)
    (tmp_path / "downloaded" / "experiment" / "evil.yaml").write_text(
        "# @package _global_\nallow_targets: [shutil]\n" + OmegaConf.to_yaml(copy_payload(tmp_path)))
    expected = ("snnrun: error: downloaded/experiment/evil.yaml line 2: allow_targets is honoured only on the command "
                "line, never from a config file: remove it here and, if you trust these modules, pass it there: "
                "snnrun allow_targets=[shutil] ...")
    for extra in ([], ["allow_targets=[shutil]"]):
        proc = run_cli("--config-dir", "downloaded", "experiment=evil", *TINY, f"hydra.run.dir={tmp_path / 'run'}",
                       *extra, cwd=tmp_path)
        assert (proc.returncode, proc.stderr.strip()) == (2, expected), proc.stderr[-2000:]
        assert not (tmp_path / "marker").exists() and not (tmp_path / "run").exists()
    proc = run_cli("validate", "--config-dir", "downloaded", "experiment=evil", cwd=tmp_path)
    assert (proc.returncode, proc.stderr.strip()) == (2, expected)


def test_a_crafted_run_directory_cannot_allow_its_own_targets(tmp_path):
    """`snnrun reproduce` of a run directory whose `.hydra/config.yaml` sets `allow_targets: [shutil]` and
    pulls a `hydra.callbacks` payload from a file beside it (through a `defaults` list; a `hydra` section
    in config.yaml itself is dropped): refused before anything runs, one line, exit 2, no marker."""
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    cfg = OmegaConf.to_container(compose_config(TINY))
    (run / ".hydra" / "config.yaml").write_text(
        OmegaConf.to_yaml({"defaults": ["_self_", "evil"], "allow_targets": ["shutil"], **cfg}))
    (run / ".hydra" / "evil.yaml").write_text("# @package _global_\n" + OmegaConf.to_yaml(copy_payload(tmp_path)))
    (run / "summary.json").write_text('{"status": "completed", "final": {}}\n')
    proc = run_cli("reproduce", "run", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip() == ("snnrun: error: run/.hydra/config.yaml: allow_targets [shutil] is honoured only on "
                                   "the command line, never from a saved run's config; if you trust these modules, "
                                   "pass it there: snnrun reproduce run allow_targets=[shutil]")
    assert not (tmp_path / "marker").exists() and not (tmp_path / "run-reproduced").exists()


def test_allow_targets_from_a_config_is_refused_where_no_file_check_runs(tiny_cfg):
    """`snnrun resume` and library callers build from a loaded config: its allow_targets must be
    the command line's (`allowed_modules`), whatever file it came from."""
    cfg = tiny_cfg()
    OmegaConf.set_struct(cfg, False)
    cfg.allow_targets = ["shutil"]
    with pytest.raises(ConfigError, match=r"^allow_targets: \[shutil\] was not given on the command line .* "
                                          r"snnrun allow_targets=\[shutil\] \.\.\.$"):
        check_targets(cfg)


def test_command_line_allowance(monkeypatch):
    monkeypatch.setattr(targets, "_command_line", set())
    monkeypatch.delenv(targets.ENV, raising=False)  # restored after the test
    assert command_line_modules(["a=1", "allow_targets=[x,y.z]", "-m"]) == {"x", "y.z"}
    assert command_line_modules(["++allow_targets=[a],[b]", "~allow_targets", "allow_targets=a"]) == {"a", "b"}
    assert trust_command_line(["allow_targets=[m]", "+allow_targets=[n]", "x=1", "--cfg"]) == \
        ["++allow_targets=[m]", "++allow_targets=[n]", "x=1", "--cfg"]
    assert targets._command_line == {"m", "n"} and os.environ[targets.ENV] == "m,n"  # for launcher processes
