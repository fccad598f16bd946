r"""NIR export (:func:`to_nir`) and import (:func:`convert`, :func:`build_from_nir`).

NIR describes neurons in continuous time; snnrun simulates them at a step ``dt`` (ms). A graph's
time unit is fixed by ``nir_dt``, one step's duration in that unit: by default ``dt / 1000``, so
the graph's times are in seconds (norse's convention: import with ``norse.from_nir(graph,
dt=nir_dt)``). snnTorch's importer assumes one step is ``1e-4``: export with ``nir_dt=1e-4`` for it.
Writing ``s = nir_dt / dt`` (graph units per ms):

==========================  ==============================================================
snnrun                      NIR node and parameters
==========================  ==============================================================
``lif`` (hard reset)        ``LIF``: tau = tau_m s, r = r, v_leak = v_rest, v_threshold = v_th,
                            v_reset = v_reset
``plif``                    ``LIF`` with tau = dt / sigmoid(w) s per neuron (or one value)
``if`` (hard reset)         ``IF``: r = r / (tau_m s) (NIR's IF is ``dv/dt = R I``), v_threshold,
                            v_reset; needs v_rest = 0 (NIR's IF has no resting potential)
``clif``                    ``CubaLIF``: tau_syn = tau_syn s, tau_mem = tau_m s, r, v_leak = v_rest,
                            v_threshold, v_reset, w_in = tau_syn / dt
``leaky`` (non-spiking)     ``LI``: tau = tau_m s, r, v_leak = v_rest
``dense`` / ``recurrent``   ``Affine`` (with bias) or ``Linear``; a ``Flatten`` first when the source
/ ``sparse``                is multi-dimensional; ``recurrent``: its masked weights
``conv2d``                  ``Conv2d`` (bias zeros when it has none)
``batchnorm`` (tdbn, eval)  folded into the conv2d/dense stage before it: W' = W γ/σ,
                            b' = (b − μ) γ/σ + β, σ = sqrt(running var + eps)
``avgpool``                 ``AvgPool2d``
``maxpool`` of spikes       ``SumPool2d`` then ``Threshold(0.5)`` (exact for 0/1 inputs only)
``flatten``                 ``Flatten``
``delay``                   ``Delay``: delay = steps · nir_dt per presynaptic neuron
``one_to_one``              ``Scale``
``lateral_inhibition``      ``Linear`` with w off the diagonal
``dropout``                 nothing (the identity at evaluation)
==========================  ==============================================================

Why these are the exact counterparts: an input value ``x`` of one step is a current held over the
step, so forward Euler of NIR's ``tau dv/dt = (v_leak − v) + R I`` is snnrun's LIF update
``v += dt/tau_m (−(v − v_rest) + r x)``; snnTorch's and norse's importers integrate the same way.
CubaLIF's ``tau_syn dI/dt = −I + w_in S`` with ``w_in = tau_syn/dt`` gives the jump ``w_in dt/tau_syn
x = x`` per step that snnrun's clif adds (snnrun then decays ``I`` by ``exp(−dt/tau_syn)``, the
peers by ``1 − dt/tau_syn``). Node metadata keep what NIR does not say (the snnrun model, its
integration scheme, the projection's name), so snnrun → NIR → snnrun rebuilds the same network; a
graph without them imports with forward Euler. snnrun fires at ``v >= v_th``, NIR at ``v > v_th``.

Refused with a message naming the population or projection: other neuron models (alif, adex,
izh, hh, glif, qif, diehlandcook), soft resets, refractory periods, maxpool of non-spike values,
batchnorm per time step or not after a weighted stage, dense stages into multi-dimensional
populations, per-synapse delays (``delayed_dense``) and any other synapse.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..errors import ConfigError, ShapeError, SnnrunError

#: snnrun neuron models with a NIR counterpart -> the NIR node type
NEURON_MAP = {"lif": "LIF", "plif": "LIF", "if": "IF", "ifsoftreset": "IF", "clif": "CubaLIF", "leaky": "LI"}
#: NIR node types that become populations / synapse stages on import
NIR_NEURONS = ("LIF", "CubaLIF", "IF", "LI", "CubaLI", "I")
NIR_STAGES = ("Affine", "Linear", "Conv1d", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten", "Scale", "Delay",
              "Threshold")


def require_nir():
    """The ``nir`` module, or a one-line error saying which extra installs it."""
    try:
        import nir
    except ImportError:
        raise SnnrunError("NIR support needs the `nir` package: pip install 'snnrun[nir]'") from None
    return nir


def clean(x: float) -> float:
    """``x`` rounded to 12 significant digits: unit conversions give back the decimal values of a
    config (``0.005 · 1000`` is ``5.0``), far below any physical precision."""
    return float(f"{float(x):.12g}")


# --- export -----------------------------------------------------------------------------------
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
    from .. import __version__
    metadata = {"source": "snnrun", "snnrun_version": str(__version__), "snnrun_dt_ms": dt, "nir_dt": nir_dt}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=False)


def _full(shape, value) -> np.ndarray:
    return np.full(tuple(shape), float(value), dtype=np.float64)


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
        return nir.LIF(tau=_full(shape, p.tau_m * scale), r=_full(shape, p.r), v_leak=_full(shape, p.v_rest),
                       v_threshold=_full(shape, p.v_th), v_reset=_full(shape, p.v_reset), metadata=meta)
    if model == "plif":
        tau = dt / torch.sigmoid(neuron.w.detach().double())  # ms, one per neuron or one value
        meta["per_neuron"] = "true" if p.per_neuron else "false"
        return nir.LIF(tau=np.broadcast_to(tau.numpy() * scale, shape).copy(), r=_full(shape, p.r),
                       v_leak=_full(shape, p.v_rest), v_threshold=_full(shape, p.v_th),
                       v_reset=_full(shape, p.v_reset), metadata=meta)
    if model in ("if", "ifsoftreset"):
        if p.v_rest != 0:
            raise SnnrunError(f"{where}: v_rest = {p.v_rest} mV: NIR's IF (dv/dt = R I) has no resting potential "
                              f"and starts at 0; use v_rest: 0")
        meta.update(snnrun_neuron="if", tau_m=float(p.tau_m))
        return nir.IF(r=_full(shape, p.r / (p.tau_m * scale)), v_threshold=_full(shape, p.v_th),
                      v_reset=_full(shape, p.v_reset), metadata=meta)
    if model == "clif":
        meta["integration"] = p.integration
        return nir.CubaLIF(tau_syn=_full(shape, p.tau_syn * scale), tau_mem=_full(shape, p.tau_m * scale),
                           r=_full(shape, p.r), v_leak=_full(shape, p.v_rest), v_threshold=_full(shape, p.v_th),
                           v_reset=_full(shape, p.v_reset), w_in=_full(shape, p.tau_syn / dt), metadata=meta)
    meta["integration"] = p.integration  # leaky
    return nir.LI(tau=_full(shape, p.tau_m * scale), r=_full(shape, p.r), v_leak=_full(shape, p.v_rest),
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
            nodes.append(nir.Threshold(threshold=_full(stage.out_shape, 0.5), metadata={"snnrun_synapse": "maxpool"}))
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


# --- import -----------------------------------------------------------------------------------
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


def _sanitize(names: list[str]) -> dict[str, str]:
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


def _inline(nir, graph, prefix: str = "") -> tuple[dict, list]:
    """Nodes and edges with nested graphs (snnTorch's recurrent layers) inlined: their Input and
    Output nodes removed, edges to and from them joined through."""
    nodes, edges, ports = {}, [], {}
    for name, node in graph.nodes.items():
        full = prefix + str(name)
        if isinstance(node, nir.NIRGraph):
            inner_nodes, inner_edges = _inline(nir, node, full + ".")
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


def _array(value) -> np.ndarray:
    return np.asarray(value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value)


def _uniform(node, attr: str, where: str, model: str) -> float:
    values = _array(getattr(node, attr)).astype(np.float64)
    if values.size == 0:
        raise ConfigError(f"{where}: {attr} is empty")
    if not np.all(values == values.flat[0]):
        raise ConfigError(f"{where}: {attr} differs between neurons; snnrun's {model} takes one value per "
                          f"population")
    return clean(values.flat[0])


def _meta(node) -> dict:
    meta = getattr(node, "metadata", None) or {}
    return {str(k): (v.decode() if isinstance(v, bytes) else v) for k, v in dict(meta).items()}


def _neuron_spec(name: str, node, shape: tuple[int, ...], dt: float, nir_dt: float,
                 where: str) -> tuple[dict, dict[str, np.ndarray]]:
    """The snnrun neuron spec of a NIR neuron node, and tensors to load into it."""
    kind, meta = type(node).__name__, _meta(node)
    ms = dt / nir_dt  # ms per graph time unit
    integration = str(meta.get("integration", "euler"))
    if integration not in ("euler", "exact"):
        integration = "euler"
    if kind == "LIF":
        common = {"r": _uniform(node, "r", where, "lif"), "v_rest": _uniform(node, "v_leak", where, "lif"),
                  "v_th": _uniform(node, "v_threshold", where, "lif"),
                  "v_reset": _uniform(node, "v_reset", where, "lif"), "reset": "hard", "refractory": 0.0}
        tau = _array(node.tau).astype(np.float64) * ms
        if meta.get("snnrun_neuron") != "plif" and np.all(tau == tau.flat[0]):
            return {"name": "lif", "tau_m": clean(tau.flat[0]), "integration": integration, **common}, {}
        if not np.all(tau > dt):  # plif's forward Euler with dt/tau = sigmoid(w) needs tau > dt
            raise ConfigError(f"{where}: tau differs between neurons and some are <= dt = {dt} ms; snnrun imports "
                              f"per-neuron time constants as plif, which needs tau > dt (a smaller dt)")
        per_neuron = meta.get("per_neuron", "true") == "true" or not np.all(tau == tau.flat[0])
        w = -np.log(tau / dt - 1.0)
        w = np.broadcast_to(w, shape).astype(np.float32) if per_neuron else np.asarray(w.flat[0], dtype=np.float32)
        return ({"name": "plif", "tau_m": clean(float(np.mean(tau))), "per_neuron": bool(per_neuron), **common},
                {"w": w})
    if kind == "IF":
        r = _uniform(node, "r", where, "if")
        tau_m = clean(float(meta["tau_m"])) if "tau_m" in meta else dt
        return ({"name": "if", "tau_m": tau_m, "r": clean(r * nir_dt * tau_m / dt), "v_rest": 0.0,
                 "v_th": _uniform(node, "v_threshold", where, "if"), "v_reset": _uniform(node, "v_reset", where, "if"),
                 "reset": "hard", "refractory": 0.0}, {})
    if kind == "CubaLIF":
        tau_syn = _uniform(node, "tau_syn", where, "clif")
        w_in = _uniform(node, "w_in", where, "clif")
        gain = w_in * nir_dt / tau_syn  # the jump of NIR's I per unit input; snnrun's clif jumps by 1
        return ({"name": "clif", "tau_m": clean(_uniform(node, "tau_mem", where, "clif") * ms),
                 "tau_syn": clean(tau_syn * ms), "r": clean(_uniform(node, "r", where, "clif") * gain),
                 "v_rest": _uniform(node, "v_leak", where, "clif"), "v_th": _uniform(node, "v_threshold", where, "clif"),
                 "v_reset": _uniform(node, "v_reset", where, "clif"), "reset": "hard", "refractory": 0.0,
                 "integration": integration}, {})
    if kind == "LI":
        return ({"name": "leaky", "tau_m": clean(_uniform(node, "tau", where, "leaky") * ms),
                 "r": _uniform(node, "r", where, "leaky"), "v_rest": _uniform(node, "v_leak", where, "leaky"),
                 "integration": integration}, {})
    raise ConfigError(f"{where}: NIR {kind} has no snnrun model (importable neurons: LIF, CubaLIF, IF, LI)")


def _node_shape(node) -> tuple[int, ...] | None:
    """A neuron node's shape from its parameters, when they hold one value per neuron."""
    for attr in ("v_threshold", "tau", "tau_mem", "r"):
        if hasattr(node, attr):
            shape = _array(getattr(node, attr)).shape
            return tuple(int(s) for s in shape) if int(np.prod(shape)) > 1 else None
    return None


def _pair(value, what: str, where: str) -> int:
    values = np.atleast_1d(_array(value)).astype(np.int64).ravel()
    if not np.all(values == values[0]):
        raise ConfigError(f"{where}: {what} {values.tolist()} differs between height and width; snnrun takes one "
                          f"value for both")
    return int(values[0])


def _pool_out(shape, k, s, p, where):
    if len(shape) != 3:
        raise ShapeError(f"{where}: pooling needs a [channels, height, width] input, got {list(shape)}")
    c, h, w = shape
    return (c, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)


def _stages(path: list[str], nodes: dict, shape: tuple[int, ...], binary: bool, last_is_self: bool,
            dt: float, nir_dt: float, where: str):
    """Synapse specs of a chain of NIR stage nodes from a source of ``shape``; returns
    (specs, {stage index: tensors}, output shape)."""
    specs: list[dict] = []
    tensors: dict[int, dict[str, np.ndarray]] = {}
    i = 0
    while i < len(path):
        name, node = path[i], nodes[path[i]]
        kind, meta = type(node).__name__, _meta(node)
        at = f"{where}: NIR node '{name}' ({kind})"
        last = i == len(path) - 1
        if kind in ("Affine", "Linear"):
            weight = _array(node.weight).astype(np.float32)
            if weight.ndim != 2:
                raise ShapeError(f"{at}: weight of shape {list(weight.shape)}; snnrun's dense takes [out, in]")
            if weight.shape[1] != math.prod(shape):
                raise ShapeError(f"{at}: weight takes {weight.shape[1]} inputs but receives {list(shape)}")
            if not last and weight.shape[0] != math.prod(shape):
                raise ConfigError(f"{at}: a shape-changing Affine/Linear must be the last node before a neuron node "
                                  f"in snnrun")
            bias = _array(node.bias).astype(np.float32) if kind == "Affine" and node.bias is not None else None
            has_bias = bias is not None and bool(np.any(bias != 0))
            spec = {"name": "dense", "bias": has_bias}
            if meta.get("snnrun_synapse") == "recurrent" and last and last_is_self:
                spec = {"name": "recurrent", "bias": has_bias,
                        "self_connections": bool(np.any(np.diag(weight) != 0))}
            specs.append(spec)
            tensors[len(specs) - 1] = {"weight": weight, **({"bias": bias} if has_bias else {})}
            shape, binary = (weight.shape[0],), False
        elif kind == "Conv2d":
            weight = _array(node.weight).astype(np.float32)
            if weight.ndim != 4 or weight.shape[2] != weight.shape[3]:
                raise ConfigError(f"{at}: kernel of shape {list(weight.shape[2:])}; snnrun's conv2d takes square kernels")
            if _pair(node.dilation, "dilation", at) != 1:
                raise ConfigError(f"{at}: dilation {_array(node.dilation).tolist()}; snnrun's conv2d has none")
            k, stride = weight.shape[2], _pair(node.stride, "stride", at)
            padding = node.padding
            if isinstance(padding, str):
                if padding == "same" and (k % 2 == 0 or stride != 1):
                    raise ConfigError(f"{at}: padding 'same' with an even kernel or a stride")
                padding = (k - 1) // 2 if padding == "same" else 0
            padding = _pair(padding, "padding", at)
            groups = int(_array(node.groups))
            if len(shape) != 3 or shape[0] != weight.shape[1] * groups:
                raise ShapeError(f"{at}: takes {weight.shape[1] * groups} channels but receives {list(shape)}")
            bias = _array(node.bias).astype(np.float32) if node.bias is not None else None
            has_bias = bias is not None and bool(np.any(bias != 0))
            specs.append({"name": "conv2d", "channels": int(weight.shape[0]), "kernel_size": int(k), "stride": stride,
                          "padding": padding, "groups": groups, "bias": has_bias})
            tensors[len(specs) - 1] = {"weight": weight, **({"bias": bias} if has_bias else {})}
            _, h, w = shape
            shape = (int(weight.shape[0]), (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1)
            binary = False
        elif kind in ("AvgPool2d", "SumPool2d"):
            k = _pair(node.kernel_size, "kernel_size", at)
            s = _pair(node.stride, "stride", at)
            p = _pair(node.padding, "padding", at)
            following = nodes[path[i + 1]] if i + 1 < len(path) else None
            pool = {"kernel_size": k, "stride": s, "padding": p}
            if kind == "SumPool2d" and type(following).__name__ == "Threshold":
                theta = _array(following.threshold).astype(np.float64)
                if not (np.all(theta == theta.flat[0]) and 0 <= theta.flat[0] < 1):
                    raise ConfigError(f"{where}: SumPool2d + Threshold({theta.flat[0]}) is maxpool only for a "
                                      f"threshold in [0, 1)")
                if not binary:
                    raise ConfigError(f"{at}: SumPool2d + Threshold is maxpool only for spikes (0/1), and its input "
                                      f"is not spikes")
                specs.append({"name": "maxpool", **pool})
                i += 1
            else:
                specs.append({"name": "avgpool", **pool})
                if kind == "SumPool2d":  # the sum is the average times the window
                    specs.append({"name": "one_to_one", "weight": float(k * k)})
                binary = False
            shape = _pool_out(shape, k, s, p, at)
        elif kind == "Flatten":
            specs.append({"name": "flatten"})
            shape = (math.prod(shape),)
        elif kind == "Scale":
            scale = _array(node.scale).astype(np.float32)
            if scale.size == 1 or np.all(scale == scale.flat[0]):
                specs.append({"name": "one_to_one", "weight": float(scale.flat[0])})
            else:
                if scale.size != math.prod(shape):
                    raise ShapeError(f"{at}: {scale.size} factors for an input of shape {list(shape)}")
                specs.append({"name": "one_to_one", "learnable": True})
                tensors[len(specs) - 1] = {"weight": scale.reshape(shape)}
            binary = False
        elif kind == "Delay":
            steps = _array(node.delay).astype(np.float64) / nir_dt
            whole = np.round(steps)
            if np.any(np.abs(steps - whole) > 1e-6 * np.maximum(1.0, np.abs(steps))) or np.any(whole < 0):
                raise ConfigError(f"{at}: delays of {steps.ravel()[:4].tolist()}... steps are not whole numbers of "
                                  f"dt = {dt} ms (nir_dt = {nir_dt}); choose a dt that divides them")
            whole = whole.astype(np.int64)
            longest = int(whole.max()) if whole.size else 0
            if whole.size <= 1 or np.all(whole == whole.flat[0]):
                specs.append({"name": "delay", "delay": clean(longest * dt)})
            else:
                if whole.size != math.prod(shape):
                    raise ShapeError(f"{at}: {whole.size} delays for an input of shape {list(shape)}")
                specs.append({"name": "delay", "delay": clean(longest * dt), "per_neuron": True})
                tensors[len(specs) - 1] = {"delays": whole.reshape(-1)}
        elif kind == "Threshold":
            raise ConfigError(f"{at}: a Threshold node has an snnrun counterpart only right after a SumPool2d of "
                              f"spikes (maxpool)")
        else:
            raise ConfigError(f"{at}: no snnrun synapse for it; importable: Affine, Linear, Conv2d, AvgPool2d, "
                              f"SumPool2d, Flatten, Scale, Delay")
        i += 1
    return specs, tensors, tuple(int(s) for s in shape)


def convert(graph, dt: float, nir_dt: float | None = None, key: str = "network") -> Converted:
    """A NIR graph as snnrun populations/projections (config nodes) and the tensors to load."""
    nir = require_nir()
    nir_dt = dt * 1e-3 if nir_dt is None else float(nir_dt)
    nodes, edges = _inline(nir, graph)
    for a, b in edges:
        for end in (a, b):
            if end not in nodes:
                raise ConfigError(f"{key}.from_nir: edge ({a}, {b}) names no node")
    edges = list(dict.fromkeys(edges))  # a repeated edge is one connection
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    pred: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        succ[a].append(b)
        pred[b].append(a)
    kinds = {n: type(x).__name__ for n, x in nodes.items()}
    for n, kind in kinds.items():
        if kind not in NIR_NEURONS + NIR_STAGES + ("Input", "Output"):
            raise ConfigError(f"{key}.from_nir: NIR node '{n}' ({kind}) has no snnrun counterpart")
    is_pop = {n: kinds[n] == "Input" or kinds[n] in NIR_NEURONS for n in nodes}
    # populations: inputs, then neuron nodes in breadth-first order from them (edges in file order)
    order = [n for a, b in edges for n in (a, b) if kinds[n] == "Input"]
    order = list(dict.fromkeys(order + [n for n in nodes if kinds[n] == "Input"]))
    queue, seen = list(order), set(order)
    while queue:
        for m in succ[queue.pop(0)]:
            if m not in seen:
                seen.add(m)
                queue.append(m)
                if is_pop[m]:
                    order.append(m)
    order += [n for n in nodes if is_pop[n] and n not in order]
    names = _sanitize(order)

    # projections: every path population -> stage nodes -> population
    paths: list[tuple[str, list[str], str]] = []

    def follow(source: str, n: str, path: list[str]) -> None:
        if is_pop[n]:
            paths.append((source, path, n))
            return
        if kinds[n] == "Output":
            if path:
                raise ConfigError(f"{key}.from_nir: output '{n}' is reached from '{source}' through {', '.join(path)}; "
                                  f"snnrun reads outputs from neuron populations")
            return
        if n in path:
            raise ConfigError(f"{key}.from_nir: a cycle through {', '.join(path)} has no neuron node")
        if len(pred[n]) > 1:
            raise ConfigError(f"{key}.from_nir: NIR node '{n}' sums {len(pred[n])} inputs ({', '.join(pred[n])}); "
                              f"snnrun sums inputs only at neuron nodes")
        for m in succ[n]:
            follow(source, m, path + [n])

    for a, b in edges:
        if is_pop[a]:
            follow(a, b, [])
    rank = {n: i for i, n in enumerate(order)}
    paths.sort(key=lambda item: rank[item[0]])  # by source population; file order among one source's
    outputs = []
    for n in nodes:
        if kinds[n] == "Output":
            for m in pred[n]:
                if is_pop[m] and names[m] not in outputs:
                    outputs.append(names[m])
    if not outputs:
        raise ConfigError(f"{key}.from_nir: the graph has no Output node fed by a neuron node")

    # shapes: inputs from their type, neuron nodes from their parameters or their incoming paths
    shapes: dict[str, tuple[int, ...]] = {}
    for n in order:
        if kinds[n] == "Input":
            shape = tuple(int(s) for s in np.atleast_1d(_array(nodes[n].input_type["input"])))
            if len(shape) == 4 and shape[0] == 1:  # a leading batch dimension of one
                shape = shape[1:]
            shapes[n] = shape
        else:
            shape = _node_shape(nodes[n])
            if shape is not None:
                shapes[n] = shape
    converted: dict[int, tuple] = {}
    for _ in range(len(paths) + 1):
        for i, (src, path, dst) in enumerate(paths):
            if i in converted or src not in shapes:
                continue
            binary = kinds[src] in NIR_NEURONS and kinds[src] not in ("LI", "CubaLI", "I")
            where = f"{key}.from_nir: path {src} -> {dst}"
            result = _stages(path, nodes, shapes[src], binary, src == dst, dt, nir_dt, where)
            converted[i] = result
            out_shape = result[2]
            if dst not in shapes:
                shapes[dst] = out_shape
            elif math.prod(shapes[dst]) != math.prod(out_shape):
                raise ShapeError(f"{where}: delivers shape {list(out_shape)} to '{dst}' of shape {list(shapes[dst])}")
            elif len(out_shape) > len(shapes[dst]):
                shapes[dst] = out_shape
    for n in order:
        if n not in shapes:
            raise ConfigError(f"{key}.from_nir: the shape of NIR node '{n}' cannot be told (no input reaches it)")

    result = Converted(outputs=outputs)
    for n in order:
        where = f"{key}.from_nir: NIR node '{n}' ({kinds[n]})"
        if kinds[n] == "Input":
            result.populations[names[n]] = {"shape": list(shapes[n])}
            continue
        spec, tensors = _neuron_spec(n, nodes[n], shapes[n], dt, nir_dt, where)
        result.populations[names[n]] = {"shape": list(shapes[n]), "neuron": spec}
        if tensors:
            result.neuron_tensors[names[n]] = tensors
    taken = set(result.populations)
    for i, (src, path, dst) in enumerate(paths):
        specs, tensors, _ = converted[i]
        metas = {_meta(nodes[m]).get("snnrun_projection") for m in path}
        name = metas.pop() if len(metas) == 1 and None not in metas else (path[0] if path else f"{src}_{dst}")
        base, k = re.sub(r"\W", "_", str(name)), 1
        name = base
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        if not specs:  # a direct edge: the source's output is the target's input
            specs = [{"name": "one_to_one", "weight": 1.0}]
        result.projections[name] = {"from": names[src], "to": names[dst], "synapse": specs}
        for index, values in tensors.items():
            result.stage_tensors[(name, index)] = values
    return result


def build_from_nir(node: Mapping[str, Any], input_shape, spike_fn=None, key: str = "network", graph=None):
    """``network: {from_nir: PATH, dt, duration, nir_dt, output, mode}``: the graph converted to
    populations and projections, built by :func:`snnrun.network.build_network` (the same build and
    checks as any network), then its weights loaded. ``graph``: a ``nir.NIRGraph`` used instead of
    reading ``from_nir``."""
    from ..network import NetworkParams, build_network
    from ..schema import parse_params

    params = parse_params(NetworkParams, node, key)
    for part in ("populations", "projections"):
        if getattr(params, part):
            raise ConfigError(f"{key}.{part}: not allowed with {key}.from_nir (the NIR graph defines the {part}); "
                              f"remove it (e.g. ~{key}.{part})")
    graph = read(params.from_nir if graph is None else graph, f"{key}.from_nir")
    converted = convert(graph, params.dt, params.nir_dt, key)
    output = params.output or (converted.outputs[0] if len(converted.outputs) == 1 else converted.outputs)
    spec = {"dt": params.dt, "duration": params.duration, "mode": params.mode, "output": output,
            "populations": converted.populations, "projections": converted.projections}
    network = build_network(spec, None, input_shape, spike_fn, key)
    converted.load_into(network)
    return network


def load_nir(source: Any, dt: float = 1.0, duration: float | None = None, nir_dt: float | None = None,
             input_shape=None, output=None, spike_fn=None):
    """:func:`build_from_nir` from Python arguments; ``source`` is a path or a ``nir.NIRGraph``."""
    path = isinstance(source, (str, PathLike))
    node = {"from_nir": str(source) if path else "<graph>", "dt": dt, "duration": 25.0 if duration is None else duration,
            "nir_dt": nir_dt, "output": output or ""}
    return build_from_nir(node, input_shape, spike_fn, "network", graph=None if path else source)
