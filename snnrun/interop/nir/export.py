"""NIR export: a built snnrun network as a ``nir.NIRGraph`` (:func:`to_nir`), written to a file (:func:`write`)."""

from __future__ import annotations

import math
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...errors import SnnrunError
from .common import full, require_nir

#: snnrun neuron models with a NIR counterpart -> the NIR node type
NEURON_MAP = {"lif": "LIF", "plif": "LIF", "if": "IF", "ifsoftreset": "IF", "clif": "CubaLIF", "leaky": "LI"}


def to_nir(network, nir_dt: float | None = None):
    """The NIR graph (``nir.NIRGraph``) of ``network`` as it evaluates (``network.eval()``):
    one node per population (``Input`` for inputs), one chain of nodes per projection, one
    ``Output`` per output population. ``nir_dt``: one step in the graph's time unit (default
    ``dt/1000``: seconds). Raises :class:`SnnrunError` for what NIR cannot express."""
    nir = require_nir()
    dt = float(network.dt)
    nir_dt = dt * 1e-3 if nir_dt is None else float(nir_dt)
    if not nir_dt > 0:
        raise SnnrunError(f"nir_dt: must be > 0, got {nir_dt}")
    scale = nir_dt / dt
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    for name, pop in network.populations.items():
        nodes[name] = _population_node(nir, name, pop, dt, scale)
    for name, proj in network.projections.items():
        chain = _projection_nodes(nir, network, proj, dt, nir_dt)
        names = [name] if len(chain) == 1 else [f"{name}__{i}" for i in range(len(chain))]
        previous = proj.source
        for node_name, node in zip(names, chain):
            if node_name in nodes:
                raise SnnrunError(f"projection '{name}': its NIR node name '{node_name}' is also a population's; "
                                  f"rename one of them")
            node.metadata = {"snnrun_projection": name, **(node.metadata or {})}
            nodes[node_name] = node
            edges.append((previous, node_name))
            previous = node_name
        edges.append((previous, proj.target))
    for out in network.outputs:
        node_name = "output" if len(network.outputs) == 1 and "output" not in nodes else f"output_{out}"
        nodes[node_name] = nir.Output(output_type={"output": np.array(network.populations[out].shape)})
        edges.append((out, node_name))
    from ... import __version__
    metadata = {"source": "snnrun", "snnrun_version": str(__version__), "snnrun_dt_ms": dt, "nir_dt": nir_dt}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=False)


def _population_node(nir, name: str, pop, dt: float, scale: float):
    if pop.is_input:
        return nir.Input(input_type={"input": np.array(pop.shape)})
    neuron, where = pop.neuron, f"population '{name}'"
    model = getattr(neuron, "registry_name", type(neuron).__name__)
    if model not in NEURON_MAP:
        raise SnnrunError(f"{where}: neuron model '{model}' has no NIR counterpart (NIR has LIF, CubaLIF, IF, LI); "
                          f"exportable models: {', '.join(NEURON_MAP)}")
    p, shape = neuron.params, pop.shape
    if model != "leaky":
        if p.reset != "hard":
            raise SnnrunError(f"{where}: reset '{p.reset}' (v <- v - (v_th - v_reset)) has no NIR counterpart: NIR "
                              f"neurons reset to v_reset; use reset: hard")
        if getattr(p, "escape_noise", False):
            raise SnnrunError(f"{where}: escape noise (a stochastic threshold) has no NIR counterpart: NIR neurons "
                              f"fire deterministically; use escape_noise: false")
        if getattr(neuron, "refrac_steps", 0):
            raise SnnrunError(f"{where}: a refractory period ({p.refractory} ms) has no NIR counterpart; "
                              f"use refractory: 0")
    meta = {"snnrun_neuron": model}
    if model == "lif":
        meta["integration"] = p.integration
        return nir.LIF(tau=full(shape, p.tau_m * scale), r=full(shape, p.r), v_leak=full(shape, p.v_rest),
                       v_threshold=full(shape, p.v_th), v_reset=full(shape, p.v_reset), metadata=meta)
    if model == "plif":
        tau = dt / torch.sigmoid(neuron.w.detach().double())  # ms, one per neuron or one value
        meta["per_neuron"] = "true" if p.per_neuron else "false"
        return nir.LIF(tau=np.broadcast_to(tau.numpy() * scale, shape).copy(), r=full(shape, p.r),
                       v_leak=full(shape, p.v_rest), v_threshold=full(shape, p.v_th),
                       v_reset=full(shape, p.v_reset), metadata=meta)
    if model in ("if", "ifsoftreset"):
        if p.v_rest != 0:
            raise SnnrunError(f"{where}: v_rest = {p.v_rest} mV: NIR's IF (dv/dt = R I) has no resting potential "
                              f"and starts at 0; use v_rest: 0")
        meta.update(snnrun_neuron="if", tau_m=float(p.tau_m))
        return nir.IF(r=full(shape, p.r / (p.tau_m * scale)), v_threshold=full(shape, p.v_th),
                      v_reset=full(shape, p.v_reset), metadata=meta)
    if model == "clif":
        meta["integration"] = p.integration
        return nir.CubaLIF(tau_syn=full(shape, p.tau_syn * scale), tau_mem=full(shape, p.tau_m * scale),
                           r=full(shape, p.r), v_leak=full(shape, p.v_rest), v_threshold=full(shape, p.v_th),
                           v_reset=full(shape, p.v_reset), w_in=full(shape, p.tau_syn / dt), metadata=meta)
    meta["integration"] = p.integration  # leaky
    return nir.LI(tau=full(shape, p.tau_m * scale), r=full(shape, p.r), v_leak=full(shape, p.v_rest),
                  metadata=meta)


def _fold_batchnorm(weight: torch.Tensor, bias: torch.Tensor | None, bn, where: str):
    """``W γ/σ`` and ``(b − μ) γ/σ + β`` (float64) of a weighted stage followed by ``bn`` (eval)."""
    if bn.params.mode != "tdbn":
        raise SnnrunError(f"{where}: batchnorm mode '{bn.params.mode}' has statistics per time step, which a "
                          f"NIR graph cannot hold; use mode: tdbn")
    norm = bn.norms[0]
    gain = norm.weight.detach().double() / torch.sqrt(norm.running_var.double() + norm.eps)
    shift = norm.bias.detach().double() - norm.running_mean.double() * gain
    if gain.shape[0] != weight.shape[0]:
        raise SnnrunError(f"{where}: batchnorm over {gain.shape[0]} channels after a stage of {weight.shape[0]} outputs")
    folded = weight * gain.view(-1, *([1] * (weight.dim() - 1)))
    b = shift if bias is None else bias * gain + shift
    return folded, b


def _projection_nodes(nir, network, proj, dt: float, nir_dt: float) -> list:
    """The NIR nodes of one projection's stages, in order."""
    where = f"projection '{proj.name}' ({proj.source} -> {proj.target})"
    source = network.populations[proj.source]
    binary = not source.is_input and source.neuron.spiking  # does the signal still hold only 0 and 1?
    shape = tuple(source.shape)
    stages = list(proj.stages)
    nodes: list = []
    i = 0
    while i < len(stages):
        stage = stages[i]
        kind = getattr(stage, "registry_name", type(stage).__name__)
        following = stages[i + 1] if i + 1 < len(stages) else None
        bn = following if getattr(following, "registry_name", "") == "batchnorm" else None
        if kind in ("dense", "recurrent", "sparse", "lateral_inhibition"):
            if len(stage.out_shape) != 1:
                raise SnnrunError(f"{where}: a {kind} stage into shape {list(stage.out_shape)}: NIR's Affine/Linear "
                                  f"output is one-dimensional and NIR has no reshape")
            if len(shape) != 1:
                nodes.append(nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1))
            if kind == "dense":
                weight = stage.weight.detach().double()
            elif kind == "recurrent":
                weight = (stage.weight * stage.mask).detach().double()
            elif kind == "sparse":
                weight = stage.dense_weight().detach().double()
            else:
                n = math.prod(shape)
                weight = stage.params.weight * (torch.ones(n, n, dtype=torch.float64) - torch.eye(n, dtype=torch.float64))
            bias = getattr(stage, "bias", None)
            bias = bias.detach().double() if isinstance(bias, torch.Tensor) else None
            if bn is not None:
                weight, bias = _fold_batchnorm(weight, bias, bn, where)
                i += 1
            w = weight.float().numpy()
            node = nir.Linear(weight=w) if bias is None else nir.Affine(weight=w, bias=bias.float().numpy())
            if kind == "recurrent":
                node.metadata = {"snnrun_synapse": "recurrent"}
            nodes.append(node)
            binary = False
        elif kind == "conv2d":
            p = stage.params
            weight = stage.weight.detach().double()
            bias = stage.bias.detach().double() if stage.bias is not None else None
            if bn is not None:
                weight, bias = _fold_batchnorm(weight, bias, bn, where)
                i += 1
            if bias is None:
                bias = torch.zeros(weight.shape[0], dtype=torch.float64)
            nodes.append(nir.Conv2d(input_shape=tuple(shape[1:]), weight=weight.float().numpy(),
                                    stride=(p.stride, p.stride), padding=(p.padding, p.padding), dilation=(1, 1),
                                    groups=p.groups, bias=bias.float().numpy()))
            binary = False
        elif kind == "avgpool":
            k, s, pad = stage.params.kernel_size, stage.stride, stage.params.padding
            nodes.append(nir.AvgPool2d(kernel_size=np.array([k, k]), stride=np.array([s, s]),
                                       padding=np.array([pad, pad])))
            binary = False
        elif kind == "maxpool":
            if not binary:
                raise SnnrunError(f"{where}: maxpool of a signal that is not spikes has no NIR counterpart (maxpool of "
                                  f"spikes is exported as SumPool2d + Threshold(0.5), exact for 0/1 values only)")
            k, s, pad = stage.params.kernel_size, stage.stride, stage.params.padding
            nodes.append(nir.SumPool2d(kernel_size=np.array([k, k]), stride=np.array([s, s]),
                                       padding=np.array([pad, pad]), metadata={"snnrun_synapse": "maxpool"}))
            nodes.append(nir.Threshold(threshold=full(stage.out_shape, 0.5), metadata={"snnrun_synapse": "maxpool"}))
        elif kind == "flatten":
            nodes.append(nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1))
        elif kind == "dropout":
            pass  # the identity at evaluation
        elif kind == "batchnorm":
            raise SnnrunError(f"{where}: a batchnorm stage is exported folded into the conv2d or dense stage right "
                              f"before it, and this one follows {type(stages[i - 1]).__name__ if i else 'nothing'}")
        elif kind == "delay":
            delays = stage.delays.detach().double().cpu() * nir_dt
            nodes.append(nir.Delay(delay=delays.reshape(shape).numpy()))
        elif kind == "one_to_one":
            nodes.append(nir.Scale(scale=np.broadcast_to(stage.weight.detach().double().cpu().numpy(), shape).copy()))
            binary = False
        elif kind == "delayed_dense":
            raise SnnrunError(f"{where}: per-synapse delays (delayed_dense) have no NIR counterpart (NIR's Delay delays "
                              f"each element of its input); use [{{name: delay, per_neuron: true}}, {{name: dense}}]")
        else:
            raise SnnrunError(f"{where}: synapse '{kind}' has no NIR counterpart; exportable: dense, recurrent, sparse, "
                              f"conv2d, batchnorm (tdbn, after conv2d/dense), avgpool, maxpool (of spikes), flatten, "
                              f"dropout, delay, one_to_one, lateral_inhibition")
        shape = tuple(stages[i].out_shape)
        i += 1
    return nodes


def write(graph, path: str | PathLike) -> Path:
    """Write ``graph`` to ``path`` (NIR's HDF5 format)."""
    nir = require_nir()
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        nir.write(str(path), graph)
    except OSError as err:
        raise SnnrunError(f"cannot write {path}: {err.strerror or err}") from None
    return path
