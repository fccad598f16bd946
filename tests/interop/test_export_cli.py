"""``snnrun export`` on a trained run, and ``network=nir`` fine-tuning the exported graph."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("nir", reason="NIR export/import needs the optional extra `nir` (pip install 'snnrun[nir]')")

from conftest import TINY, compose_config, run_cli  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    done = run_cli(*TINY, "trainer.epochs=1", f"hydra.run.dir={root / 'run'}", cwd=root, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return root


def test_export_nir_then_fine_tune_it_in_snnrun(trained):
    run = trained / "run"
    done = run_cli("export", str(run), "--format", "nir", "--checkpoint", "last", "-o", str(trained / "net.nir"),
                   cwd=trained)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"snnrun: wrote {trained / 'net.nir'}"
    from snnrun.validate import validate_config
    overrides = [o for o in TINY if not o.startswith("network.populations")]
    validate_config(compose_config([*overrides, "network=nir", f"network.from_nir={trained / 'net.nir'}",
                                    "network.duration=8"]))
    done = run_cli(*overrides, "network=nir", f"network.from_nir={trained / 'net.nir'}", "network.duration=8",
                   "trainer.epochs=1", f"hydra.run.dir={trained / 'tuned'}", cwd=trained, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((trained / "tuned" / "summary.json").read_text())
    assert summary["status"] == "completed"


def test_export_formats_and_mistakes(trained):
    run = trained / "run"
    done = run_cli("export", str(run), "--format", "safetensors", cwd=trained)
    assert done.returncode == 0, done.stderr
    assert (run / "export" / "network.safetensors").is_file()
    assert (run / "export" / "network.safetensors.json").is_file()
    for args, message in [(["--format", "onnx"], "export --format: 'onnx' is not one of nir, torch, safetensors"),
                          (["--checkpoint", "first"], "export --checkpoint: 'first' is not one of best, last"),
                          (["--nir-dt", "0"], "export --nir-dt: must be > 0"),
                          (["--bogus"], "export: unknown option --bogus")]:
        done = run_cli("export", str(run), *args, cwd=trained)
        assert done.returncode == 2 and done.stderr.strip() == f"snnrun: error: {message}" or message in done.stderr, \
            done.stderr
    done = run_cli("export", str(trained / "nowhere"), cwd=trained)
    assert done.returncode == 2 and "is not a run directory" in done.stderr


def test_python_api_exposes_export_and_import(tmp_path):
    """``snnrun.export_run`` / ``snnrun.load_nir`` are the interop functions; a wrong directory is one clear error."""
    import pytest

    import snnrun
    import snnrun.interop
    from snnrun.errors import SnnrunError

    assert snnrun.export_run is snnrun.interop.export_run and snnrun.load_nir is snnrun.interop.load_nir
    with pytest.raises(SnnrunError, match="not a run directory"):
        snnrun.export_run(tmp_path, "torch")
