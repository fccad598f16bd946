"""`snnrun validate`: schema and signature checks of a composed config without running it."""

from __future__ import annotations

import pytest

from snnrun.errors import ConfigError, ShapeError
from snnrun.validate import compose, validate_config
from tests.conftest import run_cli


def check(*overrides: str) -> list[str]:
    return validate_config(compose(list(overrides)))


def test_default_config_and_every_shipped_experiment_are_valid():
    from snnrun.configs import CONFIG_DIR

    assert check() == []
    for path in sorted((CONFIG_DIR / "experiment").glob("*.yaml")):
        if path.stem.startswith("mnist") or path.stem.startswith("diehl_cook"):
            continue  # they read an MNIST .npz ($SNNRUN_MNIST_NPZ; tests/test_fuzz_configs.py covers them)
        assert check(f"experiment={path.stem}") == [], path.stem


@pytest.mark.parametrize("overrides, message", [
    (("network.populations.out.shape=7",), "network.populations.out.shape: the output population has 7 neurons but "
                                           "decoder spike_counts reads 10"),
    (("decoder=population_vote", "network.populations.out.shape=10"),
     "network.populations.out.shape: the output population has 10 neurons but decoder population_vote reads 100"),
    (("decoder=label_assignment",), "learner.name: bptt trains through gradients but decoder label_assignment "
                                    "assigns labels to neurons and its scores carry none"),
    (("encoder=spikes",), "encoder.name: spikes reads sequences [T, ...] but the data's samples have shape [64]"),
    (("optimizer.lr=-1",), "optimizer: Adam rejected its arguments: Invalid learning rate: -1"),
    (("device=[]",), "device: '[]' is not a device"),
    (("+monitors.probes.p.target=nowhere",), "monitors.probes.p.target: no population or projection 'nowhere'"),
    (("scheduler=nan",), "scheduler: a config group is chosen by name, got nan; choices: cosine, none, step"),
    (("trainer=[1,2,3]",), "trainer: a config group is chosen by name, got [1, 2, 3]; choices: default"),
])
def test_validate_refuses_what_the_build_refuses(overrides, message):
    """Each of these passed `validate` while the run refused it; now both are the same build."""
    from snnrun.build import build_experiment
    from snnrun.errors import SnnrunError

    with pytest.raises(SnnrunError) as info:
        check(*overrides)
    assert str(info.value).startswith(message)
    if not overrides[0].startswith(("scheduler=", "trainer=")):  # group values fail at composition
        from tests.conftest import compose_config
        with pytest.raises(SnnrunError) as built:
            from snnrun.monitors import Instruments
            Instruments(build_experiment(compose_config(list(overrides))), ".")
        assert str(built.value) == str(info.value)


def test_validate_checks_the_hydra_section():
    with pytest.raises(ConfigError, match=r"^hydra.output_subdir: `../../x` is outside the run directory"):
        check("hydra.output_subdir=../../x")
    with pytest.raises(ConfigError, match=r"^hydra.job.env_set.CXX: a config may not set this environment variable"):
        check("+hydra.job.env_set.CXX=/tmp/compiler")


@pytest.mark.parametrize("override, message", [
    ("+neuron.tua_m=3", "neuron.tua_m: unknown key (did you mean `tau_m`?)"),
    ("+optimizer.lrr=0.1", "optimizer.lrr: Adam has no argument 'lrr' (did you mean `lr`?)"),
    ("+scheduler.T_maxx=3", "scheduler.T_maxx: CosineAnnealingLR has no argument 'T_maxx'"),
    ("+encoder.rat=3", "encoder.rat: unknown key"),
    ("network.projections.inp_hidden.to=hiden", "network.projections.inp_hidden.to: no population 'hiden'"),
    ("+network.projections.inp_hidden.synapse.initt=x", "network.projections.inp_hidden.synapse.initt: unknown key"),
    ("network.duration=2.5", "network.duration: 2.5 ms is not a whole number"),
    ("optimizer.name=Adamm", "optimizer.name: unknown optimizer 'Adamm'"),
    ("trainer.mode=maximum", "trainer.mode"),
])
def test_misspelt_or_invalid_keys_are_caught(override, message):
    with pytest.raises(ConfigError) as info:
        check(override)
    assert str(info.value).startswith(message.split(":")[0])
    assert message in str(info.value)


def test_shapes_are_checked_with_the_data():
    with pytest.raises(ShapeError, match="network.populations.inp.shape: input population has shape \\[21\\]"):
        check("data=synthetic", "+network.populations.inp.shape=[21]")


def test_cli_validate_reports_one_line_and_exit_code_without_running(tmp_path):
    bad = run_cli("validate", "+neuron.tua_m=3", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == ("snnrun: error: neuron.tua_m: unknown key (did you mean `tau_m`?); valid keys: "
                                  + bad.stderr.split("valid keys: ")[1].strip())
    assert not (tmp_path / "outputs").exists()
    own = tmp_path / "my_configs" / "neuron"
    own.mkdir(parents=True)
    (own / "mine.yaml").write_text("name: lif\ntau_m: -4.0\n")
    out = run_cli("validate", "--config-dir", str(tmp_path / "my_configs"), "neuron=mine", cwd=tmp_path)
    assert out.returncode == 2 and "neuron.tau_m" in out.stderr


def test_the_readme_scheduler_example_is_valid():
    """The README's OneCycleLR example, as written there."""
    assert check("scheduler=none", "scheduler.name=OneCycleLR", "+scheduler.max_lr=0.01",
                 "+scheduler.total_steps=1000", "+scheduler.interval=step") == []
