"""Cross-version loading (issue #8): every file of the corpus in tests/corpus/producers/ — written
by TensorFlow 2.12 … 2.21 with their Keras 2, Keras 3.0 … 3.15 and tf-keras, in every format
those releases write — loads with kerasafe into Keras 3 and into tf-keras with the producer's
outputs, or is refused exactly as tests/corpus/producers/expected.py lists it.

Each consumer runs once per session in a fresh interpreter (consume.py); tf-keras in the second
environment (.venv-tfkeras). docs/compatibility.md is the matrix rendered from these runs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from .conftest import REPO, tf_keras_python

PRODUCERS = REPO / "tests" / "corpus" / "producers"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"corpus_{name}", PRODUCERS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(PRODUCERS))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(PRODUCERS))
    return module


matrix = _load("matrix")
expected = _load("expected")


def _case_keys() -> list[str]:
    keys = []
    for info_path in sorted(PRODUCERS.glob("*/producer.json")):
        info = json.loads(info_path.read_text())
        keys += [f"{info_path.parent.name}/{rel}" for rel in info["files"]]
    return keys


CASES = _case_keys()


@pytest.fixture(scope="session")
def consumer_results():
    cache: dict[str, dict] = {}

    def get(consumer: str) -> dict:
        if consumer not in cache:
            if consumer == "tf_keras":
                python = tf_keras_python()
                if python is None:
                    if os.environ.get("KERASAFE_REQUIRE_TFKERAS"):
                        pytest.fail("KERASAFE_REQUIRE_TFKERAS is set but no tf-keras environment was found")
                    pytest.skip("no tf-keras environment (.venv-tfkeras)")
                cache[consumer] = matrix.run_consumer(consumer, python)
            else:
                cache[consumer] = matrix.run_consumer(consumer, sys.executable)
        return cache[consumer]

    return get


def test_corpus_is_there_and_small():
    producers = {k.split("/")[0] for k in CASES}
    assert len(producers) >= 11 and len(CASES) >= 300, (len(producers), len(CASES))
    size = sum(p.stat().st_size for p in PRODUCERS.rglob("*") if p.is_file())
    assert size < 14 * 2**20, f"corpus is {size / 2**20:.1f} MiB"


@pytest.mark.parametrize("consumer", ["keras3", "keras3_jax", "tf_keras"])
@pytest.mark.parametrize("key", CASES)
def test_loads_or_is_refused_as_listed(consumer, key, consumer_results):
    if consumer == "keras3_jax":
        pytest.importorskip("jax")
    run = consumer_results(consumer)
    if consumer == "keras3_jax":
        assert run["backend"] == "jax", run["backend"]
    result = run["results"][key]
    row = expected.expected_refusal(consumer, key)
    if row is None:
        assert result["status"] == "ok", f"{key} on {consumer}: {result.get('status')} {result.get('type', '')}: {result.get('message', '')}\n{result.get('traceback', '')}"
        return
    _, _, exc_type, substring, _ = row
    assert result["status"] == "error", f"{key} on {consumer} was expected to be refused ({exc_type}) but: {result}"
    assert result["type"] == exc_type and result["kerasafe_error"], result
    assert substring in result["message"], result["message"]


def test_every_expected_refusal_matches_a_file():
    for row in expected.EXPECTED_REFUSALS:
        assert any(expected.expected_refusal(row[0], key, [row]) for key in CASES), f"stale row: {row}"


def test_compatibility_matrix_is_up_to_date(consumer_results):
    results = {"keras3": consumer_results("keras3")}
    if tf_keras_python() is not None:
        results["tf_keras"] = consumer_results("tf_keras")
    text = matrix.render(results)
    current = (REPO / "docs" / "compatibility.md").read_text(encoding="utf-8")
    assert current == text, "docs/compatibility.md is out of date: run python tests/corpus/producers/matrix.py"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert matrix.readme_with(matrix.render_readme_block(results), readme) == readme, "the README's matrix is out of date: run python tests/corpus/producers/matrix.py"


KERAS2_SAVEDMODELS = sorted(p for p in PRODUCERS.glob("*/savedmodel/mlp") if (p / "keras_metadata.pb").exists())


@pytest.mark.parametrize("export_dir", KERAS2_SAVEDMODELS, ids=lambda p: p.parent.parent.name)
def test_keras2_savedmodel_optimizer_state_crosses_into_keras3(export_dir):
    """A Keras 2.11+ optimizer's iterations, learning rate and Adam slots land in the Keras 3
    optimizer (m may be negative, v never is), with no "fresh optimizer" warning."""
    import warnings

    import numpy as np

    keras = pytest.importorskip("keras")
    import kerasafe
    from kerasafe import checkpoint

    if keras.backend.backend() != "tensorflow":
        pytest.skip("SavedModels load through TensorFlow")
    prefix = export_dir / "variables" / "variables"
    stored = checkpoint.read(prefix, ["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE", "optimizer/_variables/1/.ATTRIBUTES/VARIABLE_VALUE"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", kerasafe.errors.KerasafeWarning)
        model = kerasafe.load_model(export_dir)
    optimizer = model.optimizer
    assert int(optimizer.iterations.numpy()) == int(stored["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) > 0
    np.testing.assert_array_equal(optimizer._momentums[0].numpy(), stored["optimizer/_variables/1/.ATTRIBUTES/VARIABLE_VALUE"])
    assert all(np.all(v.numpy() >= 0) for v in optimizer._velocities) and any(np.any(v.numpy() > 0) for v in optimizer._velocities)


def test_keras3_archive_optimizer_state_crosses_into_tf_keras(tfkeras):
    """Keras 3 stores iterations, learning_rate and the slots; tf-keras's optimizer has no
    learning-rate variable (and would skip the whole store): the state still lands, v >= 0."""
    out = tfkeras(
        f"""
        import glob, json, sys, warnings
        sys.path.insert(0, {str(PRODUCERS)!r})
        sys.path.insert(0, {str(REPO / "python")!r})
        import numpy as np, kerasafe
        from kerasafe.keras_bridge import keras_module
        import corpus_models as cm
        keras = keras_module()
        cm.custom_objects(keras)
        rows = []
        for path in sorted(glob.glob({str(PRODUCERS / "keras3*" / "keras" / "mlp.keras")!r})):
            with warnings.catch_warnings():
                warnings.simplefilter("error", kerasafe.errors.KerasafeWarning)
                model = kerasafe.load_model(path)
            opt = model.optimizer
            variables = opt.variables() if callable(opt.variables) else opt.variables
            v = [x.numpy() for x in variables if ("/" + x.name).find("/v/") >= 0]  # Adam's second moments
            rows.append([path, int(opt.iterations.numpy()), len(v), bool(all((a >= 0).all() for a in v)), bool(any((a > 0).any() for a in v))])
        print(json.dumps(rows))
        """,
        REPO,
    )
    rows = json.loads(out.strip().splitlines()[-1])
    assert len(rows) == 4, rows
    for path, iterations, n_v, nonneg, some in rows:
        assert iterations == 4 and n_v > 0 and nonneg and some, (path, iterations, n_v, nonneg, some)


KERAS2_ARCHIVES = sorted(p for p in PRODUCERS.glob("*/keras/mlp.keras") if not p.parts[-3].startswith("keras3"))


@pytest.mark.parametrize("archive", KERAS2_ARCHIVES, ids=lambda p: p.parent.parent.name)
def test_keras2_archive_optimizer_state_crosses_into_keras3(archive):
    """Keras 2 stores iterations and the slots (no learning-rate variable); Keras 3 would skip
    the whole store: the state still lands (m may be negative, v never is)."""
    import warnings

    import numpy as np

    pytest.importorskip("keras")
    import kerasafe

    with warnings.catch_warnings():
        warnings.simplefilter("error", kerasafe.errors.KerasafeWarning)
        model = kerasafe.load_model(archive)
    optimizer = model.optimizer
    assert int(optimizer.iterations.numpy()) == 4  # produce.py: 2 epochs of 2 batches
    assert all(np.all(v.numpy() >= 0) for v in optimizer._velocities) and any(np.any(v.numpy() > 0) for v in optimizer._velocities)
    assert any(np.any(m.numpy() != 0) for m in optimizer._momentums)
