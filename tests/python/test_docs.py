"""The docs stay true: docs/api.md matches the docstrings, the README's Python examples run, and
every command line shown in docs/cli.md parses."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from kerasafe import cli

from .conftest import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"


def _gen_api_docs():
    spec = importlib.util.spec_from_file_location("gen_api_docs", REPO / "scripts" / "gen_api_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_docs_are_up_to_date():
    expected = _gen_api_docs().render()
    current = (DOCS / "api.md").read_text(encoding="utf-8")
    assert current == expected, "docs/api.md is out of date: run python scripts/gen_api_docs.py"


def test_api_docs_cover_every_public_name():
    import kerasafe

    text = (DOCS / "api.md").read_text(encoding="utf-8")
    for name in kerasafe.__all__:
        assert f"## `kerasafe.{name}`" in text, name
    assert "kerasafe.inspect" in text and "JSON-serializable" in text


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.S | re.M)


def test_readme_python_examples_run(tmp_path: Path, monkeypatch):
    pytest.importorskip("keras")
    blocks = _python_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"README.md python block {i + 1}", "exec"), {"__name__": f"readme_block_{i + 1}"})
        except Exception as exc:  # pragma: no cover - the message says which block failed
            raise AssertionError(f"README.md python block {i + 1} failed: {type(exc).__name__}: {exc}\n{block}") from exc


def test_readme_links_the_docs():
    text = README.read_text(encoding="utf-8")
    for doc in ("docs/cli.md", "docs/migration.md", "docs/api.md", "docs/object-storage.md"):
        assert f"]({doc})" in text, doc
        assert (REPO / doc).is_file(), doc


def test_cli_docs_have_a_section_per_command_and_the_shown_commands_parse():
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for command in ("inspect", "ls", "verify", "diff", "scan", "convert"):
        assert f"## `kerasafe {command}`" in text, command
        assert f"$ kerasafe {command} " in text, command  # an example with its output
    parser = cli._parser()
    shown = re.findall(r"^\$ (kerasafe [^|\n]+)", text, flags=re.M)
    assert len(shown) >= 10
    for line in shown:
        args = shlex.split(line)[1:]
        parser.parse_args(args)  # SystemExit (a failing test) if the docs show a command that does not parse


def test_migration_guide_covers_every_case():
    text = (DOCS / "migration.md").read_text(encoding="utf-8")
    for heading in ("SavedModel directory", "`.h5`", "`.keras`", "TF checkpoint format", "`.weights.h5`", "Loading, in every case"):
        assert heading in text, heading
    for call in ("kerasafe.save_model(model,", "kerasafe.load_model(", "kerasafe.save_weights(model,", "kerasafe.load_weights(model,"):
        assert call in text, call
    assert "Keras 2" in text and "Keras 3" in text
