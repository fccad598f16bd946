"""The pairing-protocol task: the measured window equals the rule's analytic window."""

from __future__ import annotations

import csv
import json
import math

import pytest

from snnrun.tasks.stdp_window import ProtocolParams, measure_window
from snnrun.tasks import get_task

from conftest import compose_config


def test_stdp_window_equals_exponentials_times_pairings():
    p = ProtocolParams(dt_min=-20, dt_max=20, dt_step=10, pairings=2, frequency=1.0)
    rows = dict(measure_window({"name": "stdp", "a_plus": 0.01, "a_minus": 0.02, "tau_plus": 15.0,
                                "tau_minus": 30.0}, p, dt=1.0))
    assert sorted(rows) == [-20, -10, 0, 10, 20]
    for dt_ms in (10, 20):
        assert rows[dt_ms] == pytest.approx(2 * 0.01 * math.exp(-dt_ms / 15.0), rel=1e-9)
        assert rows[-dt_ms] == pytest.approx(-2 * 0.02 * math.exp(-dt_ms / 30.0), rel=1e-9)
    assert rows[0] == pytest.approx(0.0, abs=1e-12)  # same-step pairs do not interact (weights_first)


def test_mstdp_window_has_the_stdp_shape_under_positive_reward():
    p = ProtocolParams(dt_min=-10, dt_max=10, dt_step=10, pairings=2, frequency=1.0)
    rows = dict(measure_window({"name": "mstdp", "a_plus": 0.01, "a_minus": 0.01}, p, dt=1.0))
    assert rows[10] == pytest.approx(2 * 0.01 * math.exp(-0.5), rel=1e-9)
    assert rows[-10] == pytest.approx(-2 * 0.01 * math.exp(-0.5), rel=1e-9)


def test_task_writes_csv_and_summary(tmp_path):
    cfg = compose_config(["experiment=stdp_window", "learner=postpre", "protocol.dt_step=25", "protocol.pairings=2"])
    summary = get_task("stdp_window").run(cfg, tmp_path, False)
    rows = list(csv.DictReader(open(tmp_path / "stdp_window.csv")))
    assert [float(r["dt_ms"]) for r in rows] == [-50, -25, 0, 25, 50]
    assert float(rows[3]["dw"]) > 0 > float(rows[1]["dw"])
    assert json.loads((tmp_path / "summary.json").read_text())["learner"] == "postpre" == summary["learner"]


def test_gradient_learner_is_rejected(tmp_path):
    from snnrun.errors import ConfigError

    cfg = compose_config(["experiment=stdp_window", "learner=bptt"])
    with pytest.raises(ConfigError, match=r"^learner.name: 'bptt' is a gradient learner"):
        get_task("stdp_window").run(cfg, tmp_path, False)
