"""Does the memory edge matter? Train an experiment with and without its recurrent/delayed projection.

    .venv/bin/python scripts/temporal_memory.py delayed [seeds...]     # experiment=temporal_delayed
    .venv/bin/python scripts/temporal_memory.py recurrent [seeds...]   # experiment=temporal_recurrent
    .venv/bin/python scripts/temporal_memory.py recurrent 0 1 2 -- trainer.epochs=10   # extra overrides

Each variant runs through the `snnrun` CLI with the same seed (same data, initial weights of the
shared projections, encoder, decoder, optimizer); the only difference is
`~network.projections.<edge>`. Prints the final and best test accuracy of every run, read from
its summary.json, then the mean ± sample std over seeds of both variants.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXPERIMENTS = {"delayed": ("temporal_delayed", "hidden_out_delayed"),
               "recurrent": ("temporal_recurrent", "hidden_hidden")}


def run(experiment: str, extra: list[str], seed: int, out: Path) -> dict:
    cmd = [str(Path(sys.executable).with_name("snnrun")), f"experiment={experiment}", f"seed={seed}",
           "trainer.progress=false", "plots.enabled=false", f"hydra.run.dir={out}", *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "summary.json").read_text())


def main() -> None:
    args = sys.argv[1:]
    overrides = args[args.index("--") + 1:] if "--" in args else []
    args = args[:args.index("--")] if "--" in args else args
    kind = args[0] if args else "delayed"
    seeds = [int(s) for s in args[1:]] or [0]
    experiment, edge = EXPERIMENTS[kind]
    variants = {f"with {edge}": [], f"without {edge}": [f"~network.projections.{edge}"]}
    finals: dict[str, list[float]] = {label: [] for label in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for i, (label, extra) in enumerate(variants.items()):
                start = time.perf_counter()
                summary = run(experiment, [*overrides, *extra], seed, Path(tmp) / f"{seed}-{i}")
                final = summary["final"]["test/accuracy"]
                best = summary.get("best", {})
                finals[label].append(final)
                print(f"{experiment} seed {seed} {label}: final test/accuracy {final:.3f}, best "
                      f"{best.get('test/accuracy', float('nan')):.3f} (epoch {best.get('epoch')}), "
                      f"{time.perf_counter() - start:.0f} s", flush=True)
    for label, values in finals.items():
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{experiment} {label}: final test/accuracy {statistics.mean(values):.3f} ± {std:.3f} "
              f"over seeds {seeds}")


if __name__ == "__main__":
    main()
