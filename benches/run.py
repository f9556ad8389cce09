"""Run every benchmark in one go and write one JSON file.

    python benches/run.py [--large] [--json benches/results.json]

Sizes: 10M and 100M parameters (500M with --large). Also measures, in the same run: `dd`'s
page-cache write rate (the machine's I/O ceiling), `import kerasafe` without TensorFlow,
`kerasafe inspect` on the largest artifact, object storage and versioned artifacts (100M). Peers and kerasafe always share a run, so the
ratios (peer seconds / kerasafe seconds) are what to compare across machines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def dd_rate(gb: float = 2.0) -> float:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "dd.bin"
        t = time.perf_counter()
        subprocess.run(["dd", "if=/dev/zero", f"of={out}", "bs=16M", f"count={int(gb * 1024 / 16)}"], check=True, capture_output=True)
        return gb * 1.073741824 / (time.perf_counter() - t)


def import_time(module: str = "kerasafe") -> float:
    """Best of 5 fresh interpreters, with bytecode caches written first (as an installed wheel
    has them; with PYTHONDONTWRITEBYTECODE every import compiles kerasafe's sources again, about
    60 ms more here). numpy, which kerasafe imports, is timed the same way: on a busy moment of a
    VM it alone takes most of the budget."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    once = lambda: float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout)  # noqa: E731
    once()  # writes the caches
    return min(once() for _ in range(5))


def run(script: str, *args: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, str(HERE / script), *args, "--json", out], env=env, text=True, capture_output=True)
    print(proc.stdout)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(proc.returncode)
    data = json.loads(Path(out).read_text())
    os.unlink(out)
    return data


def inspect_time(params: float) -> float:
    code = f"""
import os, sys, time, tempfile
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
sys.path.insert(0, {str(HERE)!r})
from bench_models import build
import kerasafe
d = tempfile.mkdtemp()
kerasafe.save_model(build({params}), d + "/m.keras")
t = time.perf_counter()
kerasafe.inspect(d + "/m.keras")
print(time.perf_counter() - t)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--large", action="store_true", help="also 500M parameters (6 GB with Adam state)")
    ap.add_argument("--json", default=str(HERE / "results.json"))
    args = ap.parse_args()
    sizes = [10e6, 100e6] + ([500e6] if args.large else [])
    results: dict = {
        "machine": {"arch": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "dd_page_cache_gb_per_s": dd_rate(),
        "import_kerasafe_s": import_time(),
        "import_numpy_s": import_time("numpy"),
        "checkpoint": run("bench_checkpoint.py", "--gb", "1.0", "--repeat", "3"),
        "models": {f"{int(p / 1e6)}M": run("bench_models.py", "--params", str(p), "--repeat", "2") for p in sizes},
        "inspect_s": inspect_time(sizes[-1]),
        "object_storage_100M": run("bench_object_storage.py", "--params", "100e6", "--repeat", "2"),
        "artifacts_100M": run("bench_artifacts.py", "--params", "100e6", "--repeat", "2"),
    }
    print(f"dd page-cache write: {results['dd_page_cache_gb_per_s']:.2f} GB/s; import kerasafe: {results['import_kerasafe_s'] * 1000:.0f} ms (numpy alone {results['import_numpy_s'] * 1000:.0f} ms); "
          f"inspect ({int(sizes[-1] / 1e6)}M .keras): {results['inspect_s'] * 1000:.0f} ms")
    Path(args.json).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
