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
