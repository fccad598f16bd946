"""``snnrun export RUN_DIR --format nir|torch|safetensors [--checkpoint best|last] [-o PATH] [--nir-dt S]``:
a trained run's network for other tools (:mod:`snnrun.interop`, docs/interop.md)."""

from __future__ import annotations

from .errors import SnnrunError

USAGE = """usage: snnrun export RUN_DIR [--format nir|torch|safetensors] [--checkpoint best|last] [-o PATH] [--nir-dt S]

Write the network of a trained run (checkpoints/<checkpoint>.pt, default best, its checksum verified):
  --format nir          a NIR graph (default; read by snnTorch, norse, Lava, Rockpool, Sinabs, SpiNNaker2...)
  --format torch        a torch.export program (.pt2) loadable with torch alone, plus a JSON of its input/output
  --format safetensors  the weights (.safetensors) plus a JSON of the graph
  -o, --output PATH     the file to write (default RUN_DIR/export/network.<nir|pt2|safetensors>)
  --nir-dt S            one step's duration in the NIR graph's time unit (default dt/1000: seconds;
                        1e-4 for snnTorch's importer, which assumes that step)
The mapping of neuron models and synapses, and what is refused: docs/interop.md."""

_OPTIONS = {"--format": "format", "--checkpoint": "checkpoint", "-o": "output", "--output": "output",
            "--nir-dt": "nir_dt"}


def parse(args: list[str]) -> dict:
    """``args`` as ``{run_dir, format, checkpoint, output, nir_dt}``; a mistake is one SnnrunError."""
    found = {"run_dir": None, "format": "nir", "checkpoint": "best", "output": None, "nir_dt": None}
    args = list(args)
    while args:
        arg = args.pop(0)
        flag, _, value = arg.partition("=")
        if flag in _OPTIONS:
            if not _:
                if not args:
                    raise SnnrunError(f"export: {flag} needs a value")
                value = args.pop(0)
            found[_OPTIONS[flag]] = value
        elif arg.startswith("-"):
            raise SnnrunError(f"export: unknown option {arg}; options: --format, --checkpoint, -o/--output, --nir-dt")
        elif found["run_dir"] is None:
            found["run_dir"] = arg
        else:
            raise SnnrunError(f"export: one RUN_DIR, got {found['run_dir']} and {arg}")
    if found["run_dir"] is None:
        raise SnnrunError("export: missing RUN_DIR (usage: snnrun export RUN_DIR --format nir)")
    if found["nir_dt"] is not None:
        try:
            found["nir_dt"] = float(found["nir_dt"])
        except ValueError:
            raise SnnrunError(f"export --nir-dt: expected a number of the graph's time unit, got "
                              f"{found['nir_dt']!r}") from None
        if not found["nir_dt"] > 0:
            raise SnnrunError(f"export --nir-dt: must be > 0, got {found['nir_dt']}")
    return found


def main(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    from .interop import export_run

    options = parse(args)
    written = export_run(options["run_dir"], options["format"], options["output"], options["checkpoint"],
                         options["nir_dt"])
    for path in written:
        print(f"snnrun: wrote {path}")
    return 0
