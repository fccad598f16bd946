"""Building experiments from config: validation messages, shapes, devices."""

from __future__ import annotations

import pytest
import torch

from snnrun.build import build_experiment
from snnrun.device import resolve_device
from snnrun.errors import ConfigError, DeviceError, ShapeError


def test_default_experiment_builds(tiny_cfg):
    exp = build_experiment(tiny_cfg())
    assert exp.network.time_steps == 8 and exp.network.feedforward
    assert exp.network.populations["out"].shape == (4,)  # ${data.num_classes} filled from the data
    assert exp.network.populations["inp"].shape == (20,)
    assert isinstance(exp.optimizer, torch.optim.Adam)


@pytest.mark.parametrize("override,message", [
    ("+neuron.tau_mm=3", "neuron.tau_mm: unknown key (did you mean `tau_m`?)"),
    ("neuron.tau_m=-1", "neuron.tau_m: -1.0 is out of range; it must be > 0"),
    ("+trainr.epochs=2", "trainr: unknown top-level key (did you mean `trainer`?)"),
    ("trainer.epochs=abc", "trainer.epochs: expected an integer, got 'abc'"),
    ("encoder.name=poison", "encoder.name: unknown encoder 'poison' (did you mean `poisson`?)"),
    ("learner.surrogate.name=atn", "learner.surrogate.name: unknown surrogate 'atn' (did you mean `atan`?)"),
    ("network.duration=2.5", "network.duration: 2.5 ms is not a whole number"),
    ("network.projections.hidden_out.to=outt", "network.projections.hidden_out.to: no population 'outt'"),
    ("optimizer.name=Adamw", "optimizer.name: unknown optimizer 'Adamw' (did you mean `AdamW`?)"),
])
def test_config_errors_name_the_key(tiny_cfg, override, message):
    with pytest.raises(ConfigError) as err:
        build_experiment(tiny_cfg(override))
    assert str(err.value).startswith(message), str(err.value)


def test_shape_mismatch_names_projection_and_shapes():
    from snnrun.network import build_network

    node = {"populations": {"inp": {"shape": None}, "hidden": {"shape": 16}},
            "projections": {"inp_hidden": {"from": "inp", "to": "hidden", "synapse": {"name": "flatten"}}}}
    with pytest.raises(ShapeError) as err:
        build_network(node, {"name": "lif"}, (20,))
    text = str(err.value)
    assert "network.projections.inp_hidden" in text and "'inp_hidden' (inp -> hidden)" in text
    assert "[20]" in text and "[16]" in text


def test_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="device: 'cuda:1' requested but CUDA is not available"):
            resolve_device("cuda:1")
    with pytest.raises(DeviceError, match="device: 'tpu' is not a device"):
        resolve_device("tpu")
