"""pytest plugin (registered through the ``pytest11`` entry point).

In a validation suite::

    def test_release_candidate(assert_artifact_reproduces):
        assert_artifact_reproduces("artifacts/my_model/savedmodel/v3")

or, without the fixture, ``from kerasafe.pytest_plugin import assert_artifact_reproduces``.
A failure reads like a diff: which files changed, and which output differs, where and by how much.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import pytest


def assert_artifact_reproduces(
    path: str | os.PathLike[str],
    *,
    custom_objects: Mapping[str, Any] | None = None,
    atol: float | None = None,
    rtol: float | None = None,
) -> Any:
    """Verify a version's checksums, reload it, rerun its reference input and compare with the
    stored outputs; raise ``AssertionError`` with a readable report otherwise. Returns the
    :class:`~kerasafe.artifacts.Report`."""
    from . import artifacts
    from .validation import compare_outputs

    report = artifacts.verify_artifact(path, custom_objects=custom_objects)
    lines = [f"artifact {os.fspath(path)} does not reproduce:"]
    if not report.checksums_ok:
        lines += [f"  file: {p}" for p in report.problems]
        raise AssertionError("\n".join(lines))
    if atol is not None or rtol is not None:
        from . import _core, _formats

        metadata = json.loads(_core.store_read_metadata(os.fspath(path)))
        model = _formats.load_from(metadata["format"], path, custom_objects=custom_objects, compile=False)
        inputs, expected = artifacts.read_reference(path)
        comparison = compare_outputs(expected, artifacts._run(model, inputs), atol=atol, rtol=rtol)
        if not comparison.passed:
            raise AssertionError("\n".join([*lines, _describe(comparison)]))
        return report
    if not report.ok:
        lines += [f"  {p}" for p in report.problems]
        if report.comparison is not None:
            lines.append(_describe(report.comparison))
        raise AssertionError("\n".join(lines))
    return report


def _describe(comparison: Any) -> str:
    rows = ["  output  dtype     shape          max abs diff  max rel diff  worst index   expected -> actual"]
    for o in comparison.outputs:
        worst = tuple(o["worst_multi_index"]) if o.get("worst_multi_index") is not None else "-"
        values = f"{o.get('worst_expected')} -> {o.get('worst_actual')}" if o.get("worst_expected") is not None else ""
        mark = "" if o["passed"] else "  <-- beyond tolerance"
        rows.append(f"  {o['output']:<7} {o['dtype']:<9} {str(tuple(o['shape'])):<14} {o['max_abs_diff']:<13.3e} {o['max_rel_diff']:<13.3e} {str(worst):<13} {values}{mark}")
    return "\n".join(rows)


@pytest.fixture(name="assert_artifact_reproduces")
def _assert_artifact_reproduces_fixture() -> Callable[..., Any]:
    """The :func:`assert_artifact_reproduces` helper, as a fixture."""
    return assert_artifact_reproduces
