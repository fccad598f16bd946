"""Diehl & Cook variants side by side: snnrun's compiled step engine vs BindsNET 0.3.4, learning throughput.

What is compared: samples/s with learning on, batch 1, 250 steps of 1 ms, one torch thread, for the
variants of ``scripts/bench_step_engine.py`` that BindsNET can express. The snnrun side of each is
exactly that script's ``variant(name, neurons, steps)`` network (imported, not rebuilt here) run as its
``measure()`` does: ``snnrun.engine.CompiledNetwork(exp.network.double(), exp.learners, "compiled")``
and ``model.sample(x, True)`` per sample (float64). Both sides run the same Poisson trains
(``input_trains`` of bench_step_engine: mnist_6k digits from $SNNRUN_MNIST_NPZ, default
``../shared/data/mnist_6k.npz`` beside the checkout, spike probability pixel/255 * 63.75 Hz * 1 ms per step; random trains
when the file is missing), generated before timing; they are cycled through a pool of ``--pool``
trains, in the same order on both sides. Timing alternates chunks in this one process (snnrun chunk of
``--snnrun-factor`` x ``--chunk-size`` samples, then a BindsNET chunk of ``--chunk-size`` samples,
``--chunks`` times) per variant, after a 2-sample warm-up of each, so both see the same machine load.

How the BindsNET networks are built: not by hand-copying parameters but by translating the built snnrun
experiment (``bindsnet_network`` below): one ``Network(dt=1)`` layer per snnrun population, added in
snnrun's topological order, one ``Connection`` per projection with snnrun's *initial weights copied*
(dense ``[out, in]`` transposed; ``one_to_one`` as a diagonal matrix and ``lateral_inhibition`` as
``w (1 - I)``, dense, as BindsNET's own ``DiehlAndCook2015`` does). Populations map as

- ``diehlandcook`` -> ``DiehlAndCookNodes`` (same v_th, v_rest, v_reset, tau_m, theta_plus, tau_theta,
  refractory steps; ``one_spike=False`` as in the snnrun variant; exact decay and voltage-jump input in
  both);
- ``lif`` (forward Euler ``v += dt/tau_m (-(v - v_rest) + r I)``) -> ``LIFNodes`` with
  ``tc_decay = -dt / ln(1 - dt/tau_m)`` (so its per-step decay equals Euler's ``1 - dt/tau_m``) and the
  voltage axis rescaled about v_rest by the input gain ``g = r dt/tau_m`` (thresh and reset become
  ``v_rest + (v_th - v_rest)/g`` ...), which makes ``v += w s`` exact without touching the weights
  (the D&C inhibitory layer has g = 1, so it is unchanged; ``ei_recurrent``'s exc has thresh 10 and inh
  thresh 5);
- ``alif`` -> ``AdaptiveLIFNodes``, same decay and rescaling, ``tc_theta_decay = tau_a`` and
  ``theta_plus = beta (1 - rho) / (rho g)``, ``rho = exp(-dt/tau_a)`` (BindsNET decays theta before the
  threshold test, snnrun after it: the 1/rho makes the threshold sequences equal);
- ``adex`` and anything else: not expressible (BindsNET 0.3.4's node types: Input, McCullochPitts,
  IFNodes, LIFNodes, BoostedLIFNodes, CurrentLIFNodes, AdaptiveLIFNodes, DiehlAndCookNodes,
  IzhikevichNodes, CSRMNodes, SRM0Nodes; no AdEx), so ``dc_adex`` is reported, not measured.

snnrun's ``stdp`` learner maps to ``PostPre`` (additive) or ``WeightDependentPostPre``
(``weight_dependence: multiplicative``: LTP x (w_max - w), LTD x (w - w_min), as snnrun's soft bounds),
``nu = (lr_pre a_minus, lr_post a_plus)``, the learner's [w_min, w_max] as the connection's wmin/wmax,
``mode: all_to_all`` as ``traces_additive=True`` on the source and target layers (``nearest``:
False), tc_trace = tau_plus / tau_minus (20 ms), ``w_norm`` as ``norm`` (BindsNET renormalises after
each ``run``, snnrun before each sample; the BindsNET weights are normalised once at build so both
start a sample from normalised weights). Each sample is ``net.run(inputs, time=250, one_step=True)``
then ``net.reset_state_variables()``: ``one_step=True`` updates the layers in the order added, each
from the current spikes of the layers before it, so a feed-forward projection acts within the step and
a back edge (inh -> exc, exc -> exc) carries the previous step's spikes, as in snnrun (BindsNET's
default delays every projection by one step; ``--bindsnet-mode default`` measures that; one_step costs
a little more Python per step). For ``AdaptiveLIFNodes`` the runner also zeroes theta between samples
(``reset_sample``), as snnrun resets its ``alif`` adaptation (BindsNET would keep it). BindsNET runs
float32, snnrun float64. ``--bindsnet-connection mcc`` builds the projections BindsNET's
``MulticompartmentConnection`` can express (static ones, additive ``PostPre``) that way instead, as its
``DiehlAndCook2015`` does; weight-dependent and masked projections stay ``Connection``.

The variants (N = ``--neurons`` = 100: bench_step_engine's default sizes):

1. ``dc_a2a_mult``: D&C (784 -> exc 100 ``diehlandcook`` <-> inh 100 ``lif``, exc->inh one-to-one 22.5,
   inh->exc lateral -60), all-to-all traces, multiplicative bounds, w_norm 78.4. BindsNET: the topology
   of its ``DiehlAndCook2015`` (X ``Input``, Ae ``DiehlAndCookNodes``, Ai ``LIFNodes``), but with the
   snnrun variant's parameters (inh -60 not 17.5, theta_plus 0.1 not 0.05, one_spike off, Ai decay
   0.9 not exp(-0.1)) and built from plain ``Connection``: 0.3.4's ``DiehlAndCook2015`` uses
   ``MulticompartmentConnection`` whose rules (``bindsnet.learning.MCC_learning``: PostPre, Hebbian,
   DiehlAndCook, MSTDP, MSTDPET) have no weight-dependent STDP, while ``WeightDependentPostPre``
   accepts ``Connection``. Input->exc is ``WeightDependentPostPre`` with ``traces_additive=True``.
2. ``stacked``: inp -> exc <-> inh -> exc2 <-> inh2 (exc2/inh2 copies of exc/inh, exc->exc2 dense
   U[5, 15], inh2->exc2 lateral -30), ``PostPre`` (nearest traces) on inp->exc and exc->exc2, both
   clamped to [0, 20] (the learner's bounds, as on the snnrun side), no normalisation.
3. ``ei_recurrent``: 80 exc ``lif`` (tau 10, refractory 2) / 20 inh ``lif`` (tau 5), inp->exc, exc->exc
   (no self connections), exc->inh, inh->exc dense; ``WeightDependentPostPre`` with all-to-all traces on
   exc->exc, [0, 0.1]. The diagonal is kept at 0 by a per-synapse ``wmax`` tensor (0 on the diagonal).
4. ``dc_alif``: D&C with an ``alif`` excitatory layer (tau_m 10, beta 0.5, tau_a 50, refractory 3,
   inh->exc -1, w_norm 20, nearest ``PostPre``) -> ``AdaptiveLIFNodes``.
5. ``dc_adex``: not expressible.

What still differs (BindsNET cannot express it; none changes the per-step work much):

- STDP order: BindsNET updates the weights after this step's spikes were added to the traces, i.e.
  snnrun's ``order: traces_first`` (the D&C variants and ``stacked``); ``ei_recurrent`` uses
  ``weights_first``, so BindsNET also pairs same-step spikes there. On a back edge (exc->exc) snnrun's
  rule pairs the *delivered* (previous-step) presynaptic spikes, BindsNET the current ones.
- Refractory LIF/ALIF: snnrun holds v at v_reset, BindsNET masks the input and lets v decay towards
  v_rest (identical when v_reset == v_rest: ``ei_recurrent``, ``dc_alif``; the D&C inh layer has
  v_reset -45, v_rest -60).
- ``alif``: snnrun's soft reset ``v -= A - v_reset`` vs BindsNET's hard reset to v_reset (the next
  steps are refractory and held at v_reset anyway); BindsNET's theta adapts only while learning (on
  here).
- One-to-one and lateral-inhibition projections are dense matrices in BindsNET (as in its
  ``DiehlAndCook2015``); snnrun has dedicated kernels for them.

Check of the translation (during development, same initial weights and trains, learning on, spike
counts of the output population per sample over 5 samples): identical on both sides for ``dc``,
``dc_a2a_mult`` and ``stacked`` (mnist trains) and for ``dc_alif`` (random trains at p = 0.05 and
0.2 per step); ``ei_recurrent`` within 1 % (random trains, p = 0.05 and 0.2: the STDP order above). The
per-variant line printed below gives the output spikes per sample of each side (snnrun: mean over its
timed samples; BindsNET: ``--spike-samples`` extra untimed samples) as a reminder of the activity: on
the mnist trains ``ei_recurrent`` and ``dc_alif`` as defined in bench_step_engine are silent (0 output
spikes) on both sides, so there the learning work is trace decay and the bounds, not pair updates.

Usage (one torch thread; the machine should be otherwise idle)::

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_variants_bindsnet.py --chunks 3 --chunk-size 10

BindsNET must be installed (``pip install --no-deps bindsnet==0.3.4``); its torchvision import is
stubbed with ``stub_torchvision`` of scripts/bench_diehl_cook.py.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import datetime  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import bench_step_engine  # noqa: E402
from bench_diehl_cook import stub_torchvision  # noqa: E402
from bench_step_engine import N_IN, input_trains, variant  # noqa: E402
from snnrun.build import build_experiment  # noqa: E402
from snnrun.engine import CompiledNetwork  # noqa: E402

VARIANTS = ["dc_a2a_mult", "stacked", "ei_recurrent", "dc_alif", "dc_adex"]


class NotExpressible(Exception):
    """The snnrun network uses something BindsNET 0.3.4 has no counterpart for."""


def _import_bindsnet():
    """``import bindsnet`` behind ``stub_torchvision`` (which must run once only: a second call fails)."""
    if "bindsnet" not in sys.modules:
        stub_torchvision()
    import bindsnet

    return bindsnet


# --- snnrun -> BindsNET translation -------------------------------------------------------------------

def _euler_lif_map(p, dt: float) -> dict:
    """LIFNodes/AdaptiveLIFNodes arguments reproducing snnrun's Euler LIF step ``v += dt/tau (-(v - v_rest)
    + r I)`` with ``v += w s`` input: per-step decay 1 - dt/tau, voltages rescaled about v_rest by the
    input gain g = r dt/tau. Returns the arguments and g."""
    if getattr(p, "integration", "euler") != "euler":
        raise NotExpressible(f"integration {p.integration!r} (mapped: euler)")
    if getattr(p, "escape_noise", False):
        raise NotExpressible("escape_noise")
    a = dt / p.tau_m
    if not 0 < a < 1:
        raise NotExpressible(f"dt/tau_m = {a} (Euler decay 1 - dt/tau_m must be in (0, 1))")
    g = p.r * a

    def scale(v: float) -> float:
        return p.v_rest + (v - p.v_rest) / g

    return {"rest": p.v_rest, "thresh": scale(p.v_th), "reset": scale(p.v_reset), "tc_decay": -dt / math.log(1 - a)}, g


def _layer(pop, dt: float, traces: bool, additive: bool, tc_trace: float):
    from bindsnet.network.nodes import AdaptiveLIFNodes, DiehlAndCookNodes, Input, LIFNodes

    n = int(math.prod(pop.shape))
    common = {"n": n, "traces": traces, "traces_additive": additive, "tc_trace": tc_trace}
    neuron = pop.neuron
    if neuron is None:
        return Input(**common)
    kind = type(neuron).__name__
    p = neuron.params
    refrac = int(getattr(neuron, "refrac_steps", round(p.refractory / dt)))
    if kind == "DiehlAndCook":
        if p.r != 1.0 or p.reset != "hard" or getattr(p, "escape_noise", False):
            raise NotExpressible("diehlandcook with r != 1, soft reset or escape noise")
        return DiehlAndCookNodes(**common, thresh=p.v_th, rest=p.v_rest, reset=p.v_reset, refrac=refrac,
                                 tc_decay=p.tau_m, theta_plus=p.theta_plus, tc_theta_decay=p.tau_theta,
                                 one_spike=bool(p.one_spike))
    if kind == "LIF":
        if p.reset != "hard":
            raise NotExpressible("lif with soft reset")
        args, _ = _euler_lif_map(p, dt)
        return LIFNodes(**common, refrac=refrac, **args)
    if kind == "ALIF":
        args, g = _euler_lif_map(p, dt)
        rho = math.exp(-dt / p.tau_a)
        return AdaptiveLIFNodes(**common, refrac=refrac, theta_plus=p.beta * (1 - rho) / (rho * g),
                                tc_theta_decay=p.tau_a, **args)
    raise NotExpressible(f"population {pop.name!r}: snnrun neuron {kind!r} has no BindsNET 0.3.4 node type")


def bindsnet_network(exp, connection: str = "connection"):
    """A BindsNET ``Network`` equivalent to ``exp.network`` + its STDP learners, as far as BindsNET allows
    (module docstring); its initial weights are copies of snnrun's. Call before snnrun learns.
    ``connection="mcc"``: ``MulticompartmentConnection`` + ``Weight`` (+ the MCC ``PostPre``), as BindsNET's
    own ``DiehlAndCook2015``, wherever that can express the projection (not weight-dependent STDP, not
    a masked recurrent matrix: those stay ``Connection``)."""
    _import_bindsnet()
    from bindsnet.learning import PostPre, WeightDependentPostPre
    from bindsnet.learning.MCC_learning import PostPre as MCCPostPre
    from bindsnet.network import Network
    from bindsnet.network.topology import Connection, MulticompartmentConnection
    from bindsnet.network.topology_features import Weight

    snet = exp.network
    dt = float(snet.dt)
    rules = {}  # projection name -> (learner params, constants)
    for learner in exp.learners:
        if type(learner).__name__ != "STDP" or not getattr(learner, "local", False):
            raise NotExpressible(f"learner {type(learner).__name__}")
        for name, target in learner.targets.items():
            rules[name] = (learner.params, learner.constants(target))
    trace_mode: dict[str, bool] = {}
    trace_tau: dict[str, float] = {}
    for name, (params, c) in rules.items():
        if c.boundary != "hard" or c.decay_weight != 1.0 or params.norm_every != "sample":
            raise NotExpressible(f"{name}: soft boundary, weight decay or per-step normalisation")
        proj = snet.projections[name]
        for pop, tau in ((proj.source, params.tau_plus), (proj.target, params.tau_minus)):
            additive = c.mode == "all_to_all"
            if trace_mode.setdefault(pop, additive) != additive or trace_tau.setdefault(pop, tau) != tau:
                raise NotExpressible(f"population {pop!r} needs two trace kinds")
    net = Network(dt=dt, batch_size=1, learning=True)
    for pop in snet.order:
        net.add_layer(_layer(snet.populations[pop], dt, pop in trace_mode, trace_mode.get(pop, False),
                             trace_tau.get(pop, 20.0)), name=pop)
    for name, proj in snet.projections.items():
        if len(proj.stages) != 1:
            raise NotExpressible(f"projection {name!r} has {len(proj.stages)} stages")
        stage = proj.stages[0]
        kind = type(stage).__name__
        sp = getattr(stage, "params", None)
        n_src, n_tgt = net.layers[proj.source].n, net.layers[proj.target].n
        lo, hi = getattr(sp, "w_min", None), getattr(sp, "w_max", None)
        with torch.no_grad():
            if kind in ("Dense", "Recurrent"):
                if getattr(sp, "bias", False):
                    raise NotExpressible(f"{name}: bias")
                w = stage.weight.detach().t().to(torch.float32).contiguous()  # [in, out], row-major
                if hasattr(stage, "mask"):
                    w = w * stage.mask.detach().t().to(torch.float32)
                w = w.clone().contiguous()
            elif kind == "OneToOne":
                w = torch.diag(stage.weight.detach().to(torch.float32).expand(n_tgt).clone())
            elif kind == "LateralInhibition":
                w = float(sp.weight) * (torch.ones(n_src, n_tgt) - torch.eye(n_src))
            else:
                raise NotExpressible(f"projection {name!r}: snnrun synapse {kind!r}")
        kwargs = {"w": w}
        if name in rules:
            params, c = rules[name]
            lo, hi = c.w_min, c.w_max
            kwargs.update(update_rule=WeightDependentPostPre if c.weight_dependence == "multiplicative" else PostPre,
                          nu=(c.lr_pre * c.a_minus, c.lr_post * c.a_plus), norm=params.w_norm)
        if lo is not None:
            kwargs["wmin"] = lo
        if hi is not None:
            kwargs["wmax"] = hi
        masked = kind == "Recurrent" and hasattr(stage, "mask")
        if masked:  # no self connections: keep the masked weights at 0
            mask = stage.mask.detach().t().to(torch.float32).contiguous()
            for key in ("wmin", "wmax"):
                if key in kwargs:
                    kwargs[key] = kwargs[key] * mask
        src, tgt = net.layers[proj.source], net.layers[proj.target]
        if connection == "mcc" and not masked and kwargs.get("update_rule", MCCPostPre) is not WeightDependentPostPre:
            feature = {"value": w, "value_dtype": torch.float32,
                       "range": [kwargs.get("wmin", -torch.inf), kwargs.get("wmax", torch.inf)]}
            if "update_rule" in kwargs:
                feature.update(learning_rule=MCCPostPre, nu=kwargs["nu"], norm=kwargs["norm"])
            conn = MulticompartmentConnection(src, tgt, device="cpu", pipeline=[Weight("weight", **feature)])
        else:
            conn = Connection(src, tgt, **kwargs)
        net.add_connection(conn, source=proj.source, target=proj.target)
    for conn in net.connections.values():
        conn.normalize()  # snnrun normalises before the first sample; BindsNET after each run
    return net


def reset_sample(net) -> None:
    """Between samples: ``net.reset_state_variables()``, and the adaptive thresholds of
    ``AdaptiveLIFNodes`` back to 0 (BindsNET keeps them across samples; snnrun's ``alif`` adaptation is
    per-sample state, unlike the persistent theta of ``diehlandcook`` / ``DiehlAndCookNodes``)."""
    net.reset_state_variables()
    for layer in net.layers.values():
        if type(layer).__name__ == "AdaptiveLIFNodes":
            layer.theta.zero_()


# --- runners --------------------------------------------------------------------------------------------

def snnrun_runner(exp, trains: list[torch.Tensor]):
    model = CompiledNetwork(exp.network.double(), exp.learners, "compiled")
    if model.backend != "compiled":
        raise SystemExit(f"compiled path not available: {model.reason}")
    state = {"i": 0, "outputs": []}  # the output spike counts of each sample, summed after the timing

    def run(count: int) -> None:
        for _ in range(count):
            state["outputs"].append(model.sample(trains[state["i"] % len(trains)], True))
            state["i"] += 1

    return run, state


def bindsnet_runner(net, trains: list[torch.Tensor], steps: int, one_step: bool):
    inp = [name for name, layer in net.layers.items() if type(layer).__name__ == "Input"]
    if len(inp) != 1:
        raise NotExpressible(f"{len(inp)} input layers")
    name = inp[0]
    views = [x.reshape(steps, 1, -1) for x in trains]  # [time, batch, n] bool, as BindsNET's encoders give
    state = {"i": 0}

    def run(count: int) -> None:
        for _ in range(count):
            net.run(inputs={name: views[state["i"] % len(views)]}, time=steps, one_step=one_step)
            reset_sample(net)
            state["i"] += 1

    return run, state


def bindsnet_spikes(net, layer: str, trains: list[torch.Tensor], steps: int, one_step: bool, count: int) -> float:
    """Mean spikes of ``layer`` per sample over ``count`` more samples (a monitor, outside the timing)."""
    from bindsnet.network.monitors import Monitor

    inp = next(name for name, nodes in net.layers.items() if type(nodes).__name__ == "Input")
    monitor = Monitor(net.layers[layer], state_vars=("s",), time=steps)
    net.add_monitor(monitor, name="_count")
    total = 0
    for i in range(count):
        net.run(inputs={inp: trains[i % len(trains)].reshape(steps, 1, -1)}, time=steps, one_step=one_step)
        total += int(monitor.get("s").sum())
        reset_sample(net)
    del net.monitors["_count"]
    return total / count


def bench(name: str, args, trains: list[torch.Tensor]) -> dict:
    cfg = variant(name, args.neurons, args.steps)
    torch.manual_seed(0)
    exp = build_experiment(copy.deepcopy(cfg))
    try:
        net = bindsnet_network(exp, args.bindsnet_connection)  # before snnrun learns: copies its initial weights
    except NotExpressible as err:
        return {"name": name, "expressible": False, "why": str(err)}
    out = exp.network.outputs[0] if hasattr(exp.network, "outputs") else "exc"
    one_step = args.bindsnet_mode == "one_step"
    runners = {"snnrun": snnrun_runner(exp, trains), "bindsnet": bindsnet_runner(net, trains, args.steps, one_step)}
    sizes = {"snnrun": args.chunk_size * args.snnrun_factor, "bindsnet": args.chunk_size}
    for run, _ in runners.values():  # warm-up (the engine build, first allocations)
        run(2)
    runners["snnrun"][1]["outputs"].clear()
    totals = {k: [0, 0.0] for k in runners}
    for _ in range(args.chunks):
        for key, (run, _) in runners.items():
            start = time.perf_counter()
            run(sizes[key])
            totals[key][1] += time.perf_counter() - start
            totals[key][0] += sizes[key]
    rates = {k: count / seconds for k, (count, seconds) in totals.items()}
    outputs = runners["snnrun"][1]["outputs"]
    return {"name": name, "expressible": True, "snnrun": rates["snnrun"], "bindsnet": rates["bindsnet"],
            "ratio": rates["snnrun"] / rates["bindsnet"], "out": out,
            "snnrun_spikes": float(sum(int(o.sum()) for o in outputs)) / max(len(outputs), 1),
            "bindsnet_spikes": bindsnet_spikes(net, out, trains, args.steps, one_step, args.spike_samples)
            if args.spike_samples > 0 else float("nan")}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="*", default=VARIANTS, choices=VARIANTS)
    ap.add_argument("--neurons", type=int, default=100, help="excitatory neurons (bench_step_engine's N)")
    ap.add_argument("--steps", type=int, default=250, help="time steps of 1 ms per sample")
    ap.add_argument("--chunks", type=int, default=3, help="alternations per variant")
    ap.add_argument("--chunk-size", type=int, default=10, help="BindsNET samples per chunk")
    ap.add_argument("--snnrun-factor", type=int, default=10, help="snnrun samples per chunk = factor x chunk-size")
    ap.add_argument("--pool", type=int, default=200, help="distinct input trains, cycled (same order on both sides)")
    ap.add_argument("--rate", type=float, default=0.01, help="spike probability per step without MNIST")
    ap.add_argument("--spike-samples", type=int, default=2,
                    help="extra untimed BindsNET samples with a monitor to count output spikes (0: skip)")
    ap.add_argument("--bindsnet-mode", choices=("one_step", "default"), default="one_step",
                    help="one_step: feed-forward projections within the step, as snnrun; default: "
                         "every projection delayed one step")
    ap.add_argument("--bindsnet-connection", choices=("connection", "mcc"), default="connection",
                    help="connection: bindsnet.network.topology.Connection + bindsnet.learning rules; mcc: "
                         "MulticompartmentConnection + MCC PostPre where expressible (as DiehlAndCook2015)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    _import_bindsnet()
    from importlib.metadata import version

    bn_version = version("bindsnet")

    data = os.environ.get("SNNRUN_MNIST_NPZ") or str(Path(bench_step_engine.__file__).resolve().parents[2]
                                                      / "shared/data/mnist_6k.npz")
    source = f"mnist ({data})" if Path(data).is_file() else f"random trains, p = {args.rate}/step"
    trains = input_trains(args.pool, args.steps, args.rate, 0)
    assert trains[0].shape == (args.steps, N_IN)
    print(f"inputs: {len(trains)} trains of {source}; BindsNET mode {args.bindsnet_mode}, "
          f"connections {args.bindsnet_connection}", flush=True)
    rows = []
    for name in args.variants:
        row = bench(name, args, trains)
        rows.append(row)
        if row["expressible"]:
            print(f"{name:14s} snnrun {row['snnrun']:9.1f}/s  bindsnet {row['bindsnet']:7.2f}/s  "
                  f"x{row['ratio']:6.1f}  ({row['out']} spikes/sample: snnrun {row['snnrun_spikes']:.1f}, "
                  f"bindsnet {row['bindsnet_spikes']:.1f})", flush=True)
        else:
            print(f"{name:14s} not expressible in BindsNET {bn_version}: {row['why']}", flush=True)
    print()
    print(f"`OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} {sys.executable} "
          f"{' '.join(shlex.quote(a) for a in sys.argv)}`")
    print()
    print(f"{datetime.datetime.now().astimezone().isoformat(timespec='seconds')}; {platform.platform()}, "
          f"{platform.processor() or platform.machine()}, os.cpu_count() = {os.cpu_count()}; Python "
          f"{platform.python_version()}, torch {torch.__version__}, bindsnet {bn_version}; "
          f"torch threads {torch.get_num_threads()}; N = {args.neurons}, T = {args.steps} x 1 ms, batch 1, "
          f"learning on; {args.chunks} alternating chunks of {args.chunk_size * args.snnrun_factor} (snnrun) / "
          f"{args.chunk_size} (BindsNET) samples; inputs: {source}; BindsNET run mode {args.bindsnet_mode}, "
          f"connections {args.bindsnet_connection}")
    print()
    print("| variant | snnrun compiled (samples/s) | BindsNET 0.3.4 (samples/s) | ratio | target >= 5x |")
    print("|---|---:|---:|---:|---|")
    for row in rows:
        if row["expressible"]:
            print(f"| {row['name']} | {row['snnrun']:.1f} | {row['bindsnet']:.2f} | {row['ratio']:.1f}x | "
                  f"{'yes' if row['ratio'] >= 5 else 'no'} |")
        else:
            print(f"| {row['name']} | - | not expressible | - | - |")


if __name__ == "__main__":
    main()
