"""One module for an experiment's encoder, network and decoder: what :func:`snnrun.load_run` and
:func:`snnrun.build_model` return."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import torch
from torch import nn

if TYPE_CHECKING:
    from .decoders.base import Decoder
    from .encoders.base import Encoder
    from .network import Network, NetworkOutput


class SpikingModel(nn.Module):
    """Encoder, network and decoder of an experiment as one module.

    ``model(x)`` takes a batch of samples ``[B, *input_shape]`` as snnrun's data pipeline yields
    them (``LoadedRun.data().x_test``: after the dataset's own scaling and ``data.normalize``),
    encodes them over ``network.duration / network.dt`` steps, simulates the network from rest
    and returns the decoder's class scores ``[B, classes]`` (higher = more likely), exactly as a
    run evaluates a batch. Stochastic encoders (``poisson``) draw from torch's global RNG: seed it
    (``torch.manual_seed``) for repeatable outputs. Parts: ``.encoder``, ``.network``
    (:class:`snnrun.network.Network`: encoded input ``[T, B, *shape]`` -> spikes of every
    population), ``.decoder``.
    """

    def __init__(self, encoder: Encoder, network: Network, decoder: Decoder,
                 input_shape: Sequence[int] | None = None, num_classes: int | None = None):
        super().__init__()
        self.encoder = encoder
        self.network = network
        self.decoder = decoder
        #: the shape of one sample (without the batch dimension)
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        #: the number of classes the decoder scores
        self.num_classes = num_classes

    @property
    def time_steps(self) -> int:
        """Simulated steps per sample (``network.duration / network.dt``)."""
        return self.network.time_steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores ``[B, classes]`` of the samples ``x`` ``[B, *input_shape]``."""
        return self.simulate(x)[0]

    def simulate(self, x: torch.Tensor, record: Mapping[str, Sequence[str]] | None = None
                 ) -> tuple[torch.Tensor, NetworkOutput]:
        """The scores and the network's activity: ``(scores, out)`` with ``out.spikes[population]``
        ``[T, B, *shape]`` and, for ``record={population: ("v", ...)}``, ``out.traces[population][var]``."""
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(x, dtype=torch.float32)
        network = self.network
        network.reset()
        wanted = {name: tuple(vars_) for name, vars_ in (record or {}).items()}
        if self.decoder.needs_voltage:
            wanted[network.output] = tuple(dict.fromkeys((*wanted.get(network.output, ()), "v")))
        out = network(self.encoder(x), record=wanted or None)
        v = out.traces.get(network.output, {}).get("v")
        return self.decoder(out.spikes[network.output], v), out

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted classes ``[B]`` (the decoder's rule, usually the highest score)."""
        return self.decoder.predict(self.forward(x)).reshape(-1)
