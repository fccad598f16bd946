"""Figures of weights: each projection's weight matrix and, where its source is an image, its
receptive fields; read from ``monitors/sample.npz`` or from ``checkpoints/last.pt``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from . import canvas
from .canvas import PlotsParams


def _image_shape(n: int, source_shape: tuple, input_shape: tuple, from_input: bool = True) -> tuple[int, ...] | None:
    """How to show ``n`` presynaptic weights as an image (source shaped as an image, or an input
    population whose data samples are images or square), or None."""
    if len(source_shape) == 3 and source_shape[0] in (1, 3):
        return source_shape[1:] if source_shape[0] == 1 else None
    if len(source_shape) == 2:
        return source_shape
    shape = tuple(s for s in input_shape if s > 1)
    if len(shape) == 2 and math.prod(shape) == n:
        return shape
    if len(shape) == 3 and shape[0] == 1 and math.prod(shape) == n:
        return shape[1:]
    side = int(round(math.sqrt(n)))
    return (side, side) if from_input and side * side == n and side >= 4 else None


def weights(sample, out: Path, params: PlotsParams) -> list[Path]:
    written = []
    input_shape = tuple(int(s) for s in sample["input_shape"]) if "input_shape" in sample.files else ()
    for key in [k for k in sample.files if k.startswith("weight/")]:
        proj = key.split("/", 1)[1]
        w = sample[key]
        matrix = w.reshape(w.shape[0], -1) if w.ndim > 1 else w.reshape(1, -1)
        fig = canvas.figure(7, 5)
        ax = fig.subplots()
        lim = float(np.abs(matrix).max()) or 1.0
        im = ax.imshow(matrix, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        fig.colorbar(im, ax=ax, label="weight")
        ax.set_title(f"{proj}: weights [{' x '.join(str(s) for s in w.shape)}]")
        ax.set_xlabel("presynaptic")
        ax.set_ylabel("postsynaptic")
        written.append(canvas.save(fig, out / f"weights_{proj}.png", params))
        source = tuple(int(s) for s in sample[f"source_shape/{proj}"]) if f"source_shape/{proj}" in sample.files else ()
        if w.ndim == 4:  # conv kernels [out, in, k, k]: show the first input channel of each kernel
            fields, shape = w[:, 0], w.shape[2:]
        else:
            from_input = bool(sample[f"source_is_input/{proj}"]) if f"source_is_input/{proj}" in sample.files else True
            shape = _image_shape(matrix.shape[1], source, input_shape if from_input else (), from_input)
            fields = matrix.reshape(matrix.shape[0], *shape) if shape else None
        if fields is not None and fields.shape[0] > 1:
            written.append(_field_grid(fields[:params.max_fields], proj, out, params, total=fields.shape[0]))
    return written


def _field_grid(fields: np.ndarray, proj: str, out: Path, params: PlotsParams, total: int) -> Path:
    n = fields.shape[0]
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    h, w = fields.shape[1:]
    grid = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    shared = params.field_scale == "shared"
    low, high = float(fields.min()), float(fields.max())
    for i in range(n):
        r, c = divmod(i, cols)
        f = fields[i]
        lo, hi = (low, high) if shared else (float(f.min()), float(f.max()))
        grid[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = (f - lo) / (hi - lo) if hi > lo else 0.5
    fig = canvas.figure(min(14, 2 + cols * 1.2), min(14, 2 + rows * 1.2))
    ax = fig.subplots()
    if shared and low < 0 < high:  # signed weights: diverging map centred on zero, in weight units
        lim = max(-low, high)
        grid = grid * (high - low) + low  # back from [0, 1] to weights
        im = ax.imshow(grid, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    else:
        im = ax.imshow(grid, cmap="hot", interpolation="nearest", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, label="weight" if shared and low < 0 < high else
                 ("weight, scaled to [low, high]" if shared else "weight, scaled per neuron to [min, max]"))
    ax.set_axis_off()
    scale = f"one scale, {low:.3g} to {high:.3g}" if shared else "each scaled to its own range"
    which = f"the first {n} of {total} neurons" if n < total else f"{n} neurons"
    ax.set_title(f"{proj}: receptive fields of {which} ({scale})")
    return canvas.save(fig, out / f"receptive_fields_{proj}.png", params)


class _Arrays(dict):
    """A dict that looks like an opened ``.npz`` (``.files`` and item access)."""

    @property
    def files(self) -> list[str]:
        return list(self)


def checkpoint_weights(run_dir: Path) -> _Arrays:
    """``weight/<proj>`` (+ ``source_is_input/<proj>``) from ``checkpoints/last.pt`` (loaded with
    ``weights_only=True``) and ``.hydra/config.yaml``, in the layout of ``monitors/sample.npz``."""
    import re

    import torch

    state = torch.load(run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    model = state.get("model", {}) if isinstance(state, dict) else {}
    projections, inputs = {}, set()
    saved = run_dir / ".hydra" / "config.yaml"
    if saved.exists():
        import yaml

        network = (yaml.safe_load(saved.read_text()) or {}).get("network") or {}
        projections = network.get("projections") or {}
        targets = {p.get("to") for p in projections.values() if isinstance(p, dict)}
        inputs = {n for n in (network.get("populations") or {}) if n not in targets}
    arrays = _Arrays()
    for key, value in model.items():
        match = re.fullmatch(r"projections\.(\w+)\.stages\.\d+\.weight", key)
        if match and isinstance(value, torch.Tensor) and value.dim() >= 2 and f"weight/{match[1]}" not in arrays:
            name = match[1]
            arrays[f"weight/{name}"] = value.float().numpy()
            source = (projections.get(name) or {}).get("from")
            arrays[f"source_is_input/{name}"] = np.bool_(source in inputs if source else True)
    return arrays
