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
    """The run's trained model as :func:`snnrun.api.load_run` loads it (the checksum of
    ``checkpoints/<checkpoint>.pt`` verified, ``weights_only`` loading, evaluation mode, on the CPU),
    with the errors worded for ``snnrun export``. Returns ``(loaded run, checkpoint path)``."""
    from ..api import load_run
    from ..checkpoint import UnverifiedCheckpoint

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
    try:
        loaded = load_run(run_dir, checkpoint)
    except UnverifiedCheckpoint as err:
        raise UnverifiedCheckpoint(f"{path} is unverified ({err.why})", err.why) from None
    return loaded, path


def export(run_dir: str | PathLike, format: str = "nir", output: str | PathLike | None = None,
           checkpoint: str = "best", nir_dt: float | None = None) -> list[Path]:
    """See :func:`snnrun.interop.export_run`."""
    if format not in FORMATS:
        raise SnnrunError(f"export --format: '{format}' is not one of {', '.join(FORMATS)}")
    if nir_dt is not None and format != "nir":
        raise SnnrunError("export --nir-dt: only for --format nir")
    loaded, _ = load_trained(run_dir, checkpoint)
    output = Path(output) if output is not None else Path(run_dir) / "export" / f"network{EXTENSIONS[format]}"
    if format == "nir":
        from .nir import to_nir, write
        return [write(to_nir(loaded.network, nir_dt), output)]
    from .torch_export import save_program, save_safetensors
    if format == "torch":
        return save_program(loaded.network, output, loaded.resolved_config())
    return save_safetensors(loaded.network, output, loaded.resolved_config())
