"""The experiment spec: the composed config parsed once, typed, without side effects."""

from __future__ import annotations

import pytest
import torch
from conftest import compose_config

from snnrun.build import build_experiment
from snnrun.errors import ConfigError
from snnrun.spec import ExperimentSpec, TrainerParams, parse_spec


def test_every_group_is_typed():
    spec = parse_spec(compose_config())
    assert isinstance(spec, ExperimentSpec) and spec.task == "train" and spec.seed == 0
    assert isinstance(spec.trainer, TrainerParams) and spec.trainer.epochs == 30 and spec.trainer.threads == "auto"
    assert (spec.data.name, spec.encoder.name, spec.decoder.name) == ("digits", "poisson", "spike_counts")
    assert spec.encoder.params.max_rate > 0 and spec.data.params.batch_size == 64
    net = spec.network
    assert list(net.populations) == ["inp", "hidden", "out"] and net.inputs == ["inp"] and net.output == "out"
    assert net.populations["inp"].neuron is None and net.populations["hidden"].shape == (256,)
    assert net.populations["hidden"].neuron.name == "lif" and net.populations["hidden"].neuron.key == "neuron"
    assert net.populations["out"].shape is None  # sized by the decoder at build
    stage = net.projections["inp_hidden"].stages[0]
    assert (stage.name, stage.key, stage.params.gain) == ("dense", "network.projections.inp_hidden.synapse", 3.0)
    assert net.time_steps == 25 and net.params.init_rate == 20.0
    assert [s.key for s in spec.learners] == ["learner"] and spec.learners[0].cls.registry_name == "bptt"
    assert spec.optimizer["name"] == "Adam" and spec.scheduler["name"] == "CosineAnnealingLR"
    assert spec.logger.sinks == ["csv", "jsonl"] and spec.monitors.enabled and spec.probes == {}
    with pytest.raises(Exception):
        spec.seed = 1  # frozen


def test_parsing_loads_nothing_builds_nothing_draws_nothing(tmp_path):
    before = torch.random.get_rng_state()
    missing = tmp_path / "absent.npz"
    spec = parse_spec(compose_config(["data=npz", f"data.path={missing}", "data.input_shape=[4]",
                                      "data.num_classes=2"]))
    assert spec.data.name == "npz" and not missing.exists()
    assert torch.equal(torch.random.get_rng_state(), before)


@pytest.mark.parametrize("override, key", [
    ("+network.populations.hidden.neuron={name: lif, tau_m: -1}", "network.populations.hidden.neuron.tau_m"),
    ("+network.projections.inp_hidden.synapse.gian=2", "network.projections.inp_hidden.synapse.gian"),
    ("network.projections.inp_hidden.to=nowhere", "network.projections.inp_hidden.to"),
    ("+monitors.probes.p={target: hidden, split: holdout}", "monitors.probes.p.split"),
    ("plots.dpi=-3", "plots.dpi"),
    ("trainer.threads=0", "trainer.threads"),
    ("trainer.threads=many", "trainer.threads"),
    ("encoder.max_rate=-5", "encoder.max_rate"),
    ("decoder=population_vote|decoder.neurons_per_class=0", "decoder.neurons_per_class"),
])
def test_errors_name_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        parse_spec(compose_config(override.split("|")))
    assert str(err.value).startswith(key), str(err.value)


def test_the_build_runs_on_the_spec(tiny_cfg):
    exp = build_experiment(tiny_cfg("trainer.threads=1"))
    assert exp.spec.trainer.threads == 1 and exp.config is exp.spec.config
    assert exp.spec.network.populations["hidden"].shape == (16,)
    assert exp.network.populations["out"].shape == (exp.data.num_classes,)  # the decoder sized it


@pytest.mark.parametrize("experiment, key, schema", [
    ("current_clamp", "clamp", "ClampParams"), ("stdp_window", "protocol", "ProtocolParams"),
    ("rstdp_xor", "xor", "XorParams"), ("diehl_cook", "diehl_cook", "DiehlCookParams")])
def test_a_tasks_sections_are_parsed_with_its_schema(experiment, key, schema):
    spec = parse_spec(compose_config([f"experiment={experiment}"]))
    assert spec.task == experiment and list(spec.sections) == [key]
    assert type(spec.sections[key]).__name__ == schema
    assert parse_spec(compose_config([])).sections == {}  # train owns no section


def test_a_bad_task_section_value_names_its_key():
    with pytest.raises(ConfigError, match=r"^clamp.duration: "):
        parse_spec(compose_config(["experiment=current_clamp", "clamp.duration=-5"]))
