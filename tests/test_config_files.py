"""Config files with invalid YAML, tabs, duplicate keys or `allow_targets`: one line naming the file
and the line, exit code 2, nothing written; `snnrun validate` says the same (snnrun/config_files.py)."""

from __future__ import annotations

import pytest

from conftest import TINY, run_cli
from snnrun.config_files import check_config_text
from snnrun.errors import ConfigError

QUICK = [*TINY, "trainer.epochs=1", "trainer.limit_train_batches=1", "trainer.limit_test_batches=1", "monitors=off"]

#: (file text, the message after "snnrun: error: my_configs/neuron/mine.yaml")
BROKEN = {
    "syntax": ("name: lif\ntau_m: [1.0, 2.0\nv_th: 1.0\n",
               " line 3, column 5: invalid YAML: expected ',' or ']', but got ':' (while parsing a flow sequence "
               "that starts on line 2)"),
    "tab": ("name: lif\n\ttau_m: 2.0\n",
            " line 2, column 1: invalid YAML: a tab character where YAML allows none (indent with spaces; "
            "quote a value that holds a tab)"),
    "duplicate": ("name: lif\ntau_m: 2.0\nv_th: 1.0\ntau_m: 3.0\n",
                  ": duplicate key `tau_m` on lines 2 and 4; give each key once (YAML loaders keep one of the "
                  "values without a word)"),
}


@pytest.fixture
def config_dir(tmp_path):
    (tmp_path / "my_configs" / "neuron").mkdir(parents=True)
    return tmp_path / "my_configs"


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_group_file_is_one_line_naming_file_and_line(tmp_path, config_dir, kind):
    text, message = BROKEN[kind]
    (config_dir / "neuron" / "mine.yaml").write_text(text)
    expected = "snnrun: error: my_configs/neuron/mine.yaml" + message
    run = run_cli("--config-dir", "my_configs", "neuron=mine", *QUICK, f"hydra.run.dir={tmp_path / 'run'}",
                  cwd=tmp_path)
    assert (run.returncode, run.stderr.strip()) == (2, expected), run.stderr[-2000:]
    assert not (tmp_path / "run").exists()  # refused before Hydra created anything
    validate = run_cli("validate", "--config-dir", "my_configs", "neuron=mine", cwd=tmp_path)
    assert (validate.returncode, validate.stderr.strip()) == (2, expected)


def test_a_broken_primary_config_named_with_config_name(tmp_path, config_dir):
    (config_dir / "mine.yaml").write_text("defaults:\n  - config\n  - _self_\n\nseed: 1\nname: a\nseed: 2\n")
    expected = ("snnrun: error: my_configs/mine.yaml: duplicate key `seed` on lines 5 and 7; give each key once "
                "(YAML loaders keep one of the values without a word)")
    run = run_cli("--config-dir", "my_configs", "--config-name", "mine", *QUICK, f"hydra.run.dir={tmp_path / 'run'}",
                  cwd=tmp_path)
    assert (run.returncode, run.stderr.strip()) == (2, expected), run.stderr[-2000:]
    assert not (tmp_path / "run").exists()
    validate = run_cli("validate", "--config-dir", "my_configs", "--config-name", "mine", cwd=tmp_path)
    assert (validate.returncode, validate.stderr.strip()) == (2, expected)
    (config_dir / "mine.yaml").write_text("defaults:\n  - config\n  - _self_\n\nseed: 1\nname: a\n")
    assert run_cli("validate", "--config-dir", "my_configs", "--config-name", "mine", *TINY,
                   cwd=tmp_path).returncode == 0  # validate finds a primary config in --config-dir


@pytest.mark.parametrize("text, message", [
    ("a:\n  1: x\n  1: y\n", "f.yaml: duplicate key `a.1` on lines 2 and 3"),  # int keys: silently the last elsewhere
    ("a: {b: 1, 'b': 2}\n", "f.yaml: duplicate key `a.b` on lines 1 and 1"),
    ("l:\n  - {x: 1}\n  - {y: 1, y: 2}\n", "f.yaml: duplicate key `l[1].y` on lines 3 and 3"),
    ("a: 1\nb: [1\n", "f.yaml line 3, column 1: invalid YAML: expected ',' or ']', but got '<stream end>'"),
    ("a: 1\n---\nb: 2\n", "f.yaml line 2, column 1: invalid YAML: expected a single document in the stream, but found another document"),
])
def test_check_config_text(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        check_config_text(text, tmp_path / "f.yaml")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_distinct_keys_anchors_and_tabs_inside_values_pass():
    check_config_text("a: 1\n'1': x\n1: y\nb: &x {c: 1}\nd: *x\ne: \"t\\tab\"\nf: \"a\tb\"\n", "f.yaml")
    check_config_text("", "empty.yaml")
    check_config_text("r: &r [*r]\n", "recursive.yaml")  # an alias of its own anchor: no endless walk
