"""Requests an object store sees per output of `ccv convert s3://... -o s3://...`, counted on a local
S3 server (moto): a first run into a new prefix, then a rerun with nothing to do. Prints a table.
Needs ``pip install s3fs 'moto[server]'`` (``make test-s3`` installs both).

    python benchmarks/store_requests.py            # 40 photos
    python benchmarks/store_requests.py --photos 200
"""
from __future__ import annotations

import argparse
import collections
import io
import logging
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REQUEST = re.compile(r'"(?:\x1b\[[0-9;]*m)?(GET|PUT|POST|HEAD|DELETE) (\S+)')  # werkzeug's log line, coloured or not
KINDS = ("LIST", "HEAD", "GET", "PUT", "BULK-DELETE", "DELETE")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=40)
    args = ap.parse_args()
    try:
        import s3fs
        import torch
        from moto.server import ThreadedMotoServer
        from PIL import Image
    except ImportError as e:
        raise SystemExit(f"needs s3fs and moto: pip install s3fs 'moto[server]' ({e})")
    from cyclegan_convert.networks import ResnetGenerator, init_weights

    counts: collections.Counter = collections.Counter()

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            m = REQUEST.search(record.getMessage())
            if m:
                kind, query = m.groups()
                kind = "LIST" if kind == "GET" and "list-type" in query else "BULK-DELETE" if kind == "POST" and "delete" in query else kind
                counts[kind] += 1

    logging.getLogger("werkzeug").addHandler(Count())
    logging.getLogger("werkzeug").setLevel(logging.INFO)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "FSSPEC_S3_ENDPOINT_URL": f"http://{host}:{port}"}
    fs = s3fs.S3FileSystem(key="test", secret="test", endpoint_url=env["FSSPEC_S3_ENDPOINT_URL"])
    fs.mkdir("ccv-bench")
    samples = sorted((Path(__file__).resolve().parents[1] / "cyclegan_convert" / "samples").glob("*.jpg"))
    for i in range(args.photos):
        buf = io.BytesIO()
        Image.open(samples[i % len(samples)]).convert("RGB").resize((96, 72)).save(buf, "JPEG", quality=90)
        fs.pipe_file(f"ccv-bench/photos/{'sub/' if i % 4 == 0 else ''}p{i}.jpg", buf.getvalue())
    with tempfile.TemporaryDirectory() as work:
        torch.manual_seed(0)
        model = Path(work) / "tiny.pth"
        torch.save(init_weights(ResnetGenerator(ngf=8, n_blocks=2)).state_dict(), model)
        env["CCV_HOME"] = str(Path(work) / "home")
        rows = []
        for run in ("first run, new prefix", "rerun, nothing to do"):
            counts.clear()
            r = subprocess.run([sys.executable, "-m", "cyclegan_convert", "convert", "s3://ccv-bench/photos", "-o",
                                "s3://ccv-bench/out", "--model", str(model)], env=env, capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"ccv convert failed ({r.returncode}): {r.stdout[-1500:]}{r.stderr[-1500:]}")
            rows.append((run, dict(counts)))
    server.stop()
    print(f"\n{args.photos} photos, s3:// to s3:// (moto {host}:{port})\n")
    print("| run | " + " | ".join(KINDS) + " | per output |")
    print("|---|" + "---|" * (len(KINDS) + 1))
    for run, c in rows:
        print(f"| {run} | " + " | ".join(str(c.get(k, 0)) for k in KINDS) + f" | {sum(c.values()) / args.photos:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
