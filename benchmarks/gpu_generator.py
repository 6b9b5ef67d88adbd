"""The generator alone on a GPU (../shared/GPU-PLAN.md item 2): images/s of the full-size generator
(resnet_9blocks, ngf 64, random N(0, 0.02) init) on each path `ccv convert` can take, against the
original's way (fp32, eager, batch 1, NCHW), and the fraction of the card's measured FP16 matrix rate
each path reaches.

    python benchmarks/gpu_generator.py [--sizes 256x256 1920x1080] [--batches 1 4 16 64] [--budget-s 120]

Paths: fp32 eager (the baseline; cuDNN may use TF32 as PyTorch allows by default), fp16 channels_last
(what the PyTorch backend runs: fp32 stem, the rest fp16), the same compiled (torch.compile; batch 1 only, each shape compiles anew), and
the same replayed as a CUDA graph (batch 1, where launch overhead counts most). Every path's 8-bit
output is compared with fp32's (PSNR). Measurements stop, with what was measured printed, when the
budget runs out. Runs on the CPU too (--device cpu, tiny sizes) for a dry run of the script.
"""
from __future__ import annotations

import argparse
import copy
import time
from typing import Callable, Optional

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from cyclegan_convert.networks import HalfPrecisionGenerator, ResnetGenerator, init_weights


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.double() - b.double()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def to_uint8(y: torch.Tensor) -> torch.Tensor:
    return ((y.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_call(fn: Callable[[], torch.Tensor], device: torch.device, min_time: float = 0.5,
                     max_calls: int = 1000) -> float:
    """Steady-state seconds per call: two warm-up calls (compilation, cuDNN autotuning), then at
    least 3 calls and as many as fit in min_time."""
    fn(), fn()
    sync(device)
    n, t0 = 0, time.perf_counter()
    while n < max_calls and (n < 3 or time.perf_counter() - t0 < min_time):
        fn()
        n += 1
    sync(device)
    return (time.perf_counter() - t0) / n


def fp16_matmul_tflops(device: torch.device) -> Optional[float]:
    """The card's FP16 dense matrix rate as measured here (8192^3 matmuls): the ceiling to compare with."""
    if device.type != "cuda":
        return None
    a = torch.randn(8192, 8192, device=device, dtype=torch.float16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.float16)
    t = seconds_per_call(lambda: a @ b, device, min_time=1.0)
    return 2 * 8192 ** 3 / t / 1e12


def generator_flops(model: torch.nn.Module, h: int, w: int, device: torch.device) -> float:
    """Floating-point operations of one image through the generator (2 per multiply-add)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, h, w, device=device))
    return float(counter.get_total_flops())


def cuda_graph(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    """The model's forward recorded once and replayed: one launch for the whole network."""
    static_x = x.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            model(static_x)  # warm-up on a side stream, as capture requires
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_y = model(static_x)

    def replay() -> torch.Tensor:
        graph.replay()
        return static_y
    return replay


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["256x256", "1920x1080"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 4, 16, 64])
    ap.add_argument("--max-pixels", type=float, default=64 * 256 * 256,
                    help="largest batch x height x width tried (default: 64 images of 256x256)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--blocks", type=int, default=9)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--budget-s", type=float, default=120.0, help="stop measuring after this many seconds")
    args = ap.parse_args()
    start = time.perf_counter()
    device = torch.device(args.device)
    half = torch.float16 if device.type == "cuda" else torch.bfloat16
    if device.type == "cuda":
        print(f"device: {torch.cuda.get_device_name(device)}; torch {torch.__version__}, CUDA {torch.version.cuda}, "
              f"cuDNN {torch.backends.cudnn.version()}, TF32 convolutions {torch.backends.cudnn.allow_tf32}")
        torch.backends.cudnn.benchmark = True  # as ccv convert runs
    peak = fp16_matmul_tflops(device)
    if peak:
        print(f"measured FP16 matmul rate: {peak:.0f} TFLOP/s (8192^3)")

    torch.manual_seed(0)
    fp32 = init_weights(ResnetGenerator(ngf=args.ngf, n_blocks=args.blocks)).to(device).eval().requires_grad_(False)
    fp16 = HalfPrecisionGenerator(copy.deepcopy(fp32), half).to(memory_format=torch.channels_last)
    compiled = None
    paths: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "fp32 eager NCHW (original)": fp32,
        f"{str(half).split('.')[-1]} channels_last": lambda x: fp16(x.contiguous(memory_format=torch.channels_last)),
    }
    if not args.no_compile:
        compiled = torch.compile(fp16, dynamic=False)
        paths[f"{str(half).split('.')[-1]} channels_last compiled"] = \
            lambda x: compiled(x.contiguous(memory_format=torch.channels_last))

    rows: list[tuple[str, str, int, float, float, float, Optional[float]]] = []
    out_of_time = False
    for size in args.sizes:
        w, h = (int(v) for v in size.lower().split("x"))
        flops = generator_flops(fp32, h, w, device)
        print(f"\n{size}: {flops / 1e9:.0f} GFLOP per image")
        base_rate = None
        for batch in args.batches:
            if batch * h * w > args.max_pixels and batch > 1:
                continue
            torch.manual_seed(batch)
            x = torch.rand(batch, 3, h, w, device=device) * 2 - 1
            with torch.inference_mode():
                reference = to_uint8(fp32(x))
                todo = list(paths.items())
                if device.type == "cuda" and batch == 1:
                    todo.append(("fp16 channels_last CUDA graph",
                                 cuda_graph(fp16, x.contiguous(memory_format=torch.channels_last))))
                for name, fn in todo:
                    if name.endswith("compiled") and batch != 1:
                        continue  # each new shape recompiles (tens of seconds): batch 1, where overhead counts
                    if time.perf_counter() - start > args.budget_s:
                        out_of_time = True
                        break
                    call = (lambda fn=fn: fn()) if name.endswith("graph") else (lambda fn=fn, x=x: fn(x))
                    try:
                        t = seconds_per_call(call, device)
                        quality = psnr(to_uint8(call()), reference)
                    except Exception as e:  # noqa: BLE001  (a path that fails here is reported, not fatal)
                        print(f"  {name} b{batch}: failed: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
                        continue
                    rate = batch / t
                    if name.startswith("fp32") and batch == 1:
                        base_rate = rate
                    tflops = flops * rate / 1e12
                    rows.append((size, name, batch, rate, rate / base_rate if base_rate else float("nan"),
                                 quality, tflops / peak if peak else None))
                    print(f"  {name} b{batch}: {rate:.1f} img/s, {tflops:.1f} TFLOP/s, {quality:.1f} dB", flush=True)
            if out_of_time:
                break
            del x
            if device.type == "cuda":
                torch.cuda.empty_cache()
        if out_of_time:
            break

    print("\n| size | path | batch | images/s | x fp32 b1 | PSNR dB | of FP16 peak |\n|---|---|---|---|---|---|---|")
    for size, name, batch, rate, ratio, quality, frac in rows:
        print(f"| {size} | {name} | {batch} | {rate:.1f} | {ratio:.2f} | {quality:.1f} | "
              f"{f'{frac:.0%}' if frac is not None else '-'} |")
    if out_of_time:
        print(f"(stopped at the {args.budget_s:.0f} s budget: the rows above are what was measured)")


if __name__ == "__main__":
    main()
