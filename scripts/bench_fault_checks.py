"""Cost of the fault checks on the default experiment (README "Faults, untrusted configs and checkpoints").

Times, in one process, alternating: a training epoch of the default experiment; the per-epoch
NaN/Inf scan of weights and neuron states (``snnrun.faults.find_nonfinite``); a checkpoint written
with checksum and rotation (``checkpoint.save_rotating``) against a plain ``torch.save`` of the
same state. The per-batch loss check reads the value the metrics already read, so it adds no
synchronisation; it is not timed separately.

    .venv/bin/python scripts/bench_fault_checks.py [repeats]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from snnrun import checkpoint
from snnrun.build import build_experiment
from snnrun.faults import find_nonfinite
from snnrun.runner import Runner


def main(repeats: int = 5) -> None:
    with initialize_config_module(config_module="snnrun.configs", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["device=cpu", "trainer.progress=false", "plots=off"])
    exp = build_experiment(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        runner = Runner(exp, Path(tmp), OmegaConf.to_yaml(cfg))
        runner.generator.manual_seed(0)
        epoch, scan, save, plain = [], [], [], []
        for _ in range(repeats):
            start = time.perf_counter()
            runner.run_epoch(train=True)
            epoch.append(time.perf_counter() - start)
            start = time.perf_counter()
            for _ in range(20):
                assert find_nonfinite(exp.network) is None
            scan.append((time.perf_counter() - start) / 20)
            state = runner.state_dict()
            start = time.perf_counter()
            checkpoint.save_rotating(state, Path(tmp) / "ckpt")
            save.append(time.perf_counter() - start)
            start = time.perf_counter()
            torch.save(state, Path(tmp) / "plain.pt")
            plain.append(time.perf_counter() - start)
        size = (Path(tmp) / "ckpt" / "last.pt").stat().st_size
    med = statistics.median
    print(f"training epoch (default experiment, 1437 samples): median {med(epoch):.3f} s over {repeats}")
    print(f"NaN/Inf scan of weights and neuron states: median {med(scan) * 1e3:.3f} ms per epoch "
          f"= {med(scan) / med(epoch) * 100:.3f} % of an epoch")
    print(f"checkpoint ({size / 1e6:.2f} MB): save_rotating (sha256 + fsync + rotation) median "
          f"{med(save) * 1e3:.1f} ms, plain torch.save {med(plain) * 1e3:.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
