"""A trained run's network, loaded for export (``snnrun export``, :func:`snnrun.interop.export_run`)."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from ..errors import SnnrunError

FORMATS = ("nir", "torch", "safetensors")
CHECKPOINTS = ("best", "last")

#: file extension of each export format's main file
EXTENSIONS = {"nir": ".nir", "torch": ".pt2", "safetensors": ".safetensors"}


def load_trained(run_dir: str | PathLike, checkpoint: str = "best"):
    """The run's experiment built from its saved ``.hydra/config.yaml`` (as ``snnrun validate``
    builds it: the data loaded for their shapes, no kernel compiled), its network holding the
    weights of ``checkpoints/<checkpoint>.pt`` (the checksum verified, ``weights_only`` loading) and
    in evaluation mode. Returns ``(experiment, checkpoint path)``."""
    from .. import checkpoint as ckpt
    from ..build import build_experiment
    from ..resume import load_saved_config

    run_dir = Path(run_dir)
    if checkpoint not in CHECKPOINTS:
        raise SnnrunError(f"export --checkpoint: '{checkpoint}' is not one of {', '.join(CHECKPOINTS)}")
    saved = run_dir / ".hydra" / "config.yaml"
    if not saved.is_file():
        raise SnnrunError(f"export: {run_dir} is not a run directory (no .hydra/config.yaml)")
    path = run_dir / "checkpoints" / f"{checkpoint}.pt"
    if not path.is_file():
        other = [c for c in CHECKPOINTS if c != checkpoint and (run_dir / "checkpoints" / f"{c}.pt").is_file()]
        hint = f"; export --checkpoint {other[0]}" if other else ""
        raise SnnrunError(f"export: no checkpoint {path}{hint}")
    exp = build_experiment(load_saved_config(saved), device="cpu", dry_run=True)
    state = ckpt.load(path, require_checksum=True)
    model = state.get("model")
    if not isinstance(model, dict):
        raise SnnrunError(f"export: {path} holds no model weights")
    ckpt.check_fits(exp.network.state_dict(), model, "the model", path)
    exp.network.load_state_dict(model)
    exp.network.eval()
    return exp, path


def export(run_dir: str | PathLike, format: str = "nir", output: str | PathLike | None = None,
           checkpoint: str = "best", nir_dt: float | None = None) -> list[Path]:
    """See :func:`snnrun.interop.export_run`."""
    if format not in FORMATS:
        raise SnnrunError(f"export --format: '{format}' is not one of {', '.join(FORMATS)}")
    if nir_dt is not None and format != "nir":
        raise SnnrunError("export --nir-dt: only for --format nir")
    exp, _ = load_trained(run_dir, checkpoint)
    output = Path(output) if output is not None else Path(run_dir) / "export" / f"network{EXTENSIONS[format]}"
    if format == "nir":
        from .nir import to_nir, write
        return [write(to_nir(exp.network, nir_dt), output)]
    from .torch_export import save_program, save_safetensors
    if format == "torch":
        return save_program(exp.network, output, exp.config)
    return save_safetensors(exp.network, output, exp.config)
