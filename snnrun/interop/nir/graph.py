"""A NIR graph read for import (:func:`read`), its nested graphs inlined, its node names made
snnrun names, and the converted result (:class:`Converted`) with the tensors to load."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...errors import ConfigError, ShapeError
from .common import require_nir


def read(source: Any, key: str = "network.from_nir"):
    """A ``nir.NIRGraph`` from a path (NIR's HDF5 file: data only, no code runs) or the graph itself."""
    nir = require_nir()
    if isinstance(source, nir.NIRGraph):
        return source
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"{key}: no NIR file {path}")
    try:
        graph = nir.read(str(path))
    except Exception as err:  # noqa: BLE001 - h5py/nir raise many kinds for a foreign or damaged file
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{key}: {path} is not a readable NIR graph ({text})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise ConfigError(f"{key}: {path} holds a single {type(graph).__name__} node, not a NIR graph")
    return graph


@dataclass
class Converted:
    """A NIR graph as snnrun config nodes plus the tensors to load after the build."""

    populations: dict[str, dict] = field(default_factory=dict)
    projections: dict[str, dict] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    #: (projection, stage index) -> {attribute: array}
    stage_tensors: dict[tuple[str, int], dict[str, np.ndarray]] = field(default_factory=dict)
    #: population -> {neuron attribute: array}
    neuron_tensors: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def load_into(self, network) -> None:
        """Copy the graph's weights, delays and learned time constants into the built ``network``."""
        with torch.no_grad():
            for (proj, index), tensors in self.stage_tensors.items():
                stage = network.projections[proj].stages[index]
                for attr, value in tensors.items():
                    _copy(getattr(stage, attr), value, f"projection '{proj}' stage {index} {attr}")
            for pop, tensors in self.neuron_tensors.items():
                neuron = network.populations[pop].neuron
                for attr, value in tensors.items():
                    _copy(getattr(neuron, attr), value, f"population '{pop}' {attr}")


def _copy(target: torch.Tensor, value: np.ndarray, what: str) -> None:
    value = torch.as_tensor(np.asarray(value))
    if tuple(target.shape) != tuple(value.shape):
        if value.numel() != target.numel():
            raise ShapeError(f"NIR graph: {what} has shape {list(value.shape)}, the network needs {list(target.shape)}")
        value = value.reshape(target.shape)
    target.copy_(value.to(target.dtype))


def sanitize(names: list[str]) -> dict[str, str]:
    """NIR node names -> snnrun names (letters, digits and ``_``; unique)."""
    out, taken = {}, set()
    for name in names:
        base = re.sub(r"\W", "_", str(name)) or "node"
        candidate, k = base, 1
        while candidate in taken:
            candidate, k = f"{base}_{k}", k + 1
        taken.add(candidate)
        out[name] = candidate
    return out


def inline(nir, graph, prefix: str = "") -> tuple[dict, list]:
    """Nodes and edges with nested graphs (snnTorch's recurrent layers) inlined: their Input and
    Output nodes removed, edges to and from them joined through."""
    nodes, edges, ports = {}, [], {}
    for name, node in graph.nodes.items():
        full = prefix + str(name)
        if isinstance(node, nir.NIRGraph):
            inner_nodes, inner_edges = inline(nir, node, full + ".")
            ins = {full + "." + n for n, x in node.nodes.items() if isinstance(x, nir.Input)}
            outs = {full + "." + n for n, x in node.nodes.items() if isinstance(x, nir.Output)}
            entries = [b for a, b in inner_edges if a in ins and b not in outs]
            exits = [a for a, b in inner_edges if b in outs and a not in ins]
            edges += [(a, b) for a, b in inner_edges if a not in ins and b not in outs]
            nodes.update({n: x for n, x in inner_nodes.items() if n not in ins | outs})
            ports[full] = (entries, exits)
        else:
            nodes[full] = node
    for a, b in graph.edges:
        a, b = prefix + str(a), prefix + str(b)
        for src in ports[a][1] if a in ports else [a]:
            for dst in ports[b][0] if b in ports else [b]:
                edges.append((src, dst))
    return nodes, edges
