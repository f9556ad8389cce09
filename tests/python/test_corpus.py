"""The broken/hostile-file corpus (tests/corpus/broken/, written by tests/corpus/generate_broken.py).

Every entry of ``expectations.json`` — a file, a SavedModel directory or a checkpoint prefix — is
fed to its public call, which must raise exactly the ``kerasafe.errors`` class listed (not a
subclass, not a bare ``ValueError`` from Keras, not ``KerasafeError("internal error")`` from a
caught panic) with a message naming the file. A file in the corpus without an expectation fails
the suite, so new hostile files cannot be added untested.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

import kerasafe
from kerasafe import errors

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "broken"
EXPECTATIONS = json.loads((CORPUS / "expectations.json").read_text())
NOT_ENTRIES = {"expectations.json", "README.md", "generate_broken.py"}
_CKPT_FILE = re.compile(r"^(?P<prefix>.+)\.(index|data-\d{5}-of-\d{5})$")


def tiny_model():
    """The model the corpus was saved from (generate_broken.tiny_model)."""
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense")], name="tiny")
    model(np.zeros((1, 4), np.float32))
    return model


def _call(call: str, path: Path) -> None:
    p = os.fspath(path)
    if call == "load_model":
        kerasafe.load_model(p)
    elif call == "load_weights":
        kerasafe.load_weights(tiny_model(), p)
    elif call == "checkpoint.read":
        kerasafe.checkpoint.read(p)
    elif call == "inspect":
        kerasafe.inspect(p)
    else:
        raise AssertionError(f"unknown call {call!r} in expectations.json")


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_broken_file_raises_the_expected_error(name):
    spec = EXPECTATIONS[name]
    expected = getattr(errors, spec["exception"])
    path = CORPUS / name
    with pytest.raises(errors.KerasafeError) as info:
        _call(spec["call"], path)
    exc = info.value
    assert type(exc) is expected, f"{name}: {spec['why']}: expected {expected.__name__}, got {type(exc).__name__}: {exc}"
    assert "internal error" not in str(exc), f"{name}: a panic reached Python: {exc}"
    assert os.fspath(path) in str(exc), f"{name}: the message does not name the file: {exc}"


def _entry_of(rel: str) -> str | None:
    """The expectation covering corpus path ``rel``: itself, a parent directory, or its checkpoint prefix."""
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        if "/".join(parts[:i]) in EXPECTATIONS:
            return "/".join(parts[:i])
    m = _CKPT_FILE.match(rel)
    if m and m["prefix"] in EXPECTATIONS:
        return m["prefix"]
    return None


def test_every_corpus_file_has_an_expectation():
    missing = []
    for dirpath, dirnames, filenames in os.walk(CORPUS):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            rel = os.path.relpath(os.path.join(dirpath, name), CORPUS).replace(os.sep, "/")
            if rel in NOT_ENTRIES:
                continue
            if _entry_of(rel) is None:
                missing.append(rel)
    assert not missing, f"corpus files without an entry in expectations.json: {missing}"


def test_every_expectation_has_a_file():
    for name in EXPECTATIONS:
        path = CORPUS / name
        assert path.exists() or path.is_symlink() or Path(f"{path}.index").exists(), f"{name} is listed but absent"


def test_corpus_is_small():
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file() and not p.is_symlink())
    assert total < 2 << 20, f"the broken corpus is {total} bytes; keep it under 2 MB"
