"""The ``kerasafe`` command line. Errors print one line (no traceback) unless ``--debug``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import KerasafeError

EXAMPLES = {
    "demo": "example: kerasafe demo            # writes ./artifacts\n         kerasafe demo /tmp/out",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kerasafe", description="Save, load, inspect and verify Keras model artifacts.")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="train a small model, save it in every format, reload and validate each",
        epilog=EXAMPLES["demo"],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("dir", nargs="?", default="artifacts", help="output directory (default: ./artifacts)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from . import demo

            return demo.run(args.dir)
    except (KerasafeError, OSError, ValueError) as exc:
        if args.debug:
            raise
        print(f"kerasafe {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
