"""Accuracy of the default experiment with one component switched by name (issue target: >= 0.90).

    python scripts/component_accuracy.py OUT_DIR [neuron=lif,if,...] [encoder=poisson,...] [-- extra overrides]

Runs ``snnrun GROUP=NAME trainer.progress=false plots=off`` one after another (one CPU-heavy job at
a time), each into ``OUT_DIR/GROUP-NAME``, then prints a Markdown table: the command, final test
accuracy and the validation-selected epoch with its val/test accuracy, under a line naming the
machine, versions and date read from the runs' ``summary.json`` (no times: accuracy is the point). A run that fails shows its one-line error.
Runs already complete in OUT_DIR are not repeated.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

NEURONS = "lif,if,ifsoftreset,plif,clif,alif,diehlandcook,qif,izh,adex,glif,hh"
ENCODERS = "poisson,bernoulli,direct,population,latency,relative_latency,sstb,mstb"


def run(out: Path, group: str, name: str, extra: list[str]) -> dict:
    run_dir = out / f"{group}-{name}"
    summary = run_dir / "summary.json"
    if not (summary.is_file() and json.loads(summary.read_text()).get("status") == "completed"):
        cmd = [sys.executable, "-m", "snnrun", f"{group}={name}", "trainer.progress=false", "plots=off",
               f"hydra.run.dir={run_dir}", *extra]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            return {"group": group, "name": name, "error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    data = json.loads(summary.read_text())
    return {"group": group, "name": name, "summary": data}


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def row(result: dict, extra: list[str]) -> str:
    command = f"`snnrun {result['group']}={result['name']}{' ' + ' '.join(extra) if extra else ''}`"
    if "error" in result:
        return f"| {command} | – | {result['error'].removeprefix('snnrun: error: ')} |"
    s = result["summary"]
    best = s.get("best") or {}
    picked = f"{best.get('epoch')}: {best.get('val/accuracy', float('nan')):.3f} / {best.get('test/accuracy', float('nan')):.3f}"
    return f"| {command} | **{s['final']['test/accuracy']:.3f}** | {picked} |"


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit(__doc__)
    out, rest = Path(argv[0]), argv[1:]
    extra = rest[rest.index("--") + 1:] if "--" in rest else []
    rest = rest[:rest.index("--")] if "--" in rest else rest
    groups = dict(arg.split("=", 1) for arg in rest) or {"neuron": NEURONS, "encoder": ENCODERS}
    results = []
    for group, names in groups.items():
        for name in names.split(","):
            results.append(run(out, group, name, extra))
            print(row(results[-1], extra), file=sys.stderr, flush=True)
    done = [r for r in results if "summary" in r]
    versions = done[0]["summary"].get("versions", {}) if done else {}
    dated = max((out / f"{r['group']}-{r['name']}" / "summary.json").stat().st_mtime for r in done) if done else 0
    print(f"Default experiment (30 epochs), one component switched by name; `python scripts/component_accuracy.py "
          f"OUT_DIR` on {_cpu()} ({os.cpu_count()} cores), torch {versions.get('torch', '?')}, "
          f"{datetime.fromtimestamp(dated, timezone.utc):%Y-%m-%d}.\n")
    print("| command | final test accuracy | val-selected epoch: val / test |")
    print("|---|---|---|")
    for result in results:
        print(row(result, extra))


if __name__ == "__main__":
    main(sys.argv[1:])
