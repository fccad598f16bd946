"""Diehl & Cook (2015), the whole recipe, wall time: snnrun vs BindsNET 0.3.4.

Both run the same protocol on the same data (mnist_6k: 5000 training, 1000 test digits), N = 100,
250 steps of 1 ms per presentation, Poisson inputs at 63.75 Hz for pixel 255:

1. training pass, learning on, one sample at a time;
2. label assignment from a second pass over the training samples with learning frozen;
3. test pass with learning frozen; accuracy of the class-averaged vote (``all``).

snnrun runs its ``diehl_cook`` task (``experiment=diehl_cook diehl_cook.assign=frozen``; the frozen
passes as batches of 100 on the step engine) through :func:`snnrun.tasks.diehl_cook.run_diehl_cook`.
BindsNET runs its ``DiehlAndCook2015`` model as its ``eth_mnist`` example does: ``network.run`` per
sample with a spike ``Monitor`` on ``Ae``, ``network.train(False)`` for the frozen passes,
``assign_labels`` and ``all_activity`` from ``bindsnet.evaluation``. Each phase is timed (data and
model set-up excluded); snnrun runs before and after BindsNET, so a change of machine load shows as
a difference between its two runs.

    .venv/bin/python scripts/bench_diehl_cook_full.py --threads 1        # about 15 minutes
    .venv/bin/python scripts/bench_diehl_cook_full.py --train 500 --test 100   # a quick look

``--threads`` sets torch's intra-op threads for BindsNET and ``trainer.threads`` for snnrun.
BindsNET is optional (``pip install --no-deps bindsnet==0.3.4`` plus tensorboardX); see
scripts/bench_diehl_cook.py for its import stubs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).parent))


def snnrun_full(data: str, n_train: int, n_test: int, threads: str) -> dict:
    from conftest import compose_config
    from snnrun.build import build_experiment
    from snnrun.tasks.diehl_cook import run_diehl_cook

    overrides = ["experiment=diehl_cook", f"data.path={data}", "diehl_cook.assign=frozen", "diehl_cook.backend=cpp",
                 f"diehl_cook.train_samples={n_train}", f"diehl_cook.test_samples={n_test}",
                 f"trainer.threads={threads}"]
    exp = build_experiment(compose_config(overrides))
    p = exp.spec.sections["diehl_cook"]
    start = time.perf_counter()
    summary = run_diehl_cook(exp, p)
    total = time.perf_counter() - start
    return {"wall_s": total, "train_s": summary["train_time_s"], "frozen_s": total - summary["train_time_s"],
            "accuracy": summary["test/accuracy_all"], "threads": summary.get("threads")}


def bindsnet_full(images: np.ndarray, labels: np.ndarray, test_images: np.ndarray, test_labels: np.ndarray,
                  n_neurons: int, rate: float, steps: int) -> dict:
    import torch
    from bench_diehl_cook import stub_torchvision

    stub_torchvision()
    from bindsnet.encoding import PoissonEncoder
    from bindsnet.evaluation import all_activity, assign_labels
    from bindsnet.models import DiehlAndCook2015
    from bindsnet.network.monitors import Monitor

    torch.manual_seed(0)
    net = DiehlAndCook2015(n_inpt=784, n_neurons=n_neurons, exc=22.5, inh=17.5, dt=1.0, norm=78.4,
                           theta_plus=0.05, inpt_shape=(1, 28, 28))
    monitor = Monitor(net.layers["Ae"], ["s"], time=steps)
    net.add_monitor(monitor, name="Ae_spikes")
    encoder = PoissonEncoder(time=steps, dt=1.0)

    def present(images: np.ndarray, learn: bool) -> torch.Tensor:
        net.train(learn)
        counts = torch.zeros(len(images), steps, n_neurons)
        for i, image in enumerate(images):
            img = torch.as_tensor(image, dtype=torch.float32) / 255.0 * rate
            spikes = encoder(img.reshape(1, 28, 28))
            net.run(inputs={"X": spikes.reshape(steps, 1, 1, 28, 28)}, time=steps, input_time_dim=1)
            counts[i] = monitor.get("s").reshape(steps, n_neurons).float()
            net.reset_state_variables()
        return counts

    start = time.perf_counter()
    present(images, True)
    train_s = time.perf_counter() - start
    record = present(images, False)
    assignments, _, _ = assign_labels(record, torch.as_tensor(labels, dtype=torch.int64), 10)
    test = present(test_images, False)
    predicted = all_activity(test, assignments, 10)
    total = time.perf_counter() - start
    accuracy = float((predicted == torch.as_tensor(test_labels, dtype=torch.int64)).float().mean())
    return {"wall_s": total, "train_s": train_s, "frozen_s": total - train_s, "accuracy": accuracy}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("SNNRUN_MNIST_NPZ", "mnist_6k.npz"))
    ap.add_argument("--train", type=int, default=5000)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--threads", default="1", help="torch threads (BindsNET) and trainer.threads (snnrun)")
    ap.add_argument("--rate", type=float, default=63.75, help="Hz at pixel 255")
    args = ap.parse_args()
    import torch

    if args.threads != "auto":
        torch.set_num_threads(int(args.threads))
    data = np.load(args.data)
    x, y = data["x_train"][:args.train], data["y_train"][:args.train]
    xt, yt = data["x_test"][:args.test], data["y_test"][:args.test]
    result = {"date": date.today().isoformat(), "machine": f"{os.cpu_count()} cores {platform.machine()}",
              "python": platform.python_version(), "torch": torch.__version__, "train": args.train,
              "test": args.test, "threads": args.threads}
    result["snnrun_before"] = snnrun_full(args.data, args.train, args.test, args.threads)
    try:
        result["bindsnet"] = bindsnet_full(x, y, xt, yt, 100, args.rate, 250)
    except ImportError as err:
        print(f"bindsnet unavailable ({err}); measuring snnrun only")
    result["snnrun_after"] = snnrun_full(args.data, args.train, args.test, args.threads)
    if "bindsnet" in result:
        for phase in ("wall_s", "train_s", "frozen_s"):
            snn = max(result["snnrun_before"][phase], result["snnrun_after"][phase])
            result[f"speedup_{phase[:-2]}"] = result["bindsnet"][phase] / snn
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
