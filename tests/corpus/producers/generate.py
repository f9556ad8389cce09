"""Write the cross-version corpus: each producer (a TensorFlow/Keras release) in its own virtualenv.

    python tests/corpus/producers/generate.py                 # every producer (venvs reused)
    python tests/corpus/producers/generate.py tf2.12-keras2.12 keras3.15-tf2.21

Each virtualenv lives under ``$KERASAFE_VENVS`` (default ``/work/venvs``), never inside the repo,
and is created once. ``produce.py`` runs inside it and writes the small models of
``corpus_models.py`` in every format that version supports, plus ``reference.npz`` (fixed inputs
and the producer's outputs) and ``producer.json``, into ``tests/corpus/producers/<producer>/``.
Several producers share one virtualenv where a TensorFlow release carries both its Keras 3 and
tf-keras (``TF_USE_LEGACY_KERAS=1`` picks tf-keras).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENVS = Path(os.environ.get("KERASAFE_VENVS", "/work/venvs"))

# virtualenv name -> pip requirements. tf-keras depends on `tensorflow`, which cannot share an
# environment with `tensorflow-cpu`; it is installed with --no-deps beside tensorflow-cpu.
VENV_REQUIREMENTS = {
    "tf2.12": (["tensorflow-cpu==2.12.1", "h5py"], []),
    "tf2.13": (["tensorflow-cpu==2.13.1", "h5py"], []),
    "tf2.15": (["tensorflow-cpu==2.15.1", "h5py"], ["tf-keras==2.15.1"]),
    "tf2.16": (["tensorflow-cpu==2.16.2", "keras==3.0.5", "h5py"], []),
    "tf2.17": (["tensorflow-cpu==2.17.1", "keras==3.5.0", "h5py"], ["tf-keras==2.17.0"]),
    "tf2.19": (["tensorflow-cpu==2.19.1", "keras==3.10.0", "h5py"], ["tf-keras==2.19.0"]),
    "tf2.21": (["tensorflow-cpu==2.21.0", "keras==3.15.1", "h5py"], ["tf-keras==2.21.0"]),
}

# producer -> (virtualenv, use tf-keras)
PRODUCERS = {
    "tf2.12-keras2.12": ("tf2.12", False),
    "tf2.13-keras2.13": ("tf2.13", False),
    "tf2.15-keras2.15": ("tf2.15", False),
    "tf-keras2.15": ("tf2.15", True),
    "keras3.0-tf2.16": ("tf2.16", False),
    "keras3.5-tf2.17": ("tf2.17", False),
    "tf-keras2.17": ("tf2.17", True),
    "keras3.10-tf2.19": ("tf2.19", False),
    "tf-keras2.19": ("tf2.19", True),
    "keras3.15-tf2.21": ("tf2.21", False),
    "tf-keras2.21": ("tf2.21", True),
}


def venv_python(name: str) -> Path:
    venv = VENVS / name
    python = venv / "bin" / "python"
    marker = venv / ".kerasafe-ready"
    deps, no_deps = VENV_REQUIREMENTS[name]
    wanted = " ".join(deps + no_deps) + "\n"
    if marker.is_file() and marker.read_text() == wanted:
        return python
    if not python.exists():
        print(f"== creating {venv}: {wanted.strip()}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    else:
        print(f"== updating {venv}: {wanted.strip()}", flush=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, *deps], check=True)
    if no_deps:
        subprocess.run([*pip, "--no-deps", *no_deps], check=True)
    marker.write_text(wanted)
    return python


def produce(producer: str) -> None:
    venv, legacy = PRODUCERS[producer]
    python = venv_python(venv)
    out = HERE / producer
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_USE_LEGACY_KERAS", "KERAS_BACKEND")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", PYTHONHASHSEED="0", TF_DETERMINISTIC_OPS="1")
    env["KERAS_BACKEND"] = "tensorflow"
    if legacy:
        env["TF_USE_LEGACY_KERAS"] = "1"
    print(f"== {producer}", flush=True)
    subprocess.run([str(python), str(HERE / "produce.py"), producer, str(out)], check=True, env=env, cwd=str(out))


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--setup-only":
        for name in argv[1:] or VENV_REQUIREMENTS:
            venv_python(name)
        return 0
    for producer in argv or PRODUCERS:
        produce(producer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
