"""Building a model or a network from a config for the API, with the caller's random state left as it was."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from omegaconf import DictConfig, OmegaConf, open_dict

from ..errors import ConfigError
from .trust import trusting

if TYPE_CHECKING:
    import torch

    from ..model import SpikingModel
    from ..network import Network


@contextlib.contextmanager
def own_rng() -> Iterator[None]:
    """The caller's global RNG states (torch, CUDA if in use, ``random``) are restored after the block."""
    import random

    import torch

    state = random.getstate()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(state)


def torch_device(device: Any) -> torch.device:
    """``device`` (a name such as ``"cpu"``, ``"auto"``, or a ``torch.device``) as a ``torch.device``."""
    from ..device import resolve_device

    return resolve_device(str(device))  # a torch.device too


def neuron_spec(neuron: str | Mapping[str, Any]) -> dict:
    """``neuron`` as a spec: a mapping as it is, an option of the ``neuron`` config group loaded."""
    if isinstance(neuron, Mapping):
        return dict(neuron)
    from ..configs import CONFIG_DIR

    choices = sorted(p.stem for p in (CONFIG_DIR / "neuron").glob("*.yaml"))
    if not isinstance(neuron, str) or neuron not in choices:
        from ..schema import suggest

        raise ConfigError(f"neuron: no option {neuron!r}{suggest(str(neuron), choices)}; choices: {', '.join(choices)}"
                          f" (or a spec such as {{'name': 'lif', 'tau_m': 10.0}})")
    return OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "neuron" / f"{neuron}.yaml"), resolve=True)


def check_input_shape(node: Mapping, input_shape: Sequence[int] | None) -> None:
    """``input_shape`` is positive integers or, when not given, every input population of ``node`` has a shape."""
    if input_shape is not None:
        if isinstance(input_shape, (str, bytes)) or not all(isinstance(s, int) and s > 0 for s in input_shape):
            raise ConfigError(f"input_shape: expected positive integers such as [64], got {input_shape!r}")
        return
    populations = node.get("populations") or {}
    targets = {str((p or {}).get("to", (p or {}).get("target"))) for p in (node.get("projections") or {}).values()
               if isinstance(p, Mapping)}
    for name, pop in populations.items() if isinstance(populations, Mapping) else ():
        if name not in targets and (not isinstance(pop, Mapping) or pop.get("shape") is None):
            raise ConfigError(f"input_shape: input population '{name}' has no shape (network.populations.{name}.shape"
                              f" is null: taken from the data); pass input_shape=[...] or set its shape")


def build_from_config(cfg: DictConfig, device: torch.device, input_shape: Sequence[int] | None,
                      num_classes: int | None) -> tuple[SpikingModel, DictConfig, Any]:
    """(model, the prepared config with the data's shape filled in, the data splits if loaded), built
    under ``cfg.seed`` without touching the caller's random state."""
    from ..build import build_components, load_data, prepare, to_container

    with own_rng():
        prepared, _ = prepare(cfg)  # checks, `_target_` nodes resolved, seeded as a run is
        data = None
        shape = input_shape if input_shape is not None else OmegaConf.select(prepared, "data.input_shape")
        classes = num_classes if num_classes is not None else OmegaConf.select(prepared, "data.num_classes")
        if shape is None or classes is None:  # as a run does: from the data
            data, _ = load_data(prepared)
            shape = data.input_shape if shape is None else shape
            classes = data.num_classes if classes is None else classes
        with open_dict(prepared):
            prepared.data.input_shape = [int(s) for s in shape]
            prepared.data.num_classes = int(classes)
        config = to_container(prepared)
        encoder, network, decoder, _ = build_components(config, tuple(int(s) for s in shape), int(classes))
    from ..model import SpikingModel

    model = SpikingModel(encoder, network, decoder, shape, int(classes)).to(device)
    return model, prepared, data


def network_from_section(section: DictConfig, neuron: str | Mapping[str, Any],
                         surrogate: str | Mapping[str, Any] | None, input_shape: Sequence[int] | None,
                         num_classes: int | None, modules: tuple[str, ...], device: Any) -> Network:
    """:func:`snnrun.api.build_network` of a ``network`` section alone (``modules``: those the caller allows)."""
    from ..build import to_container
    from ..build import network_from_node as build

    node = {"network": to_container(OmegaConf.create({"network": section}))["network"],  # errors name network.*
            "neuron": neuron_spec(neuron)}
    if modules:
        node["allow_targets"] = list(modules)
    with trusting(modules):
        from ..targets import check_targets, resolve_targets

        check_targets(node)  # `_target_` outside the registries is refused, as in a run
        resolve_targets(node)
        check_input_shape(node["network"], input_shape)
        shape = tuple(int(s) for s in input_shape) if input_shape is not None else None
        spike_fn = None
        if surrogate is not None:
            from ..surrogate import build_surrogate

            spike_fn = build_surrogate({"name": surrogate} if isinstance(surrogate, str) else surrogate, "surrogate")
        return build(node["network"], node["neuron"], shape, spike_fn, output_size=num_classes).to(torch_device(device))
