"""How much `--stable` reduces flicker: mean absolute frame-to-frame change of the output relative
to the input's, with and without, on a clip of real photos panned and zoomed (two shots, one cut).

    python benchmarks/video_flicker.py --size 256x144 --frames 40 [--ngf 64 --blocks 9]
    python benchmarks/video_flicker.py --to monet     # a real model: the bundled photo-to-Monet one
    python benchmarks/video_flicker.py --data DIR     # two other photos: the first two JPEGs of DIR

The two shots are two photos of ../shared/data/photos-large/lomiri_16.04 (beside the repository).

A ratio of 1.0 means the output changes as much as the input does (motion only); above that is
flicker the model adds. No trained model is assumed: the generator is random-init (N(0, 0.02), as
the original's init), which flickers for the same reason a trained one does (per-frame
InstanceNorm statistics). Encoded losslessly (crf 0) so the codec adds no change of its own.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from data_paths import require, shared_data, shown  # noqa: E402  (benchmarks/ is on sys.path as a script)
from videoclips import ClipSpec, make_clip, read_video  # noqa: E402

from cyclegan_convert.networks import ResnetGenerator, init_weights  # noqa: E402
from cyclegan_convert.resolve import resolve_model  # noqa: E402
from cyclegan_convert.stabilize import frame_change  # noqa: E402
from cyclegan_convert.video import VideoConverter, VideoOptions  # noqa: E402

DATA = shared_data("photos-large", "lomiri_16.04")  # --data overrides
SHOTS = ("sunset_by_Aitzol_Berasategi.jpg", "Bridge_by_Sander_Klootwijk.jpg")  # in DATA


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="256x144")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--blocks", type=int, default=9)
    ap.add_argument("--momentum", type=float, nargs="+", default=[0.9])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--to", help="a model from the store (e.g. monet) instead of a random-init generator")
    ap.add_argument("--data", type=Path, default=DATA, metavar="DIR",
                    help=f"folder of the two photos (default {shown(DATA)}; another folder: its first two JPEGs)")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    folder = require(args.data, "photos for the clip")
    photos = [folder / n for n in SHOTS if (folder / n).is_file()] or sorted(folder.glob("*.jpg"))[:2]
    if not photos:
        sys.exit(f"error: no JPEG photos in {args.data}; give --data DIR")

    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        src = make_clip(work / "clip.mp4", ClipSpec(size=(w, h), frames=args.frames, fps=24, photos=photos))
        if args.to:
            ref = resolve_model(to=args.to)
        else:
            torch.manual_seed(0)
            torch.save(init_weights(ResnetGenerator(ngf=args.ngf, n_blocks=args.blocks)).state_dict(), work / "g.pth")
            ref = resolve_model(model=work / "g.pth")
        frames_in = read_video(src)["frames"]
        cut = len(frames_in) // max(1, len(photos))

        def measure(frames) -> tuple[float, float, float]:
            """(whole clip, within shots: the pair across the cut left out, and the change of each
            frame's mean colour within shots: the global part that InstanceNorm statistics drive)."""
            pairs = [frame_change([a, b]) for a, b in zip(frames, frames[1:])]
            means = [f.reshape(-1, 3).mean(axis=0) for f in frames]
            shifts = [float(np.abs(a - b).mean()) for a, b in zip(means, means[1:])]
            within = [i for i in range(len(pairs)) if i + 1 != cut]
            return (sum(pairs) / len(pairs), sum(pairs[i] for i in within) / len(within),
                    sum(shifts[i] for i in within) / len(within))

        base_all, base_within, base_shift = measure(frames_in)
        rows = [("input", base_all, base_within, base_shift)]
        runs = [("plain", VideoOptions(crf=0, backend="torch", device=args.device))]
        runs += [(f"--stable (momentum {m})", VideoOptions(crf=0, stable=True, stable_momentum=m, device=args.device))
                 for m in args.momentum]
        for name, opts in runs:
            out = VideoConverter(ref, VideoOptions(**{**opts.__dict__, "output": work / f"{len(rows)}.mp4"})).run(src)
            rows.append((name, *measure(read_video(out.output)["frames"])))

    print(f"clip: {w}x{h}, {len(frames_in)} frames, {len(photos)} shots of real photos panned and zoomed; "
          + (f"model {ref.path}" if args.to else f"generator ngf {args.ngf}, {args.blocks} blocks, random init"))
    print(f"{'':28}{'change/frame':>13}{'vs input':>10}{'within shots':>14}{'vs input':>10}"
          f"{'mean colour':>13}{'vs input':>10}")
    for name, a, b, c in rows:
        print(f"{name:28}{a:>13.2f}{a / base_all:>10.2f}{b:>14.2f}{b / base_within:>10.2f}"
              f"{c:>13.2f}{c / base_shift:>10.2f}")


if __name__ == "__main__":
    main()
