"""JPEG decoding for `ccv convert --max-side`: a full decode then Lanczos to the working size, against
a reduced decode (libjpeg's DCT scaling at 1/2, 1/4 or 1/8, Pillow's draft) then Lanczos, in one run.

    python benchmarks/decode_speed.py                  # the 8 largest photos, --max-side 1024
    python benchmarks/decode_speed.py -n 2 --repeat 1  # a quick check that it runs

Both paths go through ``imaging.read_image`` (the converter's reader, metadata included) and
``resize_rgb``, so they measure what `ccv convert` does before the model. The two run in turns, photo
by photo, so a change in the machine's load hits both alike; each photo's files are read once before
timing (page cache). The PSNR compares the two working-size images (the full decode as reference).
Decoding runs on one thread: the numbers are per decode worker.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from cyclegan_convert.imaging import read_image, resize_rgb, working_size

from data_paths import require, shared_data, shown  # benchmarks/ is on sys.path when run as a script
from quality_metrics import psnr

DATA = shared_data("photos-large")  # --data overrides


def largest_photos(folder: Path, n: int) -> list[Path]:
    """The ``n`` largest JPEGs by pixel count (the case draft decoding is for), ties by name."""
    sizes = []
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in (".jpg", ".jpeg") and p.is_file():
            sizes.append((-megapixels(p), p))
    return [p for _, p in sorted(sizes)[:n]]


def megapixels(path: Path) -> float:
    with Image.open(path) as im:  # the header only
        return im.size[0] * im.size[1] / 1e6


def working_image(path: Path, max_side: int, draft: bool) -> np.ndarray:
    img = read_image(path, max_side=max_side if draft else None)
    h, w = img.full_size or img.size
    return resize_rgb(img.rgb, *working_size(h, w, max_side))




def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", "-n", type=int, default=8, help="photos, the largest first (default 8)")
    ap.add_argument("--data", type=Path, default=DATA, metavar="DIR",
                    help=f"folder of JPEG photos, searched recursively (default {shown(DATA)})")
    ap.add_argument("--max-side", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3, help="timed passes; the median counts (default 3)")
    args = ap.parse_args()

    files = largest_photos(require(args.data, "JPEG photos"), args.limit)
    if not files:
        print(f"no JPEG photos in {args.data}", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    times = {False: [], True: []}  # draft: seconds per pass over all photos
    worst = float("inf")
    for r in range(args.repeat):
        spent = {False: 0.0, True: 0.0}
        for p in files:
            p.read_bytes()  # into the page cache, outside the timing
            out = {}
            for draft in (r % 2 == 1, r % 2 == 0):  # which path goes first alternates per pass
                t0 = time.perf_counter()
                out[draft] = working_image(p, args.max_side, draft)
                spent[draft] += time.perf_counter() - t0
            assert out[False].shape == out[True].shape, p  # the working size never depends on the decode
            if r == 0:
                worst = min(worst, psnr(out[True], out[False]))
        for draft in spent:
            times[draft].append(spent[draft])
        print(f"pass {r + 1}/{args.repeat}: full {spent[False]:.2f} s, draft {spent[True]:.2f} s", file=sys.stderr,
              flush=True)

    full, draft = (len(files) / statistics.median(times[d]) for d in (False, True))
    pixels = sum(megapixels(p) for p in files) / len(files)
    print(f"\n{len(files)} photos of {shown(args.data)} (mean {pixels:.1f} MP), --max-side {args.max_side}, "
          f"median of {args.repeat} passes\n")
    print("| full decode + Lanczos (images/s) | draft decode + Lanczos (images/s) | speed-up | min PSNR draft vs full (dB) |")
    print("|---:|---:|---:|---:|")
    print(f"| {full:.2f} | {draft:.2f} | {draft / full:.2f}x | {worst:.1f} |")
    load_after = os.getloadavg()
    print(f"\nload average (1, 5, 15 min): before {', '.join(f'{x:.2f}' for x in load_before)}; "
          f"after {', '.join(f'{x:.2f}' for x in load_after)} ({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
