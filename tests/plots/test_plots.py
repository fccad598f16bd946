"""Plots: every figure is produced from the run directory's files and is not blank."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="plots need the optional extra: the `plots` extra: python3 bootstrap.py --extras plots setup")

from matplotlib.image import imread  # noqa: E402

from snnrun.build import build_experiment  # noqa: E402
from snnrun.cli import main  # noqa: E402
from snnrun.plots import PlotsParams, plot_run  # noqa: E402
from snnrun.runner import Runner  # noqa: E402


def assert_figure(path, min_w=300, min_h=200, min_colours=4):
    assert path.is_file(), path
    img = imread(path)
    h, w = img.shape[:2]
    assert w >= min_w and h >= min_h, (path.name, img.shape)
    colours = np.unique((img[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) >= min_colours, (path.name, len(colours))


def test_end_of_run_plots(tiny_cfg, tmp_path):
    probe = "+monitors.probes.h={target: hidden, vars: [spikes, v], samples: 2}"
    exp = build_experiment(tiny_cfg("plots=default", "plots.dpi=60", probe))
    Runner(exp, tmp_path, "").fit()
    names = {p.name for p in (tmp_path / "plots").glob("*.png")}
    expected = {"learning_curves.png", "raster.png", "membrane.png", "firing_rates.png", "confusion_matrix.png",
                "weights_inp_hidden.png", "weights_hidden_out.png", "probe_h.png"}
    assert expected <= names
    for name in expected:
        assert_figure(tmp_path / "plots" / name)
    # the raster shows the input, hidden and output populations: three panels of coloured ticks
    img = imread(tmp_path / "plots" / "raster.png")[..., :3]
    blue = (img[..., 2] > 0.6) & (img[..., 0] < 0.3)  # C0 ticks of the input panel
    assert blue.sum() > 50
    # `snnrun plot` redraws them later from the files alone
    for p in (tmp_path / "plots").glob("*.png"):
        p.unlink()
    main(["plot", str(tmp_path)])
    assert expected <= {p.name for p in (tmp_path / "plots").glob("*.png")}


def test_receptive_fields_of_an_image_input(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "monitors").mkdir()
    np.savez(tmp_path / "monitors" / "sample.npz", **{
        "weight/inp_exc": rng.random((16, 784)).astype(np.float32),
        "source_shape/inp_exc": np.asarray([784]), "source_is_input/inp_exc": np.bool_(True),
        "weight/exc_inh": rng.random((16, 16)).astype(np.float32),
        "source_shape/exc_inh": np.asarray([16]), "source_is_input/exc_inh": np.bool_(False),
        "input_shape": np.asarray([28, 28]), "dt": np.float64(0.5)})
    written = {p.name for p in plot_run(tmp_path, PlotsParams(dpi=60))}
    assert written == {"weights_inp_exc.png", "receptive_fields_inp_exc.png", "weights_exc_inh.png"}
    assert_figure(tmp_path / "plots" / "receptive_fields_inp_exc.png", min_colours=20)


def test_fi_curve_stdp_window_and_clamp_monitor(tmp_path):
    with open(tmp_path / "fi_curve.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["neuron", "current", "spikes", "rate_hz"])
        for i, c in enumerate([0.5, 1.0, 1.5, 2.0]):
            w.writerow([i, c, i * 3, i * 15.0])
    with open(tmp_path / "stdp_window.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dt_ms", "dw"])
        for dt in range(-40, 41, 5):
            w.writerow([dt, float(np.sign(dt) * np.exp(-abs(dt) / 20.0))])
    (tmp_path / "monitors").mkdir()
    t = np.arange(1, 201) * 0.1
    v = np.stack([np.sin(t * k) for k in (1, 2, 3)], 1)
    np.savez(tmp_path / "monitors" / "cell.npz", v=v, spikes=(v > 0.99).astype(np.float64), time_ms=t,
             current=np.ones_like(v))
    written = {p.name for p in plot_run(tmp_path, PlotsParams(dpi=60))}
    assert written == {"fi_curve.png", "stdp_window.png", "probe_cell.png"}
    for name in written:
        assert_figure(tmp_path / "plots" / name)


def test_sweep_plot_mean_and_std_over_seeds(tmp_path, capsys):
    values = {(5, 0): 0.5, (5, 1): 0.7, (10, 0): 0.8, (10, 1): 0.9, (20, 0): 0.4, (20, 1): 0.4}
    for job, ((tau, seed), acc) in enumerate(values.items()):
        d = tmp_path / str(job)
        (d / ".hydra").mkdir(parents=True)
        (d / ".hydra" / "overrides.yaml").write_text(f"- neuron.tau_m={tau}\n- seed={seed}\n")
        (d / "summary.json").write_text(json.dumps({"monitor": "test/accuracy", "final": {"test/accuracy": acc}}))
    main(["plot", str(tmp_path)])
    assert "sweep_test_accuracy.png" in capsys.readouterr().out
    assert_figure(tmp_path / "plots" / "sweep_test_accuracy.png")
    rows = list(csv.DictReader(open(tmp_path / "plots" / "sweep.csv")))
    assert [r["neuron.tau_m"] for r in rows] == ["5", "10", "20"]
    assert [float(r["mean"]) for r in rows] == pytest.approx([0.6, 0.85, 0.4])
    assert [float(r["std"]) for r in rows] == pytest.approx([0.1, 0.05, 0.0])
    assert [int(r["n"]) for r in rows] == [2, 2, 2]


def test_plot_command_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["plot", str(tmp_path)])
    assert err.value.code == 2
    assert capsys.readouterr().err.strip() == (f"snnrun: error: plot: nothing to plot in {tmp_path} (no metrics.csv, "
                                               "monitors/*.npz, fi_curve.csv, stdp_window.csv or multirun jobs)")
    with pytest.raises(SystemExit):
        main(["plot", str(tmp_path / "missing")])
    assert "is not a directory" in capsys.readouterr().err


def test_current_clamp_run_draws_its_f_i_curve(tmp_path):
    from conftest import compose_config

    from snnrun.cli import run_task

    cfg = compose_config(["experiment=current_clamp", "clamp.duration=50", "clamp.current=[0.5,1.5,2.0,3.0]",
                          "plots.dpi=60"])
    run_task(cfg, tmp_path)
    assert_figure(tmp_path / "plots" / "fi_curve.png")
    assert_figure(tmp_path / "plots" / "probe_cell.png")
    assert not (tmp_path / "plots" / "raster.png").exists()  # no sample file in a clamp run


def test_weights_from_the_checkpoint_of_a_run_without_sample_file(tmp_path):
    import torch

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text(
        "network:\n  populations: {inp: {shape: null}, exc: {shape: 9}, inh: {shape: 9}}\n"
        "  projections:\n    inp_exc: {from: inp, to: exc}\n    exc_inh: {from: exc, to: inh}\n")
    torch.save({"model": {"projections.inp_exc.stages.0.weight": torch.rand(9, 784),
                          "projections.exc_inh.stages.0.weight": torch.rand(9, 9)}}, tmp_path / "checkpoints" / "last.pt")
    written = {p.name for p in plot_run(tmp_path, PlotsParams(dpi=60))}
    assert written == {"weights_inp_exc.png", "receptive_fields_inp_exc.png", "weights_exc_inh.png"}
    img = imread(tmp_path / "plots" / "receptive_fields_inp_exc.png")
    assert img.shape[0] >= 200 and img.shape[1] >= 200


def test_labels_say_units_subsets_and_signed_scales(tmp_path, monkeypatch):
    """A raster of a subset says so, voltages carry their unit, signed fields get a diverging map + colour bar."""
    import snnrun.plots as plots

    figures = {}

    def keep(fig, path, params):
        figures[path.name] = fig
        return path
    monkeypatch.setattr(plots.canvas, "save", keep)
    rng = np.random.default_rng(1)
    sample = {"input/inp": (rng.random((1, 20, 300)) < 0.2).astype(np.uint8),
              "spikes/out": (rng.random((1, 20, 10)) < 0.2).astype(np.uint8),
              "v/out": rng.random((1, 20, 10)).astype(np.float32), "v_unit/out": np.str_("mV"),
              "weight/inp_out": rng.normal(size=(10, 64)).astype(np.float32),
              "source_shape/inp_out": np.asarray([64]), "source_is_input/inp_out": np.bool_(True),
              "input_shape": np.asarray([8, 8]), "time_ms": np.arange(1, 21, dtype=np.float64), "dt": np.float64(1.0)}
    (tmp_path / "monitors").mkdir()
    np.savez(tmp_path / "monitors" / "sample.npz", **sample)
    plot_run(tmp_path, PlotsParams(dpi=40, max_neurons=100, max_fields=4))
    raster_axes = figures["raster.png"].axes
    assert "first 100 of 300" in raster_axes[0].get_ylabel() and "of" not in raster_axes[1].get_ylabel()
    assert figures["membrane.png"].axes[0].get_ylabel().endswith("v (mV)")
    fields = figures["receptive_fields_inp_out.png"]
    image = fields.axes[0].images[0]
    assert image.get_cmap().name == "RdBu_r" and image.norm.vmin == -image.norm.vmax
    assert len(fields.axes) == 2 and fields.axes[1].get_ylabel() == "weight"  # the colour bar
    assert "first 4 of 10" in fields.axes[0].get_title()
