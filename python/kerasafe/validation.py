"""Output comparison: the tutorial's ``max_abs_diff`` and more, computed by the Rust core."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _core
from ._dtypes import name_of
from .errors import InvalidArgumentError, ValidationError

__all__ = ["Comparison", "compare_outputs", "as_output_list"]


def as_output_list(outputs: Any) -> list[np.ndarray]:
    """A model's outputs (tensor, list, tuple or dict) as a list of numpy arrays."""
    if isinstance(outputs, Mapping):
        return [np.asarray(outputs[k]) for k in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(o) for o in outputs]
    return [np.asarray(outputs)]


def _flat(a: np.ndarray) -> tuple[str, list[int], np.ndarray]:
    a = np.asarray(a, order="C")
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return (name_of(a.dtype), list(a.shape), a.reshape(-1).view(np.uint8))


@dataclass
class Comparison:
    """How far ``actual`` is from ``expected``, over every output.

    ``passed`` uses numpy.allclose semantics (``|a - e| <= atol + rtol * |e|``) with the dtype's
    default tolerance unless one was given; NaN or Inf mismatches always fail.
    """

    passed: bool
    max_abs_diff: float
    max_rel_diff: float
    mean_abs_diff: float
    atol: float
    rtol: float
    outputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def worst(self) -> dict[str, Any]:
        """The per-output record with the largest absolute difference."""
        return max(self.outputs, key=lambda o: o["max_abs_diff"]) if self.outputs else {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "max_abs_diff": self.max_abs_diff,
            "max_rel_diff": self.max_rel_diff,
            "mean_abs_diff": self.mean_abs_diff,
            "atol": self.atol,
            "rtol": self.rtol,
            "outputs": self.outputs,
        }

    def summary(self) -> str:
        status = "passed" if self.passed else "FAILED"
        text = f"{status}: max_abs_diff={self.max_abs_diff:.3e} max_rel_diff={self.max_rel_diff:.3e} (atol={self.atol:g}, rtol={self.rtol:g})"
        worst = self.worst
        if not self.passed and worst.get("worst_multi_index") is not None:
            text += f"; worst at output {worst['output']} index {tuple(worst['worst_multi_index'])}: expected {worst['worst_expected']}, got {worst['worst_actual']}"
        nan = sum(o["nan_mismatches"] for o in self.outputs)
        inf = sum(o["inf_mismatches"] for o in self.outputs)
        if nan or inf:
            text += f"; {nan} NaN and {inf} Inf mismatches"
        return text

    def __repr__(self) -> str:
        return f"Comparison({self.summary()}, outputs={len(self.outputs)})"

    def _repr_html_(self) -> str:
        import html  # only notebooks render it

        rows = "".join(
            f"<tr><td>{o['output']}</td><td>{html.escape(str(o['dtype']))}</td><td>{tuple(o['shape'])}</td>"
            f"<td>{o['max_abs_diff']:.3e}</td><td>{o['max_rel_diff']:.3e}</td><td>{'ok' if o['passed'] else 'FAIL'}</td></tr>"
            for o in self.outputs
        )
        return (
            f"<p><b>Comparison</b>: {html.escape(self.summary())}</p><table><tr><th>output</th><th>dtype</th><th>shape</th>"
            f"<th>max abs diff</th><th>max rel diff</th><th>check</th></tr>{rows}</table>"
        )

    def raise_if_failed(self, what: str = "outputs") -> Comparison:
        if not self.passed:
            raise ValidationError(f"{what} differ beyond tolerance: {self.summary()}")
        return self


def _float(v: Any) -> float:
    return float(v)  # the core writes non-finite values as "inf", "-inf", "nan"


def compare_outputs(expected: Any, actual: Any, *, atol: float | None = None, rtol: float | None = None) -> Comparison:
    """Compare model outputs (an array, or a list/tuple/dict of arrays) element by element.

    >>> import numpy as np, kerasafe
    >>> kerasafe.compare_outputs(np.ones(3, "float32"), np.ones(3, "float32")).passed
    True
    """
    exp, act = as_output_list(expected), as_output_list(actual)
    if len(exp) != len(act):
        raise InvalidArgumentError(f"expected {len(exp)} outputs, got {len(act)}")
    outputs: list[dict[str, Any]] = []
    for i, (e, a) in enumerate(zip(exp, act)):
        record = json.loads(_core.compare_outputs(_flat(e), _flat(a), atol, rtol))
        record["output"] = i
        for key in ("max_abs_diff", "max_rel_diff", "mean_abs_diff"):
            record[key] = _float(record[key])
        outputs.append(record)
    if not outputs:
        raise InvalidArgumentError("nothing to compare: no outputs")
    return Comparison(
        passed=all(o["passed"] for o in outputs),
        max_abs_diff=max(o["max_abs_diff"] for o in outputs),
        max_rel_diff=max(o["max_rel_diff"] for o in outputs),
        mean_abs_diff=float(np.mean([o["mean_abs_diff"] for o in outputs])),
        atol=max(_float(o["tolerance"]["atol"]) for o in outputs),
        rtol=max(_float(o["tolerance"]["rtol"]) for o in outputs),
        outputs=outputs,
    )


def comparison_from_dict(d: Mapping[str, Any]) -> Comparison:
    return Comparison(**{k: d[k] for k in ("passed", "max_abs_diff", "max_rel_diff", "mean_abs_diff", "atol", "rtol", "outputs")})

