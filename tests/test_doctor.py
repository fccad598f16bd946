"""`snnrun doctor`: versions, CPU, compiler, and each kernel as compiled or reference with the reason."""

from snnrun import doctor, kernels
from tests.conftest import run_cli


def test_doctor_lists_every_kernel_and_the_machine(tmp_path):
    out = run_cli("doctor", cwd=tmp_path)
    lines = out.stdout.splitlines()
    assert out.returncode == 0, out.stderr
    assert lines[0].startswith("snnrun python=") and "torch=" in lines[0] and "numpy=" in lines[0]
    assert lines[1].startswith("cpu: ") and "features" in lines[1]
    for name in sorted(kernels.all_kernels()):
        assert any(line.startswith(f"kernel {name}: compiled") or line.startswith(f"kernel {name}: reference (")
                   for line in lines), name


def test_doctor_says_why_a_kernel_runs_its_reference_path(monkeypatch, capsys):
    ext = kernels.all_kernels()["bernoulli"]
    monkeypatch.setattr(ext, "module", None)
    monkeypatch.setattr(ext, "error", "error: 'x' was not declared in this scope")
    monkeypatch.setattr(kernels.loader, "compiler", lambda: "/usr/bin/c++")
    assert doctor.main(["--no-build"]) == 1  # a compiler is present but the kernel failed: a broken install
    assert "kernel bernoulli: reference (error: 'x' was not declared in this scope)" in capsys.readouterr().out
    monkeypatch.setattr(kernels.loader, "compiler", lambda: None)
    assert doctor.main(["--no-build"]) == 0  # without a compiler the reference paths are expected
