"""The CPU paths for one image size, each in a fresh process so first calls are honest: eager and
``torch.compile`` (static shape, as ``ccv convert``'s compile plan uses it), cold (empty Inductor
cache) and warm (the cache the cold run left), bf16 and fp32, and ONNX Runtime fp32 (the AVX2
candidate). The figures behind ``backends/compile_plan.COSTS`` and ``select``'s choices.

    python benchmarks/cpu_compile.py                      # full and compact nets, 256 px
    python benchmarks/cpu_compile.py --isa avx2           # oneDNN and ATen limited to AVX2

``--isa avx2`` sets ONEDNN_MAX_CPU_ISA=AVX2 and ATEN_CPU_CAPABILITY=avx2: PyTorch then runs as on
an AVX2-only CPU (no bf16 instructions: bf16 is left out). ONNX Runtime's own kernels (MLAS)
ignore both, so its figure there is what an AVX-512 machine gives, not an AVX2 one.
Random-init weights (N(0, 0.02)); PSNR against fp32 eager on the bundled sample photos.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NETS = {"full": dict(ngf=64, n_blocks=9), "compact": dict(ngf=32, n_blocks=6, upsample="resize")}


def child(net: str, path: str, size: int, runs: int, work: Path) -> dict:
    """One path in this process: first call, median of ``runs`` later calls, PSNR vs fp32 eager."""
    import numpy as np
    import torch
    from PIL import Image

    from cyclegan_convert.backends.torch_backend import TorchBackend
    from cyclegan_convert.networks import ResnetGenerator, init_weights
    import cyclegan_convert

    torch.manual_seed(0)
    g = init_weights(ResnetGenerator(**NETS[net])).eval()
    samples = sorted((Path(cyclegan_convert.__file__).parent / "samples").glob("*.jpg"))
    photos = [np.asarray(Image.open(p).convert("RGB").resize((size, size))) for p in samples]
    x = [torch.from_numpy(photos[i % len(photos)].copy())[None] for i in range(runs + 1)]
    if path.startswith("onnxruntime"):
        from cyclegan_convert.backends.onnxruntime_backend import OnnxRuntimeBackend
        from cyclegan_convert.export.onnx_export import export_onnx

        onnx = work / f"{net}.onnx"
        if not onnx.exists():
            export_onnx(g, onnx, fp16=False, metadata={})
        be = OnnxRuntimeBackend(onnx, device="cpu")
    else:
        precision, mode = path.split()[:2]
        be = TorchBackend(g, "cpu", precision, channels_last=False, compile=mode == "compiled")
    ref = TorchBackend(g, "cpu", "fp32", channels_last=False).open()
    with be:
        t0 = time.perf_counter()
        y0 = be.infer(x[0])
        first = time.perf_counter() - t0
        times, ys = [], [y0]
        for xi in x[1:]:
            t0 = time.perf_counter()
            ys.append(be.infer(xi))
            times.append(time.perf_counter() - t0)
    worst = min(_psnr(ref.infer(xi), yi) for xi, yi in zip(x, ys))
    return {"first_s": first, "per_image_s": statistics.median(times), "psnr": worst}


def _psnr(a, b) -> float:
    import numpy as np

    mse = float(np.mean((a.numpy().astype(np.float64) - b.numpy().astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def run_child(net: str, path: str, args, cache: Path, work: Path, env_extra: dict) -> dict:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache), **env_extra}
    cmd = [sys.executable, __file__, "--child", net, path, "--size", str(args.size), "--runs", str(args.runs),
           "--work", str(work)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["?"])[-1][:160]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nets", nargs="+", default=["full", "compact"], choices=sorted(NETS))
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--runs", type=int, default=4, help="timed images after the first")
    ap.add_argument("--isa", choices=["native", "avx2"], default="native")
    ap.add_argument("--paths", nargs="+", help="default: every path that runs on this --isa")
    ap.add_argument("--child", nargs=2, metavar=("NET", "PATH"), help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.size, args.runs, args.work)))
        return 0

    env_extra = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"} if args.isa == "avx2" else {}
    paths = args.paths or (["fp32 eager", "fp32 compiled", "onnxruntime fp32"] + (
        ["bf16 eager", "bf16 compiled"] if args.isa == "native" else []))
    work = Path(tempfile.mkdtemp(prefix="ccv-compile-bench-"))
    import torch

    from cyclegan_convert.backends.select import cpu_name

    print(f"{cpu_name()}, isa {args.isa}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.size}x{args.size}; load average {os.getloadavg()[0]:.2f} at the start", flush=True)
    rows = []
    try:
        for net in args.nets:
            base = None
            for path in paths:
                cache = work / f"inductor-{net}-{path.replace(' ', '-')}"
                phases = ["cold", "warm"] if "compiled" in path else [""]
                for phase in phases:
                    r = run_child(net, path, args, cache, work, env_extra)
                    print(f"{net} {path} {phase}: {r}", flush=True)
                    if path == "fp32 eager":
                        base = r.get("per_image_s")
                    rows.append((net, f"{path} {phase}".strip(), r, base))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    print("\n| network | path | first call (s) | per image (s) | fp32 eager / this | min PSNR vs fp32 (dB) |")
    print("|---|---|---|---|---|---|")
    for net, path, r, base in rows:
        if "error" in r:
            print(f"| {net} | {path} | failed: {r['error']} | | | |")
            continue
        ratio = f"{base / r['per_image_s']:.2f}x" if base else ""
        print(f"| {net} | {path} | {r['first_s']:.1f} | {r['per_image_s']:.3f} | {ratio} | {r['psnr']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
