"""The CPU paths for one image size, each in a fresh process so first calls are honest: eager and
``torch.compile``, cold (empty Inductor cache) and warm (the cache the cold run left), bf16 and fp32,
and ONNX Runtime fp32 (the AVX2 candidate). The figures behind ``backends/compile_plan.COSTS`` and
``select``'s choices.

Two ways to compile: ``dynamic`` (what ``--compile`` does: symbolic shapes, one compile for every
size) and ``static`` (what ``auto``'s compile plan does: one compile per size it picks, through a
``CompilePlan``, after its two eager images). ``--second`` also runs a second, non-square size
after the first, to show what a folder of landscape and portrait photos costs each way.

The PyTorch paths run channels_last, as ccv does on the CPU since InstanceNorm goes through
group_norm's channels_last kernel there (``networks.InstanceNorm``). A path ending in
``instance_norm`` is ccv's CPU path before that change: PyTorch's own instance_norm, and the
layout PyTorch gives the model's input (``bf16 eager instance_norm``).

    python benchmarks/cpu_compile.py                      # full and compact nets, 256 px
    python benchmarks/cpu_compile.py --nets full --paths "bf16 compiled static" "bf16 compiled dynamic" --second
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


def child(net: str, path: str, size: int, runs: int, work: Path, second: bool) -> dict:
    """One path in this process: first call, median of ``runs`` later calls, PSNR vs fp32 eager;
    with ``second``, the same again for a second size (size x 1.5*size) afterwards."""
    import numpy as np
    import torch
    from PIL import Image

    from cyclegan_convert.backends.torch_backend import TorchBackend
    from cyclegan_convert.networks import ResnetGenerator, init_weights
    import cyclegan_convert

    torch.manual_seed(0)
    g = init_weights(ResnetGenerator(**NETS[net])).eval()
    samples = sorted((Path(cyclegan_convert.__file__).parent / "samples").glob("*.jpg"))
    sizes = [(size, size)] + ([(size, size * 3 // 2)] if second else [])
    plan = None
    if path.startswith("onnxruntime"):
        from cyclegan_convert.backends.onnxruntime_backend import OnnxRuntimeBackend
        from cyclegan_convert.export.onnx_export import export_onnx

        onnx = work / f"{net}.onnx"
        if not onnx.exists():
            export_onnx(g, onnx, fp16=False, metadata={})
        be = OnnxRuntimeBackend(onnx, device="cpu")
    else:
        words = path.split()
        precision, mode = words[:2]
        compile_: object = mode == "compiled"
        if compile_ and words[2:3] == ["static"]:  # as ccv convert's plan: sizes it is told are plentiful
            from cyclegan_convert.backends.compile_plan import CompilePlan
            from cyclegan_convert.census import ShapeCensus

            from cyclegan_convert.backends import compile_plan

            census = ShapeCensus()
            for h, w in sizes:
                census.plan((h, w), 10_000)
            # this row measures compiled code: the plan is told compiling always pays (its own
            # estimate would leave the compact network eager)
            compile_plan.COSTS[precision] = compile_plan.CompileCosts(speedup=0.0, cold_s=0.0, warm_s=0.0)
            compile_plan.NARROW_SPEEDUP = 0.0
            compile_ = plan = CompilePlan(census, precision)
        before = words[-1] == "instance_norm"
        if before:  # the path as it was: instance_norm whatever the layout
            import torch.nn.functional as F

            from cyclegan_convert.networks import InstanceNorm

            InstanceNorm.forward = lambda self, x: F.instance_norm(x, eps=self.eps)
        be = TorchBackend(g, "cpu", precision, channels_last=not before, compile=compile_)
    ref = TorchBackend(g, "cpu", "fp32", channels_last=False).open()
    result: dict = {}
    with be:
        for k, (h, w) in enumerate(sizes):
            photos = [np.asarray(Image.open(p).convert("RGB").resize((w, h))) for p in samples]
            x = [torch.from_numpy(photos[i % len(photos)].copy())[None] for i in range(runs + 3)]
            if plan is not None:  # the plan's two eager images (warm-up, estimate), not timed
                be.infer(x[-1]), be.infer(x[-2])
            t0 = time.perf_counter()
            ys = [be.infer(x[0])]
            first = time.perf_counter() - t0
            times = []
            for xi in x[1:runs + 1]:
                t0 = time.perf_counter()
                ys.append(be.infer(xi))
                times.append(time.perf_counter() - t0)
            worst = min(_psnr(ref.infer(xi), yi) for xi, yi in zip(x, ys))
            tag = "" if k == 0 else "second_"
            result.update({f"{tag}first_s": first, f"{tag}per_image_s": statistics.median(times), f"{tag}psnr": worst})
    return result


def _psnr(a, b) -> float:
    import numpy as np

    mse = float(np.mean((a.numpy().astype(np.float64) - b.numpy().astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def run_child(net: str, path: str, args, cache: Path, work: Path, env_extra: dict) -> dict:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache), **env_extra}
    cmd = [sys.executable, __file__, "--child", net, path, "--size", str(args.size), "--runs", str(args.runs),
           "--work", str(work)] + (["--second"] if args.second else [])
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
    ap.add_argument("--second", action="store_true", help="then a second size, size x 1.5*size, in the same process")
    ap.add_argument("--paths", nargs="+", help="default: every path that runs on this --isa")
    ap.add_argument("--child", nargs=2, metavar=("NET", "PATH"), help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.size, args.runs, args.work, args.second)))
        return 0

    env_extra = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"} if args.isa == "avx2" else {}
    paths = args.paths or (["fp32 eager instance_norm", "fp32 eager", "fp32 compiled dynamic", "onnxruntime fp32"] + (
        ["bf16 eager instance_norm", "bf16 eager", "bf16 compiled static", "bf16 compiled dynamic"]
        if args.isa == "native" else []))
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
                    if path == "fp32 eager instance_norm":  # the original's own path
                        base = r.get("per_image_s")
                    rows.append((net, f"{path} {phase}".strip(), r, base))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    second = f" | 2nd size {args.size}x{args.size * 3 // 2}: first call (s) | per image (s)" if args.second else ""
    print(f"\n| network | path | first call (s) | per image (s) | fp32 eager / this | min PSNR vs fp32 (dB){second} |")
    print("|---|---|---|---|---|---|" + ("---|---|" if args.second else ""))
    for net, path, r, base in rows:
        if "error" in r:
            print(f"| {net} | {path} | failed: {r['error']} | | | |" + (" | |" if args.second else ""))
            continue
        ratio = f"{base / r['per_image_s']:.2f}x" if base else ""
        more = f" | {r['second_first_s']:.1f} | {r['second_per_image_s']:.3f}" if args.second else ""
        print(f"| {net} | {path} | {r['first_s']:.1f} | {r['per_image_s']:.3f} | {ratio} | {r['psnr']:.1f}{more} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
