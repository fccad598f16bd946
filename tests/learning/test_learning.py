"""Local learning rules against their definitions (Morrison et al. 2008, Florian 2007, Gütig &
Sompolinsky 2006) and their integration with the runner (several learners, epoch phases)."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf

from snnrun.build import build_experiment
from snnrun.errors import ConfigError
from snnrun.learning import LEARNERS, rules
from snnrun.network import build_network
from snnrun.runner import Runner

TAU_P, TAU_M, A_P, A_M = 16.8, 33.7, 0.8, 0.6


def constants(**kw):
    base = dict(a_plus=A_P, a_minus=A_M, decay_pre=math.exp(-1 / TAU_P), decay_post=math.exp(-1 / TAU_M))
    return rules.StdpConstants(**{**base, **kw})


def run_pair(pre_times, post_times, steps=80, **kw):
    """Drive one synapse with spike trains (step indices, dt = 1 ms); returns the total Δw."""
    c = constants(**kw)
    w = torch.zeros(1, 1, dtype=torch.float64)
    x_pre = torch.zeros(1, 1, dtype=torch.float64)
    x_post = torch.zeros(1, 1, dtype=torch.float64)
    for t in range(steps):
        pre = torch.tensor([[1.0 if t in pre_times else 0.0]], dtype=torch.float64)
        post = torch.tensor([[1.0 if t in post_times else 0.0]], dtype=torch.float64)
        w, x_pre, x_post, _ = rules.stdp_step(w, pre, post, x_pre, x_post, c)
    return w.item()


@pytest.mark.parametrize("mode", ["all_to_all", "nearest"])
@pytest.mark.parametrize("delta", [5, 10, 20, -5, -10, -20])
def test_pair_window_matches_exponentials(delta, mode):
    t0 = 30
    dw = run_pair({t0}, {t0 + delta}, mode=mode)
    expected = A_P * math.exp(-delta / TAU_P) if delta > 0 else -A_M * math.exp(delta / TAU_M)
    assert dw == pytest.approx(expected, abs=1e-9)


def test_same_step_pair_depends_on_order():
    assert run_pair({10}, {10}) == 0.0
    assert run_pair({10}, {10}, order="traces_first") == pytest.approx(A_P - A_M, abs=1e-12)


def test_all_to_all_and_nearest_differ_on_multi_spike_patterns():
    # two pre spikes then one post spike: all-to-all pairs both, nearest only the later one
    full = run_pair({0, 5}, {10}, mode="all_to_all")
    near = run_pair({0, 5}, {10}, mode="nearest")
    assert full == pytest.approx(A_P * (math.exp(-10 / TAU_P) + math.exp(-5 / TAU_P)), abs=1e-12)
    assert near == pytest.approx(A_P * math.exp(-5 / TAU_P), abs=1e-12)
    # one pre between two post spikes, then another post: depression pairs differ too
    full = run_pair({20}, {10, 15}, mode="all_to_all")
    near = run_pair({20}, {10, 15}, mode="nearest")
    assert full == pytest.approx(-A_M * (math.exp(-10 / TAU_M) + math.exp(-5 / TAU_M)), abs=1e-12)
    assert near == pytest.approx(-A_M * math.exp(-5 / TAU_M), abs=1e-12)


def test_lr_pair_scales_depression_and_potentiation():
    assert run_pair({0}, {5}, lr_pre=0.5, lr_post=0.25) == pytest.approx(0.25 * A_P * math.exp(-5 / TAU_P), abs=1e-12)
    assert run_pair({5}, {0}, lr_pre=0.5, lr_post=0.25) == pytest.approx(-0.5 * A_M * math.exp(-5 / TAU_M), abs=1e-12)


@pytest.mark.parametrize("boundary", ["hard", "soft"])
@pytest.mark.parametrize("dependence", ["additive", "multiplicative"])
def test_weights_stay_within_bounds(boundary, dependence):
    g = torch.Generator().manual_seed(0)
    c = constants(a_plus=2.0, a_minus=2.5, w_min=-0.2, w_max=0.7, boundary=boundary, weight_dependence=dependence)
    w = torch.rand(5, 7, generator=g, dtype=torch.float64) * 0.9 - 0.2
    x_pre, x_post = torch.zeros(3, 7, dtype=torch.float64), torch.zeros(3, 5, dtype=torch.float64)
    moved = False
    for _ in range(200):
        pre = (torch.rand(3, 7, generator=g) < 0.3).double()
        post = (torch.rand(3, 5, generator=g) < 0.3).double()
        new, x_pre, x_post, _ = rules.stdp_step(w, pre, post, x_pre, x_post, c)
        moved |= bool((new != w).any())
        w = new
        assert w.min() >= -0.2 - 1e-12 and w.max() <= 0.7 + 1e-12
    assert moved


def test_soft_boundary_approaches_but_never_reaches_bound():
    c = constants(w_min=0.0, w_max=1.0, boundary="soft")
    w = torch.tensor([0.5], dtype=torch.float64)
    w = rules.apply_update(w, torch.tensor([3.0], dtype=torch.float64), c)
    assert w.item() == pytest.approx(1 - 0.5 * math.exp(-3.0)) and w.item() < 1.0


def test_multiplicative_potentiation_vanishes_at_w_max():
    c = constants(w_min=0.0, w_max=1.0, weight_dependence="multiplicative")
    w = torch.tensor([[1.0, 0.25]], dtype=torch.float64)
    pre, post = torch.zeros(1, 2, dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64)
    new, *_ = rules.stdp_step(w, pre, post, torch.ones(1, 2, dtype=torch.float64) / c.decay_pre,
                              torch.zeros(1, 1, dtype=torch.float64), c)
    assert new[0, 0].item() == 1.0 and new[0, 1].item() == pytest.approx(0.25 + A_P * 0.75)


def test_weight_decay_is_exponential():
    c = constants(decay_weight=math.exp(-0.01 * 1.0))
    w = torch.ones(1, dtype=torch.float64)
    for _ in range(10):
        w = rules.apply_update(w, torch.zeros(1, dtype=torch.float64), c)
    assert w.item() == pytest.approx(math.exp(-0.1), abs=1e-12)


def test_normalisation_keeps_postsynaptic_sums():
    w = torch.rand(4, 9, dtype=torch.float64)
    assert torch.allclose(rules.normalise(w, 78.0).sum(1), torch.full((4,), 78.0, dtype=torch.float64))
    k = torch.rand(3, 2, 3, 3, dtype=torch.float64)
    assert torch.allclose(rules.normalise(k, 5.0).reshape(3, -1).sum(1), torch.full((3,), 5.0, dtype=torch.float64))


def test_reduction_mean_divides_by_batch():
    c_sum, c_mean = constants(), constants(reduction="mean")
    pre = torch.zeros(4, 1, dtype=torch.float64)
    post = torch.ones(4, 1, dtype=torch.float64)
    x = torch.ones(4, 1, dtype=torch.float64)
    w0 = torch.zeros(1, 1, dtype=torch.float64)
    s = rules.stdp_step(w0, pre, post, x, x * 0, c_sum)[0]
    m = rules.stdp_step(w0, pre, post, x, x * 0, c_mean)[0]
    assert s.item() == pytest.approx(4 * m.item()) and m.item() == pytest.approx(A_P * c_sum.decay_pre)


def test_conv2d_stdp_shares_weights():
    g = torch.Generator().manual_seed(1)
    outer = rules.conv2d_outer(kernel_size=3, stride=1, padding=1)
    post = (torch.rand(2, 4, 5, 5, generator=g) < 0.3).double()
    pre = torch.rand(2, 2, 5, 5, generator=g, dtype=torch.float64)
    dw = outer(post, pre)
    padded = torch.nn.functional.pad(pre, (1, 1, 1, 1))
    ref = torch.zeros(4, 2, 3, 3, dtype=torch.float64)
    for b in range(2):
        for y in range(5):
            for x in range(5):
                ref += post[b, :, y, x].reshape(4, 1, 1, 1) * padded[b, :, y:y + 3, x:x + 3].unsqueeze(0)
    assert torch.allclose(dw, ref)


# --- learner classes on a network ----------------------------------------------------------

def tiny_network(n_in=3, n_out=2, synapse=None):
    node = {"dt": 1.0, "duration": 10.0,
            "populations": {"inp": {"shape": n_in}, "out": {"shape": n_out}},
            "projections": {"w": {"from": "inp", "to": "out", "synapse": synapse or {"name": "dense", "init": "constant", "value": 0.5}}}}
    return build_network(node, {"name": "lif"}, (n_in,))


def drive(learner, pattern, batch=1):
    """Call the learner's step hook with pre spikes at step 0 and post spikes at step 3."""
    learner.begin_sample(batch)
    for t in range(8):
        pre = torch.zeros(batch, 3)
        post = torch.zeros(batch, 2)
        if t == pattern[0]:
            pre[:, 0] = 1
        if t == pattern[1]:
            post[:, 1] = 1
        learner.on_step(t, {"inp": pre, "out": post}, {})


def test_stdp_learner_updates_only_the_paired_synapse_and_normalises():
    net = tiny_network()
    cls, p = LEARNERS.parse({"name": "stdp", "a_plus": 0.1, "tau_plus": 10.0}, "learner")
    learner = cls(p, network=net, key="learner")
    drive(learner, (0, 3))
    w = net.projections["w"].stages[0].weight.detach()
    assert w[1, 0].item() == pytest.approx(0.5 + 0.1 * math.exp(-0.3), rel=1e-6)
    assert torch.count_nonzero(w != 0.5) == 1
    cls, p = LEARNERS.parse({"name": "stdp", "w_norm": 3.0}, "learner")
    cls(p, network=net, key="learner").begin_sample(1)
    assert torch.allclose(net.projections["w"].stages[0].weight.sum(1), torch.full((2,), 3.0))


def test_aliases_and_bad_trainable():
    assert LEARNERS.parse({"name": "nearest_online_stdp"}, "learner")[1].mode == "nearest"
    assert LEARNERS.parse({"name": "full_online_stdp"}, "learner")[1].mode == "all_to_all"
    assert LEARNERS.parse({"name": "postpre"}, "learner")[1].order == "traces_first"
    cls, p = LEARNERS.parse({"name": "stdp", "trainable": ["out"]}, "learners.f")
    with pytest.raises(ConfigError, match=r"^learners.f.trainable: 'out' is a population"):
        cls(p, network=tiny_network(), key="learners.f")


def reward_step(name, correct: bool, **extra):
    net = tiny_network()
    cls, p = LEARNERS.parse({"name": name, "a_plus": 0.1, "a_minus": 0.1, **extra}, "learner")
    learner = cls(p, network=net, key="learner")
    drive(learner, (0, 3))
    scores = torch.tensor([[0.0, 1.0]])
    metrics = learner.end_sample(scores, torch.tensor([1 if correct else 0]))
    return net.projections["w"].stages[0].weight.detach()[1, 0].item() - 0.5, metrics


def test_reward_sign_flips_mstdp():
    up, m_up = reward_step("mstdp", True)
    down, m_down = reward_step("mstdp", False)
    assert up == pytest.approx(0.1 * math.exp(-3 / 20), rel=1e-6)
    assert down == pytest.approx(-up, rel=1e-6)
    assert m_up == {"reward": 1.0} and m_down == {"reward": -1.0}


def test_mstdpet_integrates_the_eligibility_trace():
    # pure step: one pair term ζ = c at step 0, constant reward r: Σ_t γ r e(t) dt
    tau_c, c, r, gamma = 25.0, 0.3, 2.0, 0.5
    decay = math.exp(-1 / tau_c)
    e, total = torch.zeros(1, dtype=torch.float64), 0.0
    for t in range(200):
        e = rules.eligibility_step(e, torch.tensor([c if t == 0 else 0.0], dtype=torch.float64), decay, tau_c)
        total += gamma * r * e.item() * 1.0
    assert total == pytest.approx(gamma * r * c / tau_c * (1 - decay ** 200) / (1 - decay), rel=1e-12)
    # learner: pair at step 3 (ζ = A+ e^{-3/τ+}), 8 steps simulated, reward +1
    dw, _ = reward_step("mstdpet", True, tau_c=tau_c)
    zeta = 0.1 * math.exp(-3 / 20)
    expected = zeta / tau_c * sum(decay ** k for k in range(8 - 3))
    assert dw == pytest.approx(expected, rel=1e-6)
    assert reward_step("mstdpet", False, tau_c=tau_c)[0] == pytest.approx(-expected, rel=1e-6)


def test_reward_switch_uses_anti_stdp_on_punishment():
    up, _ = reward_step("reward_switch_stdp", True)
    down, _ = reward_step("reward_switch_stdp", False, a_plus_punish=0.2)
    assert up == pytest.approx(0.1 * math.exp(-3 / 20), rel=1e-6)
    assert down == pytest.approx(-0.2 * math.exp(-3 / 20), rel=1e-6)


def test_tempotron_potentiates_on_miss_and_depresses_on_false_alarm():
    net = tiny_network()
    cls, p = LEARNERS.parse({"name": "tempotron", "learning_rate": 0.1}, "learner")
    learner = cls(p, network=net, key="learner")
    drive(learner, (0, 3))  # output 1 fires, output 0 does not
    learner.end_sample(torch.zeros(1, 2), torch.tensor([0]))  # label 0: output 0 missed, output 1 false alarm
    w = net.projections["w"].stages[0].weight.detach()
    assert w[0, 0].item() > 0.5 and w[1, 0].item() < 0.5
    assert w[0, 1].item() == 0.5  # input 1 never spiked
    # K peaks at 1 and is smaller elsewhere: |Δw| <= λ
    assert abs(w[0, 0].item() - 0.5) <= 0.1 + 1e-6


def test_stdp_then_supervised_readout_in_one_config(tiny_cfg, tmp_path):
    cfg = tiny_cfg("trainer.epochs=2", "+learner.epochs=[2,2]", "learner.trainable=[hidden_out]",
                   "+learners.features.name=stdp", "+learners.features.trainable=[inp_hidden]",
                   "+learners.features.epochs=[1,1]", "+learners.features.a_plus=0.01",
                   "+learners.features.a_minus=0.01", "data.train_size=64", "data.test_size=32", "network.duration=4")
    exp = build_experiment(cfg)
    assert [type(lr).__name__ for lr in exp.learners] == ["BPTT", "STDP"]
    runner = Runner(exp, tmp_path, OmegaConf.to_yaml(cfg))
    proj = exp.network.projections
    before = {n: proj[n].stages[0].weight.detach().clone() for n in ("inp_hidden", "hidden_out")}
    exp.trainer.epochs = 1
    runner.fit()
    after1 = {n: proj[n].stages[0].weight.detach().clone() for n in before}
    assert not torch.equal(after1["inp_hidden"], before["inp_hidden"])  # STDP learned in epoch 1
    assert torch.equal(after1["hidden_out"], before["hidden_out"])  # readout idle in epoch 1
    exp.trainer.epochs = 2
    runner.fit(resume=True)
    assert torch.equal(proj["inp_hidden"].stages[0].weight.detach(), after1["inp_hidden"])
    assert not torch.equal(proj["hidden_out"].stages[0].weight.detach(), after1["hidden_out"])


def test_two_gradient_learners_rejected(tiny_cfg):
    cfg = tiny_cfg("+learners.other.name=bptt")
    with pytest.raises(ConfigError, match=r"^learners.other: only one gradient learner"):
        build_experiment(cfg)


def test_stdp_learner_on_conv2d_projection_matches_shared_weight_rule():
    node = {"dt": 1.0, "duration": 6.0,
            "populations": {"inp": {"shape": [1, 6, 6]}, "fm": {"shape": [2, 4, 4]}},
            "projections": {"c": {"from": "inp", "to": "fm", "synapse": {"name": "conv2d", "channels": 2, "kernel_size": 3,
                                                                           "init": "constant", "value": 0.3}}}}
    net = build_network(node, {"name": "lif", "v_th": 0.5, "r": 20.0}, (1, 6, 6))
    cls, p = LEARNERS.parse({"name": "stdp", "a_plus": 0.01, "a_minus": 0.01}, "learner")
    learner = cls(p, network=net, key="learner")
    w0 = net.projections["c"].stages[0].weight.detach().clone()
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(6, 1, 1, 6, 6, generator=g) < 0.5).float()
    learner.begin_sample(1)
    net.step_hook = learner.on_step
    out = net(x)
    net.step_hook = None
    # replay with the pure rule on the recorded spikes
    c = learner.constants(learner.targets["c"])
    w, xp, xq = w0, torch.zeros(1, 1, 6, 6), torch.zeros(1, 2, 4, 4)
    for t in range(6):
        w, xp, xq, _ = rules.stdp_step(w, x[t], out.spikes["fm"][t], xp, xq, c, rules.conv2d_outer(3, 1, 0))
    assert out.spikes["fm"].sum() > 0
    assert torch.allclose(net.projections["c"].stages[0].weight.detach(), w, atol=1e-6)
    assert not torch.equal(w, w0)


def test_stdp_readout_experiment_trains_a_leaky_readout_after_stdp(tmp_path):
    # experiment=stdp_readout: STDP in epoch 1, then BPTT on hidden_out only; the leaky readout's summed
    # voltage gives the readout a gradient even before it has learned anything (a silent spiking
    # readout would keep the loss at exactly ln C).
    from conftest import compose_config

    cfg = compose_config(["experiment=stdp_readout", "data=synthetic", "data.train_size=256", "data.test_size=64",
                          "network.duration=10", "network.populations.hidden.shape=64", "trainer.epochs=4",
                          "learner.epochs=[2,4]", "optimizer.lr=0.03", "trainer.progress=false", "device=cpu",
                          "plots=off", "monitors=off"])
    exp = build_experiment(cfg)
    assert [type(lr).__name__ for lr in exp.learners] == ["BPTT", "STDP"]
    summary = Runner(exp, tmp_path, OmegaConf.to_yaml(cfg)).fit()
    assert summary["final"]["test/loss"] < math.log(4) - 0.3
    assert summary["final"]["test/accuracy"] > 0.6  # 4 classes: chance is 0.25
