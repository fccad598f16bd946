"""Plain-torch exports: a ``torch.export`` program, and safetensors weights with a JSON graph.

``--format torch`` writes ``network.pt2``, a ``torch.export`` program of the network as it
evaluates, loadable with torch alone::

    program = torch.export.load("network.pt2").module()
    spikes = program(x)  # x: [T, B, *input shape] float32, the encoded input; spikes: [T, B, *output shape]

``T`` is the run's step count (fixed in the program); the batch ``B`` is free. Beside it,
``network.pt2.json`` says the input and output, ``dt``, ``T`` and holds the run's config (the encoder
and decoder that surround the network are not in the program). The compiled kernels are switched
off while tracing, so the program holds only ATen operations (the reference paths give the same
results; ``hh``'s the same to rounding).

``--format safetensors`` writes ``network.safetensors`` (every tensor of the network's
``state_dict``, the graph JSON also in its metadata under ``snnrun_graph``) and
``network.safetensors.json``:
populations (shape, neuron model and parameters), projections (source, target, whether the edge
carries the previous step, and each stage's synapse, parameters and tensor names), ``dt``, ``T``,
inputs, outputs and the run's config.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import SnnrunError

GRAPH_FORMAT = "snnrun-graph"
GRAPH_VERSION = 1


def _params(obj) -> dict:
    params = getattr(obj, "params", None)
    if params is None or not dataclasses.is_dataclass(params):
        return {}
    return json.loads(json.dumps(dataclasses.asdict(params), default=str))


def describe(network, config: dict | None = None) -> dict:
    """The network as JSON-ready data; tensor names are the ``state_dict`` keys."""
    keys = set(network.state_dict())
    populations = {}
    for name, pop in network.populations.items():
        neuron = None
        if pop.neuron is not None:
            neuron = {"name": getattr(pop.neuron, "registry_name", type(pop.neuron).__name__), **_params(pop.neuron),
                      "tensors": {k.split(".")[-1]: k for k in keys if k.startswith(f"populations.{name}.neuron.")}}
        populations[name] = {"shape": list(pop.shape), "input": pop.is_input, "neuron": neuron}
    projections = {}
    for name, proj in network.projections.items():
        stages = []
        for i, stage in enumerate(proj.stages):
            prefix = f"projections.{name}.stages.{i}."
            stages.append({"name": getattr(stage, "registry_name", type(stage).__name__), "params": _params(stage),
                           "out_shape": list(stage.out_shape),
                           "tensors": {k[len(prefix):]: k for k in sorted(keys) if k.startswith(prefix)}})
        projections[name] = {"from": proj.source, "to": proj.target, "recurrent": bool(proj.recurrent),
                             "stages": stages}
    return {"format": GRAPH_FORMAT, "version": GRAPH_VERSION, "dt_ms": network.dt, "time_steps": network.time_steps,
            "inputs": list(network.inputs), "outputs": list(network.outputs), "populations": populations,
            "projections": projections, "config": config or {}}


@contextlib.contextmanager
def reference_paths():
    """The compiled kernels off (the torch reference paths, same results) while inside."""
    from ..kernels import hh, lif_scan, spike_linear

    before = lif_scan.enabled(), spike_linear._ENABLED, hh.enabled()
    lif_scan.set_enabled(False)
    spike_linear.set_enabled(False)
    hh.set_enabled(False)
    try:
        yield
    finally:
        lif_scan.set_enabled(before[0])
        spike_linear.set_enabled(before[1])
        hh.set_enabled(before[2])


class NetworkProgram(nn.Module):
    """``x`` [T, B, *input shape] -> the output population's activity [T, B, *shape], from rest."""

    def __init__(self, network):
        super().__init__()
        if len(network.inputs) != 1:
            raise SnnrunError(f"export --format torch: the network has {len(network.inputs)} input populations "
                              f"({', '.join(network.inputs)}); the program takes one")
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.network.reset()
        out = self.network(x).spikes[self.network.output]
        self.network.reset()
        return out


def trace(network, batch: int = 2):
    """``torch.export`` program of ``network`` (evaluation mode, reference paths, batch dynamic)."""
    network.eval()
    shape = network.populations[network.inputs[0]].shape if len(network.inputs) == 1 else ()
    program = NetworkProgram(network)
    example = torch.zeros(network.time_steps, batch, *shape)
    dims = {"x": {1: torch.export.Dim("batch", min=1, max=2 ** 20)}}
    with reference_paths(), torch.no_grad():
        try:
            return torch.export.export(program, (example,), dynamic_shapes=dims, strict=False)
        except Exception as err:  # noqa: BLE001 - torch.export's many failure kinds, one line for the user
            text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise SnnrunError(f"export --format torch: torch.export could not trace the network ({text})") from None


def save_program(network, output: str | PathLike, config: dict | None = None) -> list[Path]:
    """Write the program (``output``, ``.pt2``) and its JSON (``output`` + ``.json``)."""
    output = Path(output)
    program = trace(network)
    output.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, str(output))
    out_pop = network.output
    out_shape = list(network.populations[network.outputs[0]].shape) if len(network.outputs) == 1 else \
        [sum(int(torch.Size(network.populations[n].shape).numel()) for n in network.outputs)]
    meta = {"format": "torch.export", "file": output.name,
            "load": f"torch.export.load('{output.name}').module()",
            "input": {"population": network.inputs[0], "shape": ["T", "B", *network.populations[network.inputs[0]].shape],
                      "dtype": "float32", "meaning": "the encoded input per step (the encoder is not in the program)"},
            "output": {"population": out_pop, "shape": ["T", "B", *out_shape],
                       "meaning": "spikes (membrane potential for a non-spiking readout) per step, from rest"},
            "T": network.time_steps, "dt_ms": network.dt, "config": config or {}}
    sidecar = output.with_name(output.name + ".json")
    sidecar.write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return [output, sidecar]


def save_safetensors(network, output: str | PathLike, config: dict | None = None) -> list[Path]:
    """Write the weights (``output``, ``.safetensors``) and the graph JSON (``output`` + ``.json``)."""
    try:
        from safetensors.torch import save_file
    except ImportError:
        raise SnnrunError("export --format safetensors needs the `safetensors` package: pip install 'snnrun[nir]'") \
            from None
    output = Path(output)
    graph = describe(network, config)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in network.state_dict().items()}
    output.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(graph, indent=2, default=str)
    save_file(tensors, str(output), metadata={"snnrun_graph": json.dumps(graph, default=str)})
    sidecar = output.with_name(output.name + ".json")
    sidecar.write_text(text + "\n")
    return [output, sidecar]


def load_safetensors(path: str | PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and the graph JSON of a ``--format safetensors`` export (no code runs)."""
    from safetensors import safe_open

    tensors = {}
    with safe_open(str(path), framework="pt") as f:
        graph = json.loads((f.metadata() or {}).get("snnrun_graph", "{}"))
        for key in f.keys():
            tensors[key] = f.get_tensor(key)
    return tensors, graph
