"""NIR neuron nodes as snnrun neuron specs (LIF, CubaLIF, IF, LI), with the tensors to load."""

from __future__ import annotations

import numpy as np

from ...errors import ConfigError
from .common import array, clean, node_meta

#: NIR node types that become populations on import
NIR_NEURONS = ("LIF", "CubaLIF", "IF", "LI", "CubaLI", "I")


def _uniform(node, attr: str, where: str, model: str) -> float:
    values = array(getattr(node, attr)).astype(np.float64)
    if values.size == 0:
        raise ConfigError(f"{where}: {attr} is empty")
    if not np.all(values == values.flat[0]):
        raise ConfigError(f"{where}: {attr} differs between neurons; snnrun's {model} takes one value per "
                          f"population")
    return clean(values.flat[0])


def neuron_spec(name: str, node, shape: tuple[int, ...], dt: float, nir_dt: float,
                 where: str) -> tuple[dict, dict[str, np.ndarray]]:
    """The snnrun neuron spec of a NIR neuron node, and tensors to load into it."""
    kind, meta = type(node).__name__, node_meta(node)
    ms = dt / nir_dt  # ms per graph time unit
    integration = str(meta.get("integration", "euler"))
    if integration not in ("euler", "exact"):
        integration = "euler"
    if kind == "LIF":
        common = {"r": _uniform(node, "r", where, "lif"), "v_rest": _uniform(node, "v_leak", where, "lif"),
                  "v_th": _uniform(node, "v_threshold", where, "lif"),
                  "v_reset": _uniform(node, "v_reset", where, "lif"), "reset": "hard", "refractory": 0.0}
        tau = array(node.tau).astype(np.float64) * ms
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


def node_shape(node) -> tuple[int, ...] | None:
    """A neuron node's shape from its parameters, when they hold one value per neuron."""
    for attr in ("v_threshold", "tau", "tau_mem", "r"):
        if hasattr(node, attr):
            shape = array(getattr(node, attr)).shape
            return tuple(int(s) for s in shape) if int(np.prod(shape)) > 1 else None
    return None
