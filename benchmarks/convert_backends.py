"""Which CPU/GPU path should `ccv convert --backend auto` take? Times the full-size generator
(resnet_9blocks, ngf 64, random N(0, 0.02) init) on every candidate path and reports the PSNR of
each path's 8-bit output against PyTorch fp32 eager.

    python benchmarks/convert_backends.py --sizes 256x256 768x512 --repeats 3 [--compile] [--onnx]

Numbers go to benchmarks/RESULTS.md (## convert) by hand, with the machine they came from.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from cyclegan_convert.networks import HalfPrecisionGenerator
from cyclegan_convert.backends.base import pad_to_multiple, to_model_input, to_uint8_images
from cyclegan_convert.networks import ResnetGenerator, init_weights
from quality_metrics import psnr  # benchmarks/ is on sys.path when run as a script




def timed(fn, x, repeats: int) -> tuple[float, torch.Tensor]:
    out = fn(x)  # warm-up (and compilation, for compiled paths)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", default=["256x256", "768x512"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    ap.add_argument("--onnx", action="store_true", help="also time ONNX Runtime CPU")
    ap.add_argument("--skip", nargs="*", default=[], help="leave out paths whose name contains one of these")
    args = ap.parse_args()

    torch.manual_seed(0)
    net = init_weights(ResnetGenerator()).eval().requires_grad_(False)
    net_cl = init_weights(ResnetGenerator()).eval().requires_grad_(False)
    net_cl.load_state_dict(net.state_dict())
    net_cl = net_cl.to(memory_format=torch.channels_last)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu capability "
          f"{torch.backends.cpu.get_cpu_capability()}, mkldnn bf16 {torch.ops.mkldnn._is_mkldnn_bf16_supported()}")

    def eager(x):
        with torch.inference_mode():
            return net(x)

    def cl(x):
        with torch.inference_mode():
            return net_cl(x.contiguous(memory_format=torch.channels_last))

    def bf16_cl(x):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return net_cl(x.contiguous(memory_format=torch.channels_last)).float()

    net_bf16 = copy.deepcopy(net).to(torch.bfloat16)
    net_mixed = HalfPrecisionGenerator(copy.deepcopy(net), torch.bfloat16)

    def bf16(x):
        with torch.inference_mode():
            return net_bf16(x.to(torch.bfloat16)).float()

    def mixed(x):  # what `ccv convert` runs on a native-bf16 CPU (TorchBackend, precision bf16)
        with torch.inference_mode():
            return net_mixed(x)

    paths = {"fp32 eager": eager, "fp32 channels_last": cl, "bf16 autocast + channels_last": bf16_cl,
             "bf16 weights, NCHW": bf16, "bf16 after an fp32 stem, NCHW (ccv's bf16 path)": mixed}
    if args.compile:
        compiled = torch.compile(net_cl)

        def comp(x):
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                return compiled(x.contiguous(memory_format=torch.channels_last)).float()

        def comp32(x):
            with torch.inference_mode():
                return compiled(x.contiguous(memory_format=torch.channels_last))

        compiled_bf16 = torch.compile(net_bf16)

        def comp_bf16(x):
            with torch.inference_mode():
                return compiled_bf16(x.to(torch.bfloat16)).float()

        paths["torch.compile fp32 + channels_last"] = comp32
        paths["torch.compile bf16 autocast + channels_last"] = comp
        paths["torch.compile bf16 weights, NCHW"] = comp_bf16
    if args.onnx:
        import onnxruntime as ort

        tmp = Path(tempfile.mkdtemp()) / "g.onnx"
        dummy = torch.zeros(1, 3, 256, 256)
        b, hh, ww = torch.export.Dim("b"), torch.export.Dim("h"), torch.export.Dim("w")
        torch.onnx.export(net, (dummy,), tmp, dynamic_shapes=({0: b, 2: 4 * hh, 3: 4 * ww},), opset_version=18,
                          external_data=False)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(str(tmp), so, providers=["CPUExecutionProvider"])
        in_name = sess.get_inputs()[0].name

        def onnx_cpu(x):
            return torch.from_numpy(sess.run(None, {in_name: x.numpy()})[0])

        paths["ONNX Runtime CPU fp32"] = onnx_cpu

    paths = {k: v for k, v in paths.items() if k == "fp32 eager" or not any(s in k for s in args.skip)}
    rows = []
    for size in args.sizes:
        w, h = (int(v) for v in size.split("x"))
        g = torch.Generator().manual_seed(1)
        img = torch.randint(0, 256, (args.batch, h, w, 3), dtype=torch.uint8, generator=g)
        x, _, _ = pad_to_multiple(to_model_input(img, torch.device("cpu")))
        ref = None
        for name, fn in paths.items():
            t0 = time.perf_counter()
            secs, out = timed(fn, x, args.repeats)
            first = time.perf_counter() - t0 - secs * args.repeats
            out8 = to_uint8_images(out).numpy()
            if ref is None:
                ref = out8
            rows.append((size, name, secs, psnr(out8, ref), first))
            print(f"{size:>10}  {name:<36} {secs:7.3f} s/batch  PSNR {psnr(out8, ref):6.1f} dB  "
                  f"first call {first:6.1f} s", flush=True)
    print("\n| size | path | s/image | vs fp32 eager | PSNR vs fp32 (dB) | first call (s) |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        base = next(r[2] for r in rows if r[0] == size and r[1] == "fp32 eager")
        for s, name, secs, p, first in (r for r in rows if r[0] == size):
            print(f"| {s} | {name} | {secs / args.batch:.3f} | {base / secs:.2f}x | "
                  f"{'exact' if p == float('inf') else f'{p:.1f}'} | {first:.1f} |")


if __name__ == "__main__":
    main()
