"""Export of a full-size generator (resnet_9blocks, ngf 64, random N(0, 0.02) init): export time, file
sizes, verification numbers, and ONNX Runtime CPU speed against PyTorch CPU (the baseline).

    python benchmarks/export_onnx.py [--size 256] [--runs 3] [--threads 2]

Real images: the sample photos bundled with ccv (``verify.sample_images``), for the verification and
the timing; no other data is read.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from cyclegan_convert.backends.onnxruntime_backend import OnnxRuntimeBackend
from cyclegan_convert.backends.torch_backend import TorchBackend
from cyclegan_convert.export.pipeline import ExportOptions, run_export
from cyclegan_convert.export.verify import make_batch, sample_images
from cyclegan_convert.export.shapes import Shape
from cyclegan_convert.networks import ResnetGenerator, init_weights
from cyclegan_convert.resolve import ModelRef


def median_seconds(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", type=Path, help="folder of an earlier run: its exports are reused (speed only)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    generator = init_weights(ResnetGenerator()).eval()
    work = args.work or Path(tempfile.mkdtemp(prefix="ccv-export-bench-"))
    weights = work / "generator.pth"
    if not weights.is_file():
        torch.save(generator.state_dict(), weights)
    generator.load_state_dict(torch.load(weights, weights_only=True))

    # verified with ccv's own tolerances (FP32 max abs 1e-4, FP16 40 dB): a failing export stops here
    report = run_export(ModelRef(weights, "pytorch"), ExportOptions(out=work / "exports"),
                        on_message=print)
    for v in report.verifications:
        print(f"\n{v.path.name}: {'; '.join(v.graph_checks)}")
        print("| shape | max abs diff | PSNR 8-bit |\n|---|---|---|")
        for r in v.rows:
            print(f"| {r.shape} | {r.max_abs:.2e} | {r.psnr_db:.1f} dB |")
    print("\n| file | size | export + verify |\n|---|---|---|")
    for key, path in report.files.items():
        took = "reused" if path in report.reused else f"{report.seconds[key]:.0f} s"
        print(f"| {path.name} | {path.stat().st_size / 1e6:.1f} MB | {took} |")

    batch = make_batch(sample_images(), Shape(1, args.size, args.size))
    rows = []
    candidates = [
        ("torch fp32 (baseline)", TorchBackend(generator, device="cpu", channels_last=False)),
        ("torch fp32 channels_last", TorchBackend(generator, device="cpu")),
        ("onnxruntime fp32", OnnxRuntimeBackend(report.files["fp32"], device="cpu", threads=args.threads)),
        ("onnxruntime fp16 onnx", OnnxRuntimeBackend(report.files["fp16"], device="cpu", threads=args.threads)),
    ]
    for label, backend in candidates:
        with backend:
            rows.append((label, median_seconds(lambda: backend.infer(batch), args.runs)))
    base = rows[0][1]
    print(f"\n1x{args.size}x{args.size}, {args.threads} threads, median of {args.runs}\n"
          "| engine | seconds | speed vs baseline |\n|---|---|---|")
    for label, sec in rows:
        print(f"| {label} | {sec:.2f} | {base / sec:.2f}x |")


if __name__ == "__main__":
    main()
