"""The ``kerasafe`` command line: one function per command.

Exit codes: 0 ok; 1 a check failed (``verify``, ``scan`` findings, ``diff --exit-code``,
``convert``'s output check); 2 cannot read the input, or a usage error. Errors print one line
(no traceback) unless ``--debug``. Only ``demo``, ``convert`` and ``verify`` of an artifact
(to rerun its reference outputs) import Keras / TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import ArtifactExistsError, KerasafeError

EXAMPLES = {
    "demo": "example: kerasafe demo            # writes ./artifacts\n         kerasafe demo /tmp/out",
    "inspect": (
        "example: kerasafe inspect model.keras\n"
        "         kerasafe inspect artifacts/my_model/savedmodel/v1\n"
        "         kerasafe inspect training/ckpt --json     # a checkpoint prefix (ckpt.index + ckpt.data-*)"
    ),
    "ls": "example: kerasafe ls artifacts\n         kerasafe ls artifacts --json",
    "verify": (
        "example: kerasafe verify artifacts/my_model/keras/v3\n"
        "         kerasafe verify model.h5 --json\n"
        "exit codes: 0 ok, 1 verification failed, 2 cannot read / usage error"
    ),
    "diff": (
        "example: kerasafe diff artifacts/my_model/keras/v1 artifacts/my_model/keras/v2\n"
        "         kerasafe diff old.weights.h5 new.weights.h5 --exit-code"
    ),
    "scan": "example: kerasafe scan downloaded_model.keras\nexit codes: 0 no findings, 1 findings, 2 cannot read / scan not available",
    "convert": (
        "example: kerasafe convert model.h5 model.keras\n"
        "         kerasafe convert model.keras weights/ckpt                    # TF checkpoint prefix\n"
        "         kerasafe convert ckpt/model model.keras --architecture model_config.json"
    ),
}

_log = logging.getLogger("kerasafe")


# -- output helpers ------------------------------------------------------------------------------------


def _human(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _shape(shape: Any) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, list) and shape and isinstance(shape[0], list):
        return ", ".join(_shape(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "  ") -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(header)]
    lines = [indent + "  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines += [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


def _fields(rows: Sequence[tuple[str, str]], indent: str = "  ") -> str:
    """``key  value`` lines, values aligned."""
    width = max((len(k) for k, _ in rows), default=0)
    return "\n".join(f"{indent}{k.ljust(width)}  {v}" for k, v in rows)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _io(items: list[dict[str, Any]] | None) -> str:
    return ", ".join(f"{i.get('name')}: {i.get('dtype') or '?'} {_shape(i.get('shape'))}" for i in items or []) or "?"


def _flat(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        return [item for k, v in value.items() for item in _flat(v, f"{prefix}.{k}" if prefix else str(k))]
    return [(prefix, value)]


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- inspect -----------------------------------------------------------------------------------------


_SHOWN_METADATA = {
    "model_name", "format", "version", "created_at", "released", "keras_version", "tensorflow_version",
    "kerasafe_version", "backend", "input_signature", "output_signature", "parameters", "custom_objects",
}


def _summary_rows(info: dict[str, Any]) -> list[tuple[str, str]]:
    producer = info["producer"]
    made_by = ", ".join(
        f"{label} {producer[key]}" for key, label in (("keras_version", "Keras"), ("tensorflow_version", "TensorFlow"), ("kerasafe_version", "kerasafe")) if producer.get(key)
    ) or "unknown"
    if producer.get("backend"):
        made_by += f" ({producer['backend']} backend)"
    what = "full model" if info["contains"] == "model" else "weights only"
    if info["model"]:
        what += f": {info['model']['class_name']} {info['model']['name']!r}"
    params = info["parameters"]
    rows = [("format", f"{info['format']}: {info['format_description']}"), ("contains", what), ("producer", made_by)]
    if info["inputs"]:
        rows.append(("inputs", _io(info["inputs"])))
    if info["outputs"]:
        rows.append(("outputs", _io(info["outputs"])))
    rows.append(("parameters", f"{params['total']:,} total ({params['trainable']:,} trainable, {params['non_trainable']:,} non-trainable), {_human(info['weights_bytes'])} of weights"))
    return rows


def _detail_rows(info: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    opt = info["optimizer"]
    if opt:
        lr = f" (learning_rate={opt['learning_rate']:g})" if isinstance(opt.get("learning_rate"), (int, float)) else ""
        name = opt["class_name"] or "state of an optimizer whose class is not recorded"
        rows.append(("optimizer", f"{name}{lr}: {opt['variables']} variables, {opt['parameters']:,} values, {_human(opt['bytes'])}"))
    else:
        rows.append(("optimizer", "none saved"))
    if info["compile"]:
        rows.append(("compile", ", ".join(f"{k}={_short(v)}" for k, v in info["compile"].items())))
    for s in info["signatures"]:
        rows.append(("signature", f"{s['name']}({_io(s['inputs'])}) -> {_io(s['outputs'])}"))
    rows.append(("custom objects", ", ".join(info["custom_objects"]) or "none"))
    artifact = info["artifact"]
    if artifact:
        released = "yes" if artifact["released"] else "no"
        rows.append(("artifact", f"{artifact['name']}/{artifact['format']}/{artifact['version']}, created {artifact['created_at']}, {artifact['files']} files, {_human(artifact['size'])}, released: {released}"))
        for key, value in _flat({k: v for k, v in (info["metadata"] or {}).items() if k not in _SHOWN_METADATA}):
            if value is not None:
                rows.append(("metadata", f"{key} = {_short(value)}"))
    validation = info["validation"]
    if validation:
        device = (validation.get("device") or {}).get("device_kind")
        status = "passed" if validation["passed"] else "FAILED"
        text = f"{status} when saved: max_abs_diff={validation['max_abs_diff']:.3e} (atol={validation['atol']:g}, rtol={validation['rtol']:g})"
        rows.append(("validation", text + (f" on {device}" if device else "")))
    rows += [("note", note) for note in info["notes"]]
    return rows


def cmd_inspect(args: argparse.Namespace) -> int:
    from ._inspect import inspect

    info = inspect(args.path)  # URLs too: downloaded to a temporary directory first
    if args.json:
        _print_json(info)
        return 0
    print(info["path"])
    print(_fields(_summary_rows(info)))
    if info["layers"]:
        print(f"\nlayers ({len(info['layers'])})")
        print(_table(("name", "class", "output shape", "params"), [(x["name"], x["class_name"] or "?", _shape(x["output_shape"]), f"{x['params']:,}") for x in info["layers"]]))
    weights = info["weights"]
    shown = weights if args.all else weights[: args.max_rows]
    print(f"\nweights ({len(weights)}, {_human(info['weights_bytes'])})")
    if weights:
        print(_table(("name", "layer", "shape", "dtype", "bytes"), [(w["name"], w["layer"] or "", _shape(w["shape"]), w["dtype"], _human(w["bytes"])) for w in shown]))
        if len(shown) < len(weights):
            print(f"  ... {len(weights) - len(shown)} more (--all lists every weight)")
    print()
    print(_fields(_detail_rows(info)))
    return 0


# -- ls ----------------------------------------------------------------------------------------------


def _versions_under(root: Path | str) -> list[Any]:
    from . import _remote
    from .artifacts import list_versions

    if isinstance(root, str):  # object storage
        core = _remote.native()
        return [v for name in core.remote_model_names(root.rstrip("/")) for v in sorted(list_versions(root, name), key=lambda v: v.format)]
    if not root.is_dir():
        raise KerasafeError(f"{root}: no such directory")
    out = []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        out += sorted(list_versions(root, child.name), key=lambda v: v.format)  # stable: versions stay oldest first
    if not out and any(root.glob("*/*/metadata.json")):  # ROOT/NAME given: list that model
        out = sorted(list_versions(root.parent, root.name), key=lambda v: v.format)
    return out


def cmd_ls(args: argparse.Namespace) -> int:
    from . import _remote

    versions = _versions_under(args.root if _remote.is_remote(args.root) else Path(args.root))
    records = []
    for v in versions:
        validation = v.metadata.get("validation") or {}
        records.append(
            {
                "name": v.name,
                "format": v.format,
                "version": v.version,
                "path": str(v.path),
                "created_at": v.created_at,
                "size": v.size,
                "validation": {"passed": validation.get("passed"), "max_abs_diff": validation.get("max_abs_diff")} if validation else None,
                "released": v.released,
            }
        )
    if args.json:
        _print_json(records)
        return 0
    if not records:
        print(f"no artifacts under {args.root}")
        return 0
    rows = []
    for r in records:
        check = r["validation"]
        status = "not validated" if not check else f"{'passed' if check['passed'] else 'FAILED'} ({float(check['max_abs_diff']):.1e})"
        rows.append((r["name"], r["format"], r["version"], (r["created_at"] or "?").replace("T", " ")[:19], _human(r["size"]), status, "yes" if r["released"] else "no"))
    print(_table(("name", "format", "version", "created (UTC)", "size", "validation", "released"), rows, ""))
    return 0


# -- verify ------------------------------------------------------------------------------------------


def _import_modules(names: Sequence[str] | None) -> None:
    """``--import MODULE``: modules that register the model's custom objects."""
    if names:
        sys.path.insert(0, os.getcwd())
        for name in names:
            importlib.import_module(name)


def _with_progress(verb: str, path: str, args: argparse.Namespace, func: Callable[[argparse.Namespace], int]) -> int:
    """Run a command under one progress bar (``--progress/--no-progress``; default: a terminal
    and 1 GiB or more, or ``KERASAFE_PROGRESS``)."""
    from . import _progress

    with _progress.task(args.progress, _progress.describe(verb, path), lambda: _progress.path_bytes(path)):
        return func(args)


def cmd_verify(args: argparse.Namespace) -> int:
    return _with_progress("verifying", args.path, args, _verify)


def _verify(args: argparse.Namespace) -> int:
    from . import _core
    from ._inspect import locate, verify_file
    from .errors import FormatError

    from . import _remote

    _import_modules(args.imports)
    try:
        kind, target = ("artifact", args.path) if _remote.is_remote(args.path) else locate(args.path)
    except FormatError as exc:  # a model file by name or magic that does not read: damaged
        named = args.path.lower().endswith((".h5", ".hdf5", ".keras"))
        if os.path.isfile(args.path) and (named or _core.sniff(args.path) in ("hdf5", "zip")):
            kind, target = "damaged", str(exc)
        else:
            raise
    if kind == "artifact":
        from .artifacts import verify_artifact

        result = verify_artifact(target, check_outputs=not args.no_outputs).to_dict()
        result["format"] = "artifact"
    elif kind == "damaged":
        result = {"path": args.path, "format": "?", "ok": False, "checksums_ok": None, "problems": [target], "notes": [], "comparison": None}
    else:
        result = verify_file(target)
    if args.json:
        _print_json(result)
    else:
        print(f"{'ok' if result['ok'] else 'FAILED'}: {result['path']} ({result['format']})")
        if result["checksums_ok"] is not None:
            print(f"  checksums: {'ok' if result['checksums_ok'] else 'FAILED'}")
        comparison = result.get("comparison")
        rerun_failed = any(p.startswith("cannot rerun the reference") for p in result["problems"])
        if comparison:
            rerun = bool(result["checksums_ok"]) and not (args.no_outputs or rerun_failed or any("not rerun" in n for n in result["notes"]))
            status = "passed" if comparison["passed"] else "FAILED"
            label = "reference outputs" if rerun else "reference outputs when saved"
            print(f"  {label}: {status}: max_abs_diff={comparison['max_abs_diff']:.3e} (atol={comparison['atol']:g}, rtol={comparison['rtol']:g})")
        for problem in result["problems"]:
            print(f"  problem: {_one_line(problem)}")
        for note in result["notes"]:
            print(f"  note: {_one_line(note)}")
        if rerun_failed and "custom objects" in " ".join(result["problems"]):
            print("  hint: --import MODULE imports the module that registers them")
    return 0 if result["ok"] else 1


# -- diff --------------------------------------------------------------------------------------------


def _value(v: Any) -> str:
    return _short(v, 40)


def cmd_diff(args: argparse.Namespace) -> int:
    from ._diff import diff

    result = diff(args.a, args.b, values=not args.no_values)
    if args.json:
        _print_json(result)
    else:
        a, b, w = result["a"], result["b"], result["weights"]
        print(f"a: {a['path']} ({a['format']}, {a['parameters']['total']:,} parameters)")
        print(f"b: {b['path']} ({b['format']}, {b['parameters']['total']:,} parameters)")
        change = f"max abs change {w['max_abs_change']:.3e}" if isinstance(w["max_abs_change"], float) else "values not compared" if args.no_values else "no values compared"
        print(
            f"\nweights (matched by {w['matched_by']}): {w['compared']} compared, {w['changed']} changed, {len(w['added'])} added, "
            f"{len(w['removed'])} removed, {len(w['reshaped'])} reshaped, {len(w['dtype_changed'])} dtype changes; {change}"
        )
        rows = [("added", n, "", "") for n in w["added"]] + [("removed", n, "", "") for n in w["removed"]]
        rows += [("reshaped", r["name"], f"{_shape(r['a_shape'])} -> {_shape(r['b_shape'])}", "") for r in w["reshaped"]]
        rows += [("dtype", r["name"], f"{r['a_dtype']} -> {r['b_dtype']}", "") for r in w["dtype_changed"]]
        for v in w["variables"]:
            delta = v.get("max_abs_change")
            if args.all or delta not in (None, 0.0):
                rows.append(("changed" if delta not in (None, 0.0) else "same", v["name"], _shape(v["shape"]), f"{delta:.3e}" if isinstance(delta, float) else str(delta or "")))
        if rows:
            print(_table(("", "weight", "shape", "max abs change"), rows))
        for title, items in (("config", result["config"]), ("metadata", result["metadata"])):
            print(f"\n{title}: {len(items)} difference{'s' if len(items) != 1 else ''}")
            shown = items if args.all else items[: args.max_rows]
            for item in shown:
                before = "(absent)" if item["change"] == "added" else _value(item["a"])
                after = "(absent)" if item["change"] == "removed" else _value(item["b"])
                print(f"  {item['path'] or '(whole)'}: {before} -> {after}")
            if len(shown) < len(items):
                print(f"  ... {len(items) - len(shown)} more (--all lists every difference)")
        for note in result["notes"]:
            print(f"note: {note}")
        print("\nidentical weights and config" if result["identical"] else "\nthe models differ")
    return 1 if args.exit_code and not result["identical"] else 0


# -- scan --------------------------------------------------------------------------------------------


def _scan_target(path: str) -> str:
    """An artifact version scans as the model file inside it."""
    directory = Path(path)
    metadata = directory / "metadata.json"
    if directory.is_dir() and metadata.is_file():
        from . import _formats

        fmt = json.loads(metadata.read_text(encoding="utf-8")).get("format")
        if fmt == "weights":
            return str(directory / _formats.WEIGHTS_CONFIG)
        if fmt in _formats.MODEL_FILES or fmt == "savedmodel":
            return str(_formats.model_path(fmt, directory))
    return path


def cmd_scan(args: argparse.Namespace) -> int:
    try:
        from .registry import scan
    except ImportError:
        print("kerasafe scan: error: the static safety scan is not available in this installation (kerasafe.registry.scan)", file=sys.stderr)
        return 2
    from ._inspect import locate

    kind, target = locate(args.path)
    if kind in ("checkpoint", "weights.h5", "h5-weights"):  # arrays only: nothing that could run code
        if args.json:
            _print_json({"path": target, "format": kind, "ok": True, "findings": [], "custom_objects": [], "note": "weights only: no config to scan"})
        else:
            print(f"{target} ({kind}): no findings (weights only: no config to scan)")
        return 0
    report = scan(_scan_target(args.path))
    if args.json:
        _print_json(
            {
                "path": report.path,
                "format": report.format,
                "ok": report.ok,
                "findings": [{"path": f.path, "layer": f.layer, "code": f.code, "message": f.message} for f in report.findings],
                "custom_objects": report.custom_objects,
            }
        )
    else:
        print(str(report))
    return 0 if report.ok else 1


# -- convert -----------------------------------------------------------------------------------------

TARGETS = ("keras", "h5", "weights.h5", "h5-weights", "checkpoint", "savedmodel")


def _target_format(dst: str, to: str | None) -> str:
    lower = dst.lower()
    fmt = to or ("weights.h5" if lower.endswith(".weights.h5") else "h5" if lower.endswith((".h5", ".hdf5")) else "keras" if lower.endswith(".keras") else "checkpoint")
    suffix_ok = {
        "keras": lower.endswith(".keras"),
        "h5": lower.endswith((".h5", ".hdf5")) and not lower.endswith(".weights.h5"),
        "weights.h5": lower.endswith(".weights.h5"),
        "h5-weights": lower.endswith((".h5", ".hdf5")) and not lower.endswith(".weights.h5"),
        "checkpoint": not lower.endswith((".h5", ".hdf5", ".keras")),
        "savedmodel": not lower.endswith((".h5", ".hdf5", ".keras")),
    }[fmt]
    if not suffix_ok:
        need = {"keras": "ends in .keras", "h5": "ends in .h5", "weights.h5": "ends in .weights.h5", "h5-weights": "ends in .h5 (not .weights.h5)"}.get(fmt, "does not end in .h5 or .keras")
        raise KerasafeError(f"{dst}: --to {fmt} needs a path that {need}")
    return fmt


def _exists(dst: str, fmt: str) -> bool:
    return os.path.exists(dst) or (fmt == "checkpoint" and os.path.exists(f"{dst}.index"))


def _architecture(path: str, custom_objects: dict[str, Any] | None) -> Any:
    """``--architecture``: a model config JSON (``model.to_json()``, an artifact's
    ``model_config.json``) or any full model file kerasafe loads."""
    import kerasafe

    from . import keras_bridge

    if path.lower().endswith(".json"):
        keras = keras_bridge.keras_module()
        return keras.models.model_from_json(Path(path).read_text(encoding="utf-8"), custom_objects=custom_objects)
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "metadata.json")):
        return kerasafe.load_artifact(path, check_outputs=False)
    return kerasafe.load_model(path, compile=False)


def _load_source(src: str, kind: str, args: argparse.Namespace, target: str) -> Any:
    import kerasafe

    from ._savedmodel import InferenceModel

    if kind == "artifact":
        return kerasafe.load_artifact(src)  # checksums and reference outputs checked first
    if kind in ("keras", "h5", "savedmodel"):
        if args.architecture:
            _log.warning("%s holds a full model: --architecture ignored", src)
        model = kerasafe.load_model(src)
        if isinstance(model, InferenceModel):
            raise KerasafeError(f"{src}: an inference-only SavedModel (no Keras model inside): nothing to convert to {target}")
        return model
    if kind == "keras-dir":
        raise KerasafeError(f"{src}: an unzipped .keras directory: zip it into a .keras file first")
    model = _architecture(args.architecture, None)
    kerasafe.load_weights(model, src)
    return model


def _save(model: Any, dst: str, fmt: str) -> None:
    import kerasafe

    if fmt in ("keras", "h5", "savedmodel"):
        kerasafe.save_model(model, dst)
    else:
        kerasafe.save_weights(model, dst)


def _reload(model: Any, dst: str, fmt: str) -> Any:
    import kerasafe

    from . import keras_bridge

    if fmt in ("keras", "h5", "savedmodel"):
        return kerasafe.load_model(dst, custom_objects=keras_bridge.custom_objects_of(model), compile=False)
    clone = keras_bridge.clone_structure(model)
    kerasafe.load_weights(clone, dst)
    return clone


def cmd_convert(args: argparse.Namespace) -> int:
    return _with_progress("converting", args.src, args, _convert)


def _convert(args: argparse.Namespace) -> int:
    from ._inspect import locate

    fmt = _target_format(args.dst, args.to)
    kind, src = locate(args.src)
    if _exists(args.dst, fmt) and not args.overwrite:
        raise ArtifactExistsError(f"{args.dst}: exists (pass --overwrite to replace it)")
    if kind in ("checkpoint", "weights.h5", "h5-weights") and not args.architecture:
        raise KerasafeError(f"{args.src} holds weights only ({kind}); converting to {fmt} needs the model's architecture: pass --architecture MODEL (a model file, an artifact or a model config .json)")
    _import_modules(args.imports)
    try:
        from . import keras_bridge

        keras_bridge.keras_module()
    except ImportError:
        raise KerasafeError("converting needs Keras: pip install 'kerasafe[tensorflow]'") from None
    model = _load_source(src, kind, args, fmt)
    _save(model, args.dst, fmt)
    if args.no_check:
        print(f"converted {args.src} ({kind}) -> {args.dst} ({fmt}); outputs not checked")
        return 0
    from .artifacts import _run, default_reference_input
    from .validation import compare_outputs

    inputs = default_reference_input(model)
    comparison = compare_outputs(_run(model, inputs), _run(_reload(model, args.dst, fmt), inputs))
    print(f"converted {args.src} ({kind}) -> {args.dst} ({fmt}); reloaded outputs {comparison.summary()}")
    return 0 if comparison.passed else 1


# -- demo --------------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from . import demo

    return demo.run(args.dir)


# -- parser and main ---------------------------------------------------------------------------------


PROGRESS_HELP = "progress bar on stderr (default: when stderr is a terminal and the job moves 1 GiB or more, or as KERASAFE_PROGRESS says)"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kerasafe",
        description="Save, load, inspect and verify Keras model artifacts.",
        epilog="run 'kerasafe COMMAND --help' for a command's options and an example.\nexit codes: 0 ok, 1 a check failed, 2 cannot read / usage error",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--debug", action="store_true", help="show full tracebacks and debug logging")
    p.add_argument("-v", "--verbose", action="store_true", help="log what kerasafe does (logger 'kerasafe')")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help, description=help, epilog=EXAMPLES[name], formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.set_defaults(func=func)
        return parser

    c = command("inspect", "describe a model file, checkpoint or artifact (no TensorFlow needed)", cmd_inspect)
    c.add_argument("path", help="SavedModel dir, .keras, .h5, .weights.h5, checkpoint prefix or artifact version")
    c.add_argument("--json", action="store_true", help="print everything as JSON")
    c.add_argument("--all", action="store_true", help="list every weight (default: the first --max-rows)")
    c.add_argument("--max-rows", type=int, default=50, metavar="N", help="weights listed without --all (default: 50)")

    c = command("ls", "list the artifacts under a root: models, formats, versions", cmd_ls)
    c.add_argument("root", help="artifact root (holds NAME/FORMAT/VERSION directories)")
    c.add_argument("--json", action="store_true", help="print the list as JSON")

    c = command("verify", "check checksums, structure and (with Keras installed) an artifact's reference outputs", cmd_verify)
    c.add_argument("path", help="artifact version, model file or checkpoint prefix")
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.add_argument("--no-outputs", action="store_true", help="do not rerun an artifact's reference outputs")
    c.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help=PROGRESS_HELP)
    c.add_argument("--import", dest="imports", action="append", metavar="MODULE", help="import MODULE first (it registers custom objects); repeatable")

    c = command("diff", "compare two models, checkpoints or artifacts: weights, config, metadata", cmd_diff)
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--json", action="store_true", help="print the comparison as JSON")
    c.add_argument("--all", action="store_true", help="list unchanged weights and every difference")
    c.add_argument("--max-rows", type=int, default=30, metavar="N", help="config/metadata differences listed without --all (default: 30)")
    c.add_argument("--no-values", action="store_true", help="compare names, shapes and dtypes only (read no values)")
    c.add_argument("--exit-code", action="store_true", help="exit 1 when weights or config differ")

    c = command("scan", "static safety scan: what a safe-mode load would refuse (nothing is loaded)", cmd_scan)
    c.add_argument("path", help=".keras, .h5, SavedModel dir, config.json or artifact version")
    c.add_argument("--json", action="store_true", help="print the findings as JSON")

    c = command("convert", "convert between .keras, .h5, .weights.h5, TF checkpoints and SavedModel (needs Keras)", cmd_convert)
    c.add_argument("src", help="model file, checkpoint prefix or artifact version")
    c.add_argument("dst", help="output path; the format follows the name unless --to is given (no known suffix: a TF checkpoint prefix)")
    c.add_argument("--to", choices=TARGETS, help="output format")
    c.add_argument("--architecture", metavar="MODEL", help="for weights-only sources: a model file, artifact or model config .json to load them into")
    c.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    c.add_argument("--no-check", action="store_true", help="skip reloading DST and comparing outputs")
    c.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help=PROGRESS_HELP)
    c.add_argument("--import", dest="imports", action="append", metavar="MODULE", help="import MODULE first (it registers custom objects); repeatable")

    c = command("demo", "train a small model, save it in every format, reload and validate each", cmd_demo)
    c.add_argument("dir", nargs="?", default="artifacts", help="output directory (default: ./artifacts)")
    return p


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text


class _StderrHandler(logging.Handler):
    """Log records as ``kerasafe: LEVEL: message`` on whatever ``sys.stderr`` is at the time."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"kerasafe: {record.levelname}: {record.getMessage()}", file=sys.stderr)


def _show_warning(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: str | None = None) -> None:
    print(f"kerasafe: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = _parser().parse_args(argv)
    logger = logging.getLogger("kerasafe")
    handler, level, propagate = _StderrHandler(), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING)
    logger.propagate = False  # TensorFlow's absl puts a handler on the root logger: no duplicates
    try:
        return _run(args)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def _run(args: argparse.Namespace) -> int:
    with warnings.catch_warnings():
        if not args.debug:
            warnings.showwarning = _show_warning
        try:
            return int(args.func(args))
        except KeyboardInterrupt:
            print(f"kerasafe {args.command}: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:  # `kerasafe ... | head`: the reader left; stop quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 141
        except (KerasafeError, OSError, ValueError, ImportError, KeyError) as exc:
            if args.debug:
                raise
            print(f"kerasafe {args.command}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        except Exception as exc:
            if args.debug:
                raise
            print(f"kerasafe {args.command}: error: {type(exc).__name__}: {_one_line(exc)} (rerun with --debug for the traceback)", file=sys.stderr)
            return 2
        except BaseException as exc:  # a Rust panic surfaces as pyo3's PanicException (a BaseException)
            if args.debug or isinstance(exc, SystemExit):
                raise
            print(f"kerasafe {args.command}: internal error: {_one_line(exc)} (rerun with --debug for the traceback)", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
