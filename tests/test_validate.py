"""`snnrun validate`: schema and signature checks of a composed config without running it."""

from __future__ import annotations

import pytest

from snnrun.errors import ConfigError, ShapeError
from snnrun.validate import compose, validate_config
from tests.conftest import run_cli


def check(*overrides: str) -> list[str]:
    return validate_config(compose(list(overrides)))


def test_default_config_is_valid_and_says_what_it_could_not_check():
    notes = check()
    assert any("input shape comes from the data" in n for n in notes)


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


def test_shapes_checked_on_meta_device_when_input_shape_is_given():
    assert not any("shape" in n for n in check("data=synthetic", "data.input_shape=[20]"))
    with pytest.raises(ShapeError, match="network.populations.inp.shape: input population has shape \\[21\\]"):
        check("data=synthetic", "data.input_shape=[20]", "+network.populations.inp.shape=[21]")


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
