#!/usr/bin/env python3
"""Write docs/api.md from the docstrings of everything in ``kerasafe.__all__``.

    python scripts/gen_api_docs.py          # rewrite docs/api.md
    python scripts/gen_api_docs.py --check  # exit 1 if docs/api.md is out of date

tests/python/test_docs.py runs the check, so a changed docstring or signature fails the tests
until this script is rerun. Nothing here imports Keras or TensorFlow.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "docs" / "api.md"

HEADER = """# API reference

Generated from the docstrings of `kerasafe.__all__` by `scripts/gen_api_docs.py`; edit the
docstrings, not this file (`python scripts/gen_api_docs.py` rewrites it, and a test fails while
it is out of date). The command line is described in [cli.md](cli.md), moving from
`model.save` / `load_model` in [migration.md](migration.md).
"""


class _Annotation(str):
    """A string annotation (``from __future__ import annotations``) shown without quotes."""

    def __repr__(self) -> str:
        return str(self)


def _signature(obj: Any) -> str | None:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    params = []
    for p in sig.parameters.values():
        if isinstance(p.annotation, str):
            p = p.replace(annotation=_Annotation(p.annotation))
        params.append(p)
    ret = sig.return_annotation
    if isinstance(ret, str):
        ret = _Annotation(ret)
    return str(sig.replace(parameters=params, return_annotation=ret))


def _markdown(doc: str | None) -> str:
    """Sphinx-flavoured docstring text as Markdown: roles and ``literals`` become `code`,
    doctest examples and ``::`` literal blocks become fenced blocks."""
    if not doc:
        return "*(no docstring)*"
    doc = re.sub(r":[a-z]+:`~?([^`]+)`", lambda m: f"`{m.group(1)}`", doc)
    doc = re.sub(r"``([^`]+)``", r"`\1`", doc)
    out: list[str] = []
    fence: str | None = None  # "doctest" or "literal" while inside a block
    literal_next = False
    for line in doc.splitlines():
        if fence == "literal" and line.strip() and not line.startswith("    "):
            out += ["```", ""]
            fence = None
        if fence == "doctest" and not line.strip():
            out.append("```")
            fence = None
        if fence is None and line.startswith(">>>"):
            out.append("```pycon")
            fence = "doctest"
        if literal_next and line.startswith("    "):
            out.append("```python")
            fence, literal_next = "literal", False
        if fence == "literal":
            if line.strip():
                out.append(line[4:])
            continue
        if line.rstrip().endswith("::"):
            line = line.rstrip()[:-1]
            literal_next = True
        out.append(line)
    if fence is not None:
        out.append("```")
    text = "\n".join(out)
    return re.sub(r"\n```python\n", "\n\n```python\n", text).replace("\n\n\n", "\n\n").strip()


def _members(cls: type) -> list[tuple[str, Any]]:
    """Public methods and properties a class defines itself (dataclass fields are in its signature)."""
    out = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, property) or inspect.isfunction(value) or isinstance(value, (classmethod, staticmethod)):
            out.append((name, value))
    return out


def _render_function(qualname: str, fn: Any, level: str) -> list[str]:
    lines = [f"{level} `{qualname}`", ""]
    sig = _signature(fn)
    if sig is not None:
        lines += ["```python", f"{qualname.split('.')[-1]}{sig}", "```", ""]
    return lines + [_markdown(inspect.getdoc(fn)), ""]


def _render_class(qualname: str, cls: type, level: str) -> list[str]:
    lines = [f"{level} `{qualname}`", ""]
    bases = [b.__name__ for b in cls.__bases__ if b is not object]
    sig = _signature(cls) if not issubclass(cls, BaseException) else None
    sig = sig[: -len(" -> None")] if sig and sig.endswith(" -> None") else sig
    head = f"class {cls.__name__}" + (f"({', '.join(bases)})" if bases else "")
    lines += ["```python", head + (sig or ""), "```", "", _markdown(inspect.getdoc(cls)), ""]
    for name, member in _members(cls):
        if isinstance(member, property):
            lines += [f"- **`{name}`** (property): {_markdown(inspect.getdoc(member)) if member.__doc__ else ''}".rstrip()]
        else:
            fn = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
            sig = _signature(fn) or "(...)"
            doc = inspect.getdoc(fn)
            lines += [f"- **`{name}{sig}`**" + (f": {_markdown(doc)}" if doc else "")]
    if _members(cls):
        lines.append("")
    return lines


def _render_module(qualname: str, module: ModuleType) -> list[str]:
    lines = [f"## `{qualname}`", "", _markdown(inspect.getdoc(module)), ""]
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name)
        if inspect.isclass(obj):
            lines += _render_class(f"{qualname}.{name}", obj, "###")
        elif callable(obj):
            lines += _render_function(f"{qualname}.{name}", obj, "###")
        else:
            lines += [f"### `{qualname}.{name}`", "", f"A constant: `{obj!r}`.", ""]
    return lines


def render() -> str:
    sys.path.insert(0, str(REPO / "python"))
    import kerasafe

    lines = [HEADER]
    lines += ["## Contents", ""]
    lines += [f"- [`kerasafe.{name}`](#kerasafe{name.lower()})" for name in kerasafe.__all__]
    lines.append("")
    for name in kerasafe.__all__:
        obj = getattr(kerasafe, name)
        qualname = f"kerasafe.{name}"
        if name == "__version__":
            lines += [f"## `{qualname}`", "", "The installed version, a string such as `\"0.1.0\"`.", ""]
        elif inspect.ismodule(obj):
            lines += _render_module(qualname, obj)
        elif inspect.isclass(obj):
            lines += _render_class(qualname, obj, "##")
        elif callable(obj):
            lines += _render_function(qualname, obj, "##")
        else:
            lines += [f"## `{qualname}`", "", f"`{obj!r}`", ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/api.md differs from what would be written")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(REPO)} is out of date: run python scripts/gen_api_docs.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
