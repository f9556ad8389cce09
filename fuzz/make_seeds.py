"""Regenerate the small seed corpora under fuzz/seeds/<target>/ from tests/fixtures and kerasafe.

Run from the repository root: ``python fuzz/make_seeds.py``. Seeds are committed; the growing
corpora libFuzzer writes live in fuzz/corpus/ (gitignored).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from kerasafe import checkpoint

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
SEEDS = Path(__file__).resolve().parent / "seeds"
MAX_SEED = 64 << 10  # keep every seed small


def put(target: str, name: str, data: bytes) -> None:
    if len(data) > MAX_SEED:
        return
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def main() -> None:
    shutil.rmtree(SEEDS, ignore_errors=True)
    sm = FIX / "savedmodel"
    for model in sorted(p for p in sm.iterdir() if p.is_dir()):
        idx = (model / "variables" / "variables.index").read_bytes()
        put("checkpoint_index", f"{model.name}.index", idx)
        put("sstable", f"{model.name}.index", idx)
        put("saved_model_pb", f"{model.name}.pb", (model / "saved_model.pb").read_bytes())
        put("fingerprint_pb", f"{model.name}.pb", (model / "fingerprint.pb").read_bytes())
        if (model / "keras_metadata.pb").exists():
            put("keras_metadata_pb", f"{model.name}.pb", (model / "keras_metadata.pb").read_bytes())
        graph = checkpoint.read(model / "variables" / "variables", ["_CHECKPOINTABLE_OBJECT_GRAPH"])
        put("object_graph", f"{model.name}.bin", graph["_CHECKPOINTABLE_OBJECT_GRAPH"].reshape(-1)[0])

    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "ckpt"
        checkpoint.write(prefix, {
            "a/kernel": np.arange(6, dtype=np.float32).reshape(2, 3),
            "b": np.array([1, 2, 3], dtype=np.int64),
            "c": np.array(np.float16(1.5)),
            "s": np.array([b"x", b"yz"], dtype=object),
            "u": np.zeros((0, 4), dtype=np.uint8),
        })
        idx = Path(str(prefix) + ".index").read_bytes()
        put("checkpoint_index", "kerasafe.index", idx)
        put("sstable", "kerasafe.index", idx)
    put("sstable", "empty", b"")

    for f in sorted((FIX / "h5").iterdir()):
        if f.suffix == ".h5":
            put("h5", f.name, f.read_bytes())
        elif f.suffix == ".keras":
            put("keras_zip", f.name, f.read_bytes())

    for f in sorted((FIX / "configs").glob("*.json")):
        put("registry_config", f.name, f.read_bytes())
    put("registry_config", "nan.json", b'{"class_name": "Dense", "config": {"x": NaN, "y": -Infinity}}')

    sha = "0" * 64
    meta = {
        "name": "m", "format": "keras", "version": "v1",
        "manifest": {"files": {"model.keras": {"size": 3, "sha256": sha}, "reference/reference.index": {"size": 0, "sha256": sha}}},
    }
    put("metadata_json", "ok.json", json.dumps(meta, indent=2, sort_keys=True).encode() + b"\n")
    put("metadata_json", "traversal.json", json.dumps({"manifest": {"files": {"../x": {"size": 1, "sha256": sha}}}}).encode())
    put("metadata_json", "nomanifest.json", b"{}")


if __name__ == "__main__":
    main()
