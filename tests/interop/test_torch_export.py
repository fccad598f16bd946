"""The plain-torch exports: a torch.export program that a process without snnrun loads and runs
to the same outputs, and safetensors weights with the graph's JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from _nets import EXPERIMENTS, activate, build, inputs, run
from snnrun.interop.torch_export import reference_paths, save_program

#: the child process: snnrun cannot be imported there (an import hook refuses it), only torch
CHILD = textwrap.dedent("""
    import importlib.abc, sys

    class NoSnnrun(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "snnrun" or name.startswith("snnrun."):
                raise ImportError("snnrun is not available in this process")
            return None

    sys.meta_path.insert(0, NoSnnrun())
    import torch
    program = torch.export.load(sys.argv[1]).module()
    x = torch.load(sys.argv[2], weights_only=True)
    torch.save(program(x), sys.argv[3])
    print(sorted(m for m in sys.modules if m.split(".")[0] == "snnrun"))
""")


@pytest.mark.parametrize("name", ["default", "recurrent"])
def test_program_runs_without_snnrun_to_the_same_outputs(name, tmp_path):
    overrides, shape, classes = EXPERIMENTS[name]
    net = build(overrides + ["network.duration=10"], shape, classes)  # T = 10: a quicker trace
    x = inputs(net, batch=3)
    activate(net, x)
    with reference_paths():
        want = run(net, x)[net.output]
    fast = run(net, x)[net.output]  # the compiled paths give the same results
    assert torch.equal(want, fast)
    written = save_program(net, tmp_path / "network.pt2", {"name": name})
    meta = json.loads(written[1].read_text())
    assert meta["T"] == net.time_steps and meta["input"]["shape"][2:] == list(net.populations["inp"].shape)
    torch.save(x, tmp_path / "x.pt")
    child = subprocess.run([sys.executable, "-c", CHILD, str(written[0]), str(tmp_path / "x.pt"),
                            str(tmp_path / "y.pt")], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.strip() == "[]"  # nothing of snnrun was imported
    got = torch.load(tmp_path / "y.pt", weights_only=True)
    assert want.sum() > 0 and torch.equal(got, want)
    # another batch size: the batch is free in the program
    program = torch.export.load(str(written[0])).module()
    with reference_paths():
        assert torch.equal(program(x[:, :1]), run(net, x[:, :1])[net.output])


def test_safetensors_holds_every_tensor_and_the_graph(tmp_path):
    pytest.importorskip("safetensors", reason="the safetensors export needs the optional extra `nir`")
    from snnrun.interop.torch_export import load_safetensors, save_safetensors

    net = build(*EXPERIMENTS["delayed"])
    path, sidecar = save_safetensors(net, tmp_path / "network.safetensors", {"name": "delayed"})
    tensors, graph = load_safetensors(path)
    state = net.state_dict()
    assert set(tensors) == set(state) and all(torch.equal(tensors[k], state[k]) for k in state)
    assert graph == json.loads(sidecar.read_text())
    assert graph["time_steps"] == net.time_steps and graph["outputs"] == ["out"]
    stage = graph["projections"]["hidden_out_delayed"]["stages"][0]
    assert stage["name"] == "delay" and stage["params"]["per_neuron"] is True
    assert stage["tensors"] == {"delays": "projections.hidden_out_delayed.stages.0.delays"}
    assert graph["populations"]["hidden"]["neuron"]["name"] == "lif"
    assert graph["populations"]["hidden"]["neuron"]["tau_m"] == 5.0


def test_a_hodgkin_huxley_network_exports_through_its_reference_step(tmp_path):
    """The hh kernel is off while tracing (a program of ATen operations), and on again after."""
    from snnrun.kernels import hh as hh_kernel

    net = build(["neuron=hh", "network.duration=4"], (64,), 10)
    x = inputs(net, batch=2) * 20.0  # strong enough to make the hidden HH neurons fire
    with reference_paths():
        assert not hh_kernel.enabled()
        want = run(net, x)
    assert hh_kernel.enabled()
    written = save_program(net, tmp_path / "network.pt2", {"name": "hh"})
    assert hh_kernel.enabled()
    program = torch.export.load(str(written[0])).module()
    assert want["hidden"].sum() > 0 and torch.equal(program(x), want[net.output])
