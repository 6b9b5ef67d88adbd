"""Seconds of the look (`cyclegan_convert.look.apply_look`) per real photo, part by part (issue 28).

The look runs after the network on the whole output at output size, so at 12 MP its cost is a share
of a photo's time that the network's FLOP limit does not count. Each part alone (`--colors 0.5`,
`--highlights 1`, `--strokes 0.5`, `--edges 1`) and the bundled model's recommended look, on real
photos of ../shared/data/photos-large, in this process with OpenCV's default threads (one per core,
as in `ccv convert`). The photo stands in for the model's output: no part's cost depends on the
output's content, only on its size (and, for the highlights, on where the photo is nearly white).
Runs alternate between the parts, so that each sees the same machine; min, median and max of
``--repeat`` runs.

    python benchmarks/look_speed.py [--data DIR] [--repeat 5] [--markdown FILE]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from data_paths import require, shared_data, shown  # benchmarks/ is on sys.path when run as a script
from photo_speed import PHOTOS  # the same real photos: 2.5, 6.2 and 12.2 MP

from cyclegan_convert.look import Look, apply_look, recommended_look


def parts(recommended: Look) -> dict[str, Look]:
    return {"colors 0.5": Look(colors=0.5), "highlights 1": Look(highlights=1.0), "strokes 0.5": Look(strokes=0.5),
            "edges 1": Look(edges=1.0), f"recommended ({recommended.describe()})": recommended}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=shared_data("photos-large"), help="photos-large folder")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args()
    from cyclegan_convert.backends.select import cpu_name
    from cyclegan_convert.resolve import resolve_model

    data = require(args.data, "the large photos (photos-large)")
    looks = parts(Look.of(default=recommended_look(resolve_model("monet", None, None))))
    load0 = os.getloadavg()
    rows = []
    for name in PHOTOS:
        photo = np.asarray(Image.open(data / name).convert("RGB"))
        times: dict[str, list[float]] = {part: [] for part in looks}
        for look in looks.values():  # first calls load OpenCV and its kernels
            apply_look(photo, photo, look)
        for _ in range(args.repeat):
            for part, look in looks.items():
                t0 = time.perf_counter()
                apply_look(photo, photo, look)
                times[part].append(time.perf_counter() - t0)
        for part, ts in times.items():
            rows.append((Path(name).name, photo.shape[0] * photo.shape[1] / 1e6, part, min(ts), statistics.median(ts), max(ts)))
            print(rows[-1], flush=True)
    load1 = os.getloadavg()
    lines = [f"CPU: {cpu_name()}, {os.cpu_count()} cores; load average {load0[0]:.2f} at start, {load1[0]:.2f} at end; "
             f"photos: {shown(data)}; {args.repeat} runs each, alternating.", "",
             "| photo | MP | look | min s | median s | max s |", "|---|---|---|---|---|---|"]
    lines += [f"| {p} | {mp:.1f} | {part} | {lo:.2f} | {mid:.2f} | {hi:.2f} |" for p, mp, part, lo, mid, hi in rows]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
