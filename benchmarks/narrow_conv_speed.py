"""The generator's last layer (7x7 to 3 channels) as a plain convolution and as ``NarrowConv2d``,
on the CPU backend's path (bf16 or fp32 as this CPU takes, channels_last), bundled model.

- the layer alone on a tile of each side: milliseconds each way and the ratio;
- a real 12 MP photo in process (``TorchBackend.infer_tiled``, default tiles, no decode or encode),
  the two ways alternated ``--repeat`` times: seconds each, and the outputs' PSNR to each other.

    python benchmarks/narrow_conv_speed.py [--data DIR] [--photo NAME] [--repeat 2] [--sides 256,400,768]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from PIL import Image

from data_paths import require, shared_data, shown  # benchmarks/ is on sys.path when run as a script
from quality_metrics import psnr

PHOTO = "lomiri_16.04/sunset_by_Aitzol_Berasategi.jpg"  # 12.2 MP


def best_ms(fn, reps: int = 5) -> float:
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=shared_data("photos-large"), help="photos-large folder")
    ap.add_argument("--photo", default=PHOTO, help="a photo in it")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--sides", default="256,400,768")
    args = ap.parse_args()
    from cyclegan_convert.backends import torch_backend
    from cyclegan_convert.backends.select import cpu_has_native_bf16, cpu_name
    from cyclegan_convert.networks import NarrowConv2d
    from cyclegan_convert.resolve import resolve_model
    from cyclegan_convert.weights import load_generator

    photo = require(args.data, "the large photos (photos-large)") / args.photo
    torch.set_num_threads(os.cpu_count() or 1)
    load0 = os.getloadavg()
    precision = "bf16" if cpu_has_native_bf16() else "fp32"
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    net = load_generator(resolve_model("monet", None, None).path).eval().requires_grad_(False)
    last = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    plain = torch.nn.Conv2d(last.in_channels, last.out_channels, last.kernel_size).to(dtype)
    plain.load_state_dict(last.state_dict())
    plain = plain.to(memory_format=torch.channels_last)
    narrow = NarrowConv2d.sharing(plain)
    lines = [f"CPU: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, {precision}; load average "
             f"{load0[0]:.2f} at start", "",
             f"| layer {last.in_channels}->{last.out_channels}, {last.kernel_size[0]}x{last.kernel_size[1]}, tile side "
             "| Conv2d ms | NarrowConv2d ms | speed-up |", "|---|---|---|---|"]
    with torch.no_grad():
        for side in [int(s) for s in args.sides.split(",") if s]:
            x = torch.randn(1, last.in_channels, side + 6, side + 6, dtype=dtype).contiguous(
                memory_format=torch.channels_last)
            a, b = best_ms(lambda: plain(x)), best_ms(lambda: narrow(x))
            lines.append(f"| {side} | {a:.1f} | {b:.1f} | {a / b:.2f}x |")

    Image.MAX_IMAGE_PIXELS = None
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    h, w = rgb.shape[0] // 4 * 4, rgb.shape[1] // 4 * 4
    images = torch.from_numpy(np.array(rgb[:h, :w]))[None]  # a writable copy
    seconds: dict[str, list[float]] = {"Conv2d": [], "NarrowConv2d": []}
    outputs = {}
    for _ in range(args.repeat):
        for name in seconds:
            swap = torch_backend.with_narrow_convs if name == "NarrowConv2d" else (lambda m: m)
            with mock.patch.object(torch_backend, "with_narrow_convs", swap), \
                    torch_backend.TorchBackend(net, "cpu", precision) as be:
                t0 = time.perf_counter()
                outputs[name] = be.infer_tiled(images).numpy()
                seconds[name].append(time.perf_counter() - t0)
    a, b = seconds["Conv2d"], seconds["NarrowConv2d"]
    lines += ["", f"{shown(photo)} ({w}x{h}, {w * h / 1e6:.1f} MP) in process, `TorchBackend.infer_tiled`, the two "
              f"alternated {args.repeat} times: Conv2d {', '.join(f'{s:.2f}' for s in a)} s; NarrowConv2d "
              f"{', '.join(f'{s:.2f}' for s in b)} s; best against best {min(a) / min(b):.3f}x; outputs "
              f"{psnr(outputs['Conv2d'], outputs['NarrowConv2d']):.1f} dB apart; load average "
              f"{os.getloadavg()[0]:.2f} at the end"]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
