"""Networks of the shipped configs with active layers, and their inputs, for the interop tests."""

from __future__ import annotations

import torch

from conftest import compose_config

#: name -> (overrides, input shape, classes); the networks the round-trip checks name
EXPERIMENTS = {
    "default": ([], (64,), 10),
    "mnist_cnn": (["experiment=mnist_cnn"], (1, 28, 28), 10),
    "recurrent": (["experiment=temporal_recurrent"], (20,), 4),
    "delayed": (["experiment=temporal_delayed"], (20,), 4),
}


def build(overrides, input_shape, classes, seed: int = 0):
    """The network of the composed config (random weights, seeded), in evaluation mode."""
    from snnrun.build import to_container
    from snnrun.network import build_network

    cfg = to_container(compose_config([*overrides, f"data.num_classes={classes}"]))
    torch.manual_seed(seed)
    net = build_network(cfg["network"], cfg.get("neuron"), input_shape, output_size=classes)
    with torch.no_grad():  # running statistics that are not the identity, so the fold is tested
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
    return net.eval()


def inputs(net, batch: int = 8, seed: int = 1) -> torch.Tensor:
    """Spikes (p = 0.2) for a 1-d input, intensities in [0, 1) for images: [T, B, *shape]."""
    g = torch.Generator().manual_seed(seed)
    shape = net.populations[net.inputs[0]].shape
    x = torch.rand(net.time_steps, batch, *shape, generator=g)
    return x if len(shape) == 3 else (x < 0.2).float()


def weighted(stage) -> bool:
    return isinstance(getattr(stage, "weight", None), torch.nn.Parameter)


def activate(net, x, low: float = 0.03, high: float = 0.3) -> dict[str, float]:
    """Scale each population's incoming weights until it fires at a rate in [low, high]
    (random initial weights leave deep layers silent); returns the rates."""
    rates = {}
    for name in net.order:
        pop = net.populations[name]
        if pop.is_input or not pop.neuron.spiking:
            continue
        for _ in range(20):
            net.reset()
            with torch.no_grad():
                rate = float(net(x).spikes[name].mean())
            factor = 1.7 if rate < low else 0.6 if rate > high else None
            if factor is None:
                break
            with torch.no_grad():
                for proj in net.incoming[name]:
                    for stage in proj.stages:
                        if weighted(stage):
                            stage.weight.mul_(factor)
        rates[name] = rate
    net.reset()
    return rates


def run(net, x) -> dict[str, torch.Tensor]:
    net.reset()
    with torch.no_grad():
        out = net(x).spikes
    net.reset()
    return out
