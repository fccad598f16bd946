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
    if kernels.compiler() is None:
        pytest.skip("no C++ compiler here")
    monkeypatch.setenv("SNNRUN_KERNEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("SNNRUN_STRICT_KERNELS")
    ext = _extension(tmp_path, "broken2", "int answer() { return undeclared_name; }\n")
    with pytest.raises(KernelBuildError, match="broken2 failed to build.*undeclared_name"):
        ext.load()


def test_a_stale_torch_lock_from_a_killed_build_is_cleared(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SNNRUN_KERNEL_CACHE", str(tmp_path / "cache"))
    ext = _extension(tmp_path, "tiny", "int64_t answer() { return 42; }\n")
    build_dir = ext.build_dir()
    build_dir.mkdir(parents=True)
    (build_dir / "lock").write_text("")  # what torch's FileBaton leaves when its build is killed
    with caplog.at_level(logging.WARNING, logger="snnrun.kernels"):
        module = compiled(ext)
    assert module.answer() == 42
    assert any("stale build lock" in r.getMessage() for r in caplog.records)
    assert not (build_dir / "lock").exists()


def test_report_names_every_kernel_and_the_path_that_ran():
    compiled(bernoulli._EXTENSION)
    import torch
    bernoulli.bernoulli_steps(torch.rand(3), 2)
    report = kernels.report()
    assert set(report["kernels"]) == {"bernoulli", "diehl_cook", "lif_scan", "spike_linear"}
    assert "compiled" in report["kernels"]["bernoulli"]["ran"] and report["kernels"]["bernoulli"]["build"] == "compiled"
    assert set(report["cpu"]) == {"machine", "model", "features"}
