"""The package's logger, ``logging.getLogger("kerasafe")``, imported on first use: ``logging``
is about 5 ms of ``import kerasafe``, and the paths that log are rare."""

from __future__ import annotations

from typing import Any


def logger() -> Any:
    import logging

    return logging.getLogger("kerasafe")
