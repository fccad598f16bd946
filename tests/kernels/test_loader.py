"""The kernel loader: cache keys, stale build locks, failed builds reported or raised."""

import logging

import pytest

from tests.conftest import compiled
from snnrun import kernels
from snnrun.kernels import Extension, KernelBuildError, bernoulli


def _extension(tmp_path, name, source):
    path = tmp_path / f"{name}.cpp"
    path.write_text(source)
    ext = Extension(name, str(path), ["answer"], ["-O0"])
    kernels.EXTENSIONS.pop(name)  # a test kernel, not one of snnrun's
    return ext


def test_cache_is_per_environment_source_and_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNRUN_KERNEL_CACHE", str(tmp_path))
    ext = bernoulli._EXTENSION
    here = ext.build_dir()
    assert here.parent == kernels.cache_root() and here.parent.parent == tmp_path
    assert here.name.startswith("bernoulli-") and here.name.endswith(kernels.cpu_features()["features"])
    monkeypatch.setattr(kernels.loader, "cpu_features", lambda: {"features": "0123456789ab"})
    assert ext.build_dir() != here and ext.build_dir().name.endswith("0123456789ab")
    monkeypatch.setattr(kernels.loader.sys, "prefix", "/another/venv")
    assert kernels.cache_root() != here.parent  # another environment, another cache


def test_a_failed_build_is_reported_once_with_the_compiler_error(tmp_path, monkeypatch, caplog):
    if kernels.compiler() is None:
        pytest.skip("no C++ compiler here")
    monkeypatch.setenv("SNNRUN_KERNEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SNNRUN_STRICT_KERNELS", "0")
    ext = _extension(tmp_path, "broken", "int answer() { return undeclared_name; }\n")
    with caplog.at_level(logging.WARNING, logger="snnrun.kernels"):
        assert ext.load() is None and ext.load() is None
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "kernel broken could not be built" in warnings[0]
    assert "undeclared_name" in warnings[0] and "reference path" in warnings[0]
    assert ext.status() == {"build": "failed", "ran": "unused", "reason": ext.error}


def test_a_failed_build_is_an_error_in_strict_mode(tmp_path, monkeypatch):
    """Strict mode (CI=true) turns the failure into KernelBuildError when a compiler exists (the
    build is replaced by one that fails as torch's does: the real failure is tested above)."""
    import torch.utils.cpp_extension as cpp

    monkeypatch.setenv("SNNRUN_KERNEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("SNNRUN_STRICT_KERNELS")
    monkeypatch.setattr(kernels.loader, "compiler", lambda: "/usr/bin/c++")

    def failing_build(**kwargs):
        raise RuntimeError("Error building extension 'x': [1/2] c++ ... main.cpp:2:21: error: 'undeclared_name' "
                           "was not declared in this scope")
    monkeypatch.setattr(cpp, "load_inline", failing_build)
    ext = _extension(tmp_path, "broken2", "int answer() { return undeclared_name; }\n")
    with pytest.raises(KernelBuildError, match="broken2 failed to build.*undeclared_name"):
        ext.load()
    monkeypatch.setattr(kernels.loader, "compiler", lambda: None)  # no compiler: a warning, not an error
    other = _extension(tmp_path, "broken3", "int answer() { return undeclared_name; }\n")
    assert other.load() is None and "undeclared_name" in other.error


def test_a_stale_torch_lock_from_a_killed_build_is_cleared(tmp_path, monkeypatch, caplog):
    """torch's FileBaton ``lock`` left in the build directory is removed before the build starts
    (torch's builder is replaced by one that checks this and returns a stand-in module)."""
    import types

    import torch.utils.cpp_extension as cpp

    monkeypatch.setenv("SNNRUN_KERNEL_CACHE", str(tmp_path / "cache"))
    ext = _extension(tmp_path, "tiny", "int64_t answer() { return 42; }\n")
    build_dir = ext.build_dir()
    build_dir.mkdir(parents=True)
    (build_dir / "lock").write_text("")  # what torch's FileBaton leaves when its build is killed

    def build(**kwargs):
        assert kwargs["build_directory"] == str(build_dir) and not (build_dir / "lock").exists()
        return types.SimpleNamespace(answer=lambda: 42)
    monkeypatch.setattr(cpp, "load_inline", build)
    with caplog.at_level(logging.WARNING, logger="snnrun.kernels"):
        assert ext.load().answer() == 42
    assert any("stale build lock" in r.getMessage() for r in caplog.records)


def test_report_names_every_kernel_and_the_path_that_ran():
    compiled(bernoulli._EXTENSION)
    import torch
    bernoulli.bernoulli_steps(torch.rand(3), 2)
    report = kernels.report()
    assert set(report["kernels"]) == {"bernoulli", "hh", "lif_scan", "spike_linear", "step_engine"}
    assert "compiled" in report["kernels"]["bernoulli"]["ran"] and report["kernels"]["bernoulli"]["build"] == "compiled"
    assert set(report["cpu"]) == {"machine", "model", "features"}
