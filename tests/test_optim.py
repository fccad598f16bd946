from __future__ import annotations

import pytest
import torch

from snnrun.errors import ConfigError
from snnrun.optim import build_optimizer, build_scheduler, optimizer_classes, scheduler_classes


def params():
    return [torch.nn.Parameter(torch.zeros(3))]


def test_every_torch_optimizer_is_available():
    names = optimizer_classes()
    for name in ("Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "LBFGS", "NAdam", "RAdam"):
        assert name in names
    assert "CosineAnnealingLR" in scheduler_classes() and "ReduceLROnPlateau" in scheduler_classes()


def test_builds_with_yaml_kwargs():
    opt = build_optimizer({"name": "AdamW", "lr": 0.01, "betas": [0.8, 0.9]}, params())
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[0]["betas"] == (0.8, 0.9)
    sched, interval = build_scheduler({"name": "CosineAnnealingLR", "T_max": 4, "interval": "step"}, opt)
    assert isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingLR) and interval == "step"


def test_unknown_names_and_arguments():
    with pytest.raises(ConfigError, match=r"optimizer.name: unknown optimizer 'Adamm' \(did you mean `Adam`\?\)"):
        build_optimizer({"name": "Adamm"}, params())
    with pytest.raises(ConfigError, match=r"optimizer.lrr: Adam has no argument 'lrr' \(did you mean `lr`\?\)"):
        build_optimizer({"name": "Adam", "lrr": 1}, params())
    opt = build_optimizer({"name": "SGD", "lr": 0.1}, params())
    with pytest.raises(ConfigError, match=r"scheduler: StepLR needs step_size"):
        build_scheduler({"name": "StepLR"}, opt)
    assert build_scheduler({"name": None}, opt) == (None, "epoch")


def test_unit_groups_scale_the_step_to_each_weights_unit():
    from snnrun.optim import build_optimizer, build_scheduler, unit_groups

    a, b, c = (torch.nn.Parameter(torch.zeros(2)) for _ in range(3))
    units = {id(a): 4.0, id(b): 0.5}
    assert unit_groups([a, b], {}, "Adam") == [a, b]  # all in unit 1: one plain group
    adam = build_optimizer({"name": "Adam", "lr": 0.01}, unit_groups([a, b, c], units, "Adam"))
    assert [g["lr"] for g in adam.param_groups] == pytest.approx([0.04, 0.005, 0.01])
    sgd = build_optimizer({"name": "SGD", "lr": 0.01}, unit_groups([a, b, c], units, "SGD"))
    assert [g["lr"] for g in sgd.param_groups] == pytest.approx([0.16, 0.0025, 0.01])
    adadelta = build_optimizer({"name": "Adadelta", "lr": 1.0}, unit_groups([a, b], units, "Adadelta"))
    assert [g["lr"] for g in adadelta.param_groups] == [1.0, 1.0]
    sched, _ = build_scheduler({"name": "OneCycleLR", "max_lr": 0.1, "total_steps": 10, "interval": "step"},
                               build_optimizer({"name": "Adam", "lr": 0.01}, unit_groups([a, b], units, "Adam")))
    assert [g["max_lr"] for g in sched.optimizer.param_groups] == pytest.approx([0.4, 0.05])


def test_weight_units_carry_the_target_models_adaptation_factor():
    """unit = weight_scale · κ_target, κ = (drive + adaptation) / drive: Izhikevich RS (d = 8, drive 4) κ = 3,
    LIF κ = 1 (its unit stays the weight scale)."""
    from snnrun.network import build_network
    from snnrun.optim import weight_units

    net = {"dt": 1.0, "duration": 5.0, "populations": {"inp": {}, "a": {"shape": 8},
                                                      "b": {"shape": 4, "neuron": {"name": "izh"}}},
           "projections": {"inp_a": {"source": "inp", "target": "a"}, "a_b": {"source": "a", "target": "b"}},
           "output": "b"}
    built = build_network(net, {"name": "lif"}, (6,))
    inp_a, a_b = (built.projections[n].stages[0] for n in ("inp_a", "a_b"))
    assert a_b.weight_scale == pytest.approx(4.0) and inp_a.weight_scale == 1.0
    units = weight_units(built)
    assert units[id(inp_a.weight)] == 1.0
    assert units[id(a_b.weight)] == pytest.approx(12.0)
    plain = torch.nn.Linear(2, 2)
    plain.weight_scale = 2.5
    assert weight_units(plain) == {id(plain.weight): 2.5}  # not a network: the recorded scale alone
