"""Every registered component, switched in by name alone on the default experiment, runs or is
refused at build with one line naming a config key.

The cases are read from the registries (and torch.optim / torch.optim.lr_scheduler), so a new
component is covered without editing this file: a config group's file per name (``neuron=adex``;
a plain alias through its component's file, ``neuron=izh neuron.name=izhikevich``), a surrogate
by ``learner.surrogate.name``, a synapse as the ``hidden_out`` projection's, a reward under a
reward-modulated learner, every optimizer and scheduler class by ``name``. Each is validated
(``snnrun validate``: the run's build as a dry run); what it accepts then runs one training batch
and one evaluation batch of one epoch, which must complete.
"""

from __future__ import annotations

import re

import pytest

from snnrun.catalog import CONFIGS, registries
from snnrun.errors import SnnrunError
from snnrun.optim import optimizer_classes, scheduler_classes
from snnrun.validate import compose, validate_config
from tests.conftest import run_cli

SHORT = ["trainer.epochs=1", "trainer.limit_train_batches=1", "trainer.limit_test_batches=1", "data.subset=40",
         "data.batch_size=8", "network.duration=5", "network.populations.hidden.shape=16", "trainer.progress=false",
         "plots=off", "monitors=off", "device=cpu"]
#: a one-line error that starts with the config key it is about (``learner.surrogate.name: ...``)
ONE_LINE = re.compile(r"^[A-Za-z_][\w.\[\]-]*: \S")


def switches() -> list[tuple[str, list[str]]]:
    """(id, overrides) of every component switched in by name alone."""
    regs, cases = registries(), []
    for group in ("neuron", "encoder", "decoder", "learner"):  # config groups: one file per component
        registry = regs[group]
        for name in registry.names():
            if (CONFIGS / group / f"{name}.yaml").exists():
                cases.append((f"{group}={name}", [f"{group}={name}"]))
            else:  # a plain alias: its component's file, renamed
                canonical = registry.get(name).registry_name
                cases.append((f"{group}.name={name}", [f"{group}={canonical}", f"{group}.name={name}"]))
    cases += [(f"learner.surrogate.name={n}", [f"learner.surrogate.name={n}"]) for n in regs["surrogate"].names()]
    cases += [(f"synapse={n}", [f"network.projections.hidden_out.synapse.name={n}"]) for n in regs["synapse"].names()]
    cases += [(f"reward={n}", ["learner=mstdpet", f"learner.reward.name={n}"]) for n in regs["reward"].names()]
    for group, classes in (("optimizer", optimizer_classes()), ("scheduler", scheduler_classes())):
        cases += [(f"{group}={p.stem}", [f"{group}={p.stem}"]) for p in sorted((CONFIGS / group).glob("*.yaml"))]
        base = ["scheduler=none"] if group == "scheduler" else []
        cases += [(f"{group}.name={n}", [*base, f"{group}.name={n}"]) for n in sorted(classes)]
    return cases


CASES = switches()


def test_every_registry_is_enumerated():
    ids = {case_id.split("=")[0].split(".")[0] for case_id, _ in CASES}
    assert ids == {"neuron", "encoder", "decoder", "learner", "learner", "synapse", "reward", "optimizer", "scheduler"}
    for kind, registry in registries().items():
        if kind != "data":  # datasets read files (tests/data/test_data.py, tests/data/test_events.py)
            assert all(any(case_id.endswith(f"={n}") for case_id, _ in CASES) for n in registry.names()), kind


@pytest.mark.parametrize("case_id,overrides", CASES, ids=[c for c, _ in CASES])
def test_component_by_name_runs_or_fails_in_one_line(case_id, overrides, tmp_path):
    cfg = compose(overrides + SHORT)
    try:
        validate_config(cfg)
    except SnnrunError as err:
        message = str(err)
        assert "\n" not in message and ONE_LINE.match(message), f"{case_id}: {message!r}"
        return
    from snnrun.build import build_experiment
    from snnrun.runner import Runner

    summary = Runner(build_experiment(cfg), tmp_path, "").fit()  # the build drops the hydra section
    assert summary["status"] == "completed" and summary["epochs_completed"] == 1, case_id


@pytest.mark.parametrize("overrides, message", [
    (["decoder=population_vote", "network.populations.out.shape=10"],
     "network.populations.out.shape: the output population has 10 neurons but decoder population_vote reads 100 "
     "(10 classes x decoder.neurons_per_class); set network.populations.out.shape=100"),
    (["decoder=label_assignment"], "learner.name: bptt trains through gradients but decoder label_assignment"),
    (["learner.surrogate.name=heaviside"], "learner.surrogate.name: heaviside passes no gradient through a spike"),
    (["learner.surrogate.name=triangle", "learner.surrogate.alpha=3"],
     "learner.surrogate.alpha: unknown key; valid keys: width"),
    (["encoder=spikes"], "encoder.name: spikes reads sequences [T, ...] but the data's samples have shape [64]"),
    (["encoder=sstb"], "encoder.name: sstb reads spike times in ms, but data=digits holds intensities in [0, 1]; "
                       "use an intensity encoder (poisson, bernoulli"),
    (["encoder=mstb"], "encoder.name: mstb reads up to K spike times per input neuron, samples [*shape, K], but the "
                       "data's samples have shape [64]"),
    (["optimizer.name=LBFGS"], "optimizer.name: LBFGS cannot train here: its step needs a closure"),
    (["scheduler=none", "scheduler.name=SequentialLR"], "scheduler.name: SequentialLR takes other scheduler objects"),
])
def test_refusals_name_the_key_and_the_fix(overrides, message):
    with pytest.raises(SnnrunError) as info:
        validate_config(compose(overrides))
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("overrides", [
    ["decoder=population_vote"],  # the output population takes the decoder's size (network.populations.out.shape: null)
    ["decoder=population_vote", "network.populations.out.shape=100"],  # the fix the error above names
    ["decoder=label_assignment", "learner=stdp"],  # a local learner, as the label_assignment error says
    ["learner.surrogate.name=heaviside", "decoder=voltage_sum"],  # a voltage readout carries gradients
    ["learner=stbp", "learner.surrogate.name=triangle", "learner.surrogate.width=0.5"],
    ["experiment=rstdp_xor", "learner=reward_switch_stdp"],
])
def test_switches_that_compose(overrides):
    assert validate_config(compose(overrides)) == []


def test_cli_refusal_is_one_line_with_exit_code_2(tmp_path):
    out = run_cli("validate", "decoder=label_assignment", cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snnrun: error: learner.name: bptt trains through gradients")
