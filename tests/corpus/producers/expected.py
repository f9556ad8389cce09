"""Every corpus file a consumer is expected to refuse, with the exception and why.

One row per refusal: ``(consumer, pattern, exception type, message substring, reason)``. The
pattern is an ``fnmatch`` pattern over ``<producer>/<file>``; consumers are ``keras3``,
``keras3_jax`` (Keras 3 on the JAX backend) and ``tf_keras``. tests/python/test_cross_version.py asserts each refusal exactly (any other failure
fails the test) and that every row still matches a file; matrix.py shows the reasons.
"""

from __future__ import annotations

import fnmatch

EXPECTED_REFUSALS: list[tuple[str, str, str, str, str]] = [
    (
        "keras3",
        "keras3.*/h5/subclassed.h5",
        "IncompatibleModelError",
        "is a subclassed model",
        "a subclassed model in legacy .h5 has no input shape to rebuild it with (use load_weights into a model built in code, or .keras)",
    ),
    (
        "keras3_jax",
        "keras3.*/h5/subclassed.h5",
        "IncompatibleModelError",
        "is a subclassed model",
        "a subclassed model in legacy .h5 has no input shape to rebuild it with (use load_weights into a model built in code, or .keras)",
    ),
    (
        "tf_keras",
        "keras3.*/h5/subclassed.h5",
        "IncompatibleModelError",
        "is a subclassed model",
        "a subclassed model in legacy .h5 has no input shape to rebuild it with (use load_weights into a model built in code, or .keras)",
    ),
]


def expected_refusal(consumer: str, key: str, table: list[tuple[str, str, str, str, str]] | None = None) -> tuple[str, str, str, str, str] | None:
    for row in EXPECTED_REFUSALS if table is None else table:
        if row[0] == consumer and fnmatch.fnmatchcase(key, row[1]):
            return row
    return None
