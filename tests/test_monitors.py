"""Monitors: documented shapes, values equal to a direct simulation, no effect on training, the cap."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from snnrun.build import build_experiment
from snnrun.errors import ConfigError
from snnrun.monitors import write_npz
from snnrun.runner import Runner

PROBE = ("+monitors.probes.h={target: hidden, vars: [spikes, v, current], samples: [0, 2, 5], epochs: [0, 2], "
         "start_ms: 2.0, stop_ms: 6.0}")
WEIGHTS = "+monitors.probes.w={target: inp_hidden, vars: [weight], epochs: all}"


def fit(cfg, run_dir):
    exp = build_experiment(cfg)
    summary = Runner(exp, run_dir, "").fit()
    return summary, exp


def test_probe_arrays_have_documented_shapes_and_match_the_simulation(tiny_cfg, tmp_path):
    _, exp = fit(tiny_cfg("encoder=direct", PROBE, WEIGHTS), tmp_path)
    rec = np.load(tmp_path / "monitors" / "h.npz")
    # [records, samples, steps, *shape]: epochs 0 and 2, samples 0, 2, 5, steps 2..5 of 8, 16 neurons
    assert rec["spikes"].shape == (2, 3, 4, 16) and rec["spikes"].dtype == np.uint8
    assert rec["v"].shape == (2, 3, 4, 16) and rec["v"].dtype == np.float32
    assert rec["current"].shape == (2, 3, 4, 16)
    assert rec["epoch"].tolist() == [0, 2]
    assert rec["sample_index"].tolist() == [0, 2, 5]
    assert rec["label"].tolist() == exp.data.y_test[[0, 2, 5]].tolist()
    assert np.allclose(rec["time_ms"], [3.0, 4.0, 5.0, 6.0])  # end of steps 2..5 at dt = 1 ms
    # the last record (epoch 2) is the trained network: simulate it directly and compare
    net = exp.network.eval()
    net.reset()
    x = exp.data.x_test[[0, 2, 5]]
    with torch.no_grad():
        inp = exp.encoder(x)
        out = net(inp, record={"hidden": ("v",)})
        current = torch.nn.functional.linear(inp, net.projections["inp_hidden"].stages[0].weight)
    window = slice(2, 6)
    assert np.array_equal(rec["spikes"][-1], out.spikes["hidden"][window].transpose(0, 1).numpy().astype(np.uint8))
    assert np.allclose(rec["v"][-1], out.traces["hidden"]["v"][window].transpose(0, 1).numpy(), atol=1e-6)
    assert np.allclose(rec["current"][-1], current[window].transpose(0, 1).numpy(), atol=1e-5)
    assert rec["spikes"][-1].sum() > 0
    # the epoch-0 record was taken before training: different weights, different voltages
    assert not np.allclose(rec["v"][0], rec["v"][1])
    w = np.load(tmp_path / "monitors" / "w.npz")
    assert w["weight"].shape == (2, 16, 20) and w["epoch"].tolist() == [1, 2]
    assert np.allclose(w["weight"][-1], net.projections["inp_hidden"].stages[0].weight.detach().numpy())
    assert not (tmp_path / "monitors" / ".parts").exists()  # removed once the run completed


def test_recording_does_not_change_training(tiny_cfg, tmp_path):
    plain, _ = fit(tiny_cfg(), tmp_path / "plain")
    probed, _ = fit(tiny_cfg(PROBE, WEIGHTS), tmp_path / "probed")
    assert plain["final"] == probed["final"]  # Poisson encoder: the probes must not consume the RNG stream


def test_sample_file_holds_every_population(tiny_cfg, tmp_path):
    summary, exp = fit(tiny_cfg("monitors.sample_size=5"), tmp_path)
    s = np.load(tmp_path / "monitors" / "sample.npz")
    assert s["input/inp"].shape == (5, 8, 20)
    assert s["spikes/hidden"].shape == (5, 8, 16) and s["spikes/out"].shape == (5, 8, 4)
    assert s["v/hidden"].shape == (5, 8, 16)
    assert set(np.unique(s["spikes/hidden"])) <= {0, 1}
    assert s["weight/inp_hidden"].shape == (16, 20)
    assert s["label"].tolist() == exp.data.y_test[:5].tolist()
    assert s["pred"].shape == (5,) and float(s["v_th/hidden"]) == 1.0
    rows = list(csv.reader(open(tmp_path / "confusion_matrix.csv")))
    counts = np.array([[int(v) for v in r[1:]] for r in rows[1:]])
    assert counts.shape == (4, 4) and counts.sum() == 128  # every test sample of the last epoch
    assert counts.trace() / 128 == pytest.approx(summary["final"]["test/accuracy"])  # the diagonal: correct ones


def test_confusion_counts_grow_to_fit_every_label_and_prediction():
    from snnrun.monitors import confusion_counts
    labels, pred = torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 4])
    c = confusion_counts(labels, pred, classes=3)
    assert c.shape == (5, 5) and c.sum() == 4
    assert c[0, 0] == 1 and c[1, 1] == 1 and c[1, 2] == 1 and c[2, 4] == 1
    assert confusion_counts(labels[:2], pred[:2], classes=4).shape == (4, 4)


def test_cap_and_bad_probes_are_one_line_config_errors(tiny_cfg, tmp_path):
    big = "+monitors.probes.h={target: hidden, vars: [spikes, v], samples: all, epochs: all}"
    with pytest.raises(ConfigError, match=r"^monitors.max_mb: the probes would write .* MB \(h .*above the cap of 0.001 MB"):
        Runner(build_experiment(tiny_cfg(big, "monitors.max_mb=0.001")), tmp_path, "")
    with pytest.raises(ConfigError, match=r"^monitors.probes.h.vars: 'vv' is not recorded .*valid: spikes, current, v"):
        Runner(build_experiment(tiny_cfg("+monitors.probes.h={target: hidden, vars: [vv]}")), tmp_path, "")
    with pytest.raises(ConfigError, match=r"^monitors.probes.h.target: no population or projection 'hiden' \(did you mean"):
        Runner(build_experiment(tiny_cfg("+monitors.probes.h={target: hiden}")), tmp_path, "")
    with pytest.raises(ConfigError, match=r"^monitors.probes.h.samples: index 500 out of range for the test split \(128"):
        Runner(build_experiment(tiny_cfg("+monitors.probes.h={target: hidden, samples: [500]}")), tmp_path, "")
    with pytest.raises(ConfigError, match=r"^monitors.probes.h.split: the data has no 'val' split"):
        Runner(build_experiment(tiny_cfg("+monitors.probes.h={target: hidden, split: val}", "data.val_fraction=0",
                                         "trainer.monitor=train/loss", "trainer.mode=min")), tmp_path, "")
    with pytest.raises(ConfigError, match=r"^monitors.probes.h.samples: index 30 out of range for the val split \(26"):
        Runner(build_experiment(tiny_cfg("+monitors.probes.h={target: hidden, split: val, samples: [30]}")), tmp_path, "")


def test_streamed_npz_equals_the_concatenated_chunks(tmp_path):
    rng = np.random.default_rng(0)
    chunks = [rng.standard_normal((3, 5, 7)).astype(np.float32) for _ in range(4)]
    part = tmp_path / "v.bin"
    with open(part, "ab") as f:
        for c in chunks:
            f.write(c.tobytes())
    write_npz(tmp_path / "x.npz", [("v", part, (12, 5, 7), np.dtype(np.float32))], {"epoch": np.arange(4)})
    data = np.load(tmp_path / "x.npz")
    assert np.array_equal(data["v"], np.concatenate(chunks))
    assert data["epoch"].tolist() == [0, 1, 2, 3]
