"""Save/load a model to a local S3 server vs the local filesystem, and boto3 moving the same bytes.

    python benches/bench_object_storage.py --params 100e6 [--endpoint http://127.0.0.1:9000]

Without --endpoint a moto_server is started on 127.0.0.1 (pip install 'moto[server]'); moto is an
in-process Python server, so its numbers bound the client from below: point --endpoint at MinIO
for a server that is not the bottleneck. Rows: kerasafe.save_model/load_model of a `.keras` file
to a local path and to s3://, and boto3's upload_file/download_file of the same file (the usual
way to move a saved model to S3), all in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).parent))
from bench_checkpoint import best_of  # noqa: E402
from bench_models import build  # noqa: E402


def start_moto() -> tuple[str, subprocess.Popen[bytes]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = shutil.which("moto_server") or sys.exit("moto_server not found: pip install 'moto[server]'")
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
            return endpoint, proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("moto_server did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", type=float, default=100e6)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--endpoint", default=os.environ.get("KERASAFE_BENCH_S3_ENDPOINT"))
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    proc = None
    endpoint = args.endpoint
    if not endpoint:
        endpoint, proc = start_moto()
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1", AWS_ENDPOINT_URL=endpoint)
    import boto3
    import keras

    import kerasafe

    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=endpoint)
    s3.create_bucket(Bucket=bucket)
    model = build(args.params)
    work = Path(tempfile.mkdtemp(prefix="kerasafe-bench-s3-"))
    local, url = work / "m.keras", f"s3://{bucket}/models/m.keras"
    rows: list[dict[str, Any]] = []

    def add(where: str, peer: str, op: str, fn: Callable[[], Any]) -> None:
        seconds = best_of(args.repeat, fn)
        nbytes = local.stat().st_size
        rows.append({"where": where, "peer": peer, "op": op, "seconds": seconds, "bytes": nbytes, "gb_per_s": nbytes / seconds / 1e9})
        print(f"  {where:<6}{peer:<28}{op:<6}{seconds:8.2f} s  {nbytes / seconds / 1e9:6.2f} GB/s", flush=True)

    try:
        print(f"model: {model.count_params() / 1e6:.1f}M parameters with Adam state; S3 at {endpoint}")
        add("local", "kerasafe", "save", lambda: kerasafe.save_model(model, local))
        add("s3", "kerasafe", "save", lambda: kerasafe.save_model(model, url))
        add("s3", "boto3 upload_file", "upload", lambda: s3.upload_file(str(local), bucket, "models/boto3.keras"))
        add("local", "kerasafe", "load", lambda: kerasafe.load_model(local))
        add("s3", "kerasafe", "load", lambda: kerasafe.load_model(url))
        add("s3", "boto3 download_file", "download", lambda: s3.download_file(bucket, "models/boto3.keras", str(work / "dl.keras")))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if proc is not None:
            proc.terminate()

    by = {(r["where"], r["peer"], r["op"]): r["seconds"] for r in rows}
    summary = {
        "s3_save_over_local_save": by[("s3", "kerasafe", "save")] / by[("local", "kerasafe", "save")],
        "s3_load_over_local_load": by[("s3", "kerasafe", "load")] / by[("local", "kerasafe", "load")],
        "s3_transfer_part_of_save_vs_boto3_upload": (by[("s3", "kerasafe", "save")] - by[("local", "kerasafe", "save")]) / by[("s3", "boto3 upload_file", "upload")],
        "s3_transfer_part_of_load_vs_boto3_download": (by[("s3", "kerasafe", "load")] - by[("local", "kerasafe", "load")]) / by[("s3", "boto3 download_file", "download")],
    }
    print(f"\nbest of {args.repeat}; kerasafe {kerasafe.__version__}, Keras {keras.__version__}; {platform.machine()}, {os.cpu_count()} cpus")
    print(f"s3 save / local save: {summary['s3_save_over_local_save']:.2f}x the time; s3 load / local load: {summary['s3_load_over_local_load']:.2f}x")
    print(f"upload part of the s3 save / boto3 upload_file: {summary['s3_transfer_part_of_save_vs_boto3_upload']:.2f}; "
          f"download part of the s3 load / boto3 download_file: {summary['s3_transfer_part_of_load_vs_boto3_download']:.2f} (below 1: kerasafe moves the bytes faster)")
    if args.json:
        Path(args.json).write_text(json.dumps({"endpoint_kind": "moto" if proc else "external", "rows": rows, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
