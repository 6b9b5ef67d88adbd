"""`ccv video` against the usual workaround, on the same clip, model, backend and device.

The workaround (what users of the original do): extract every frame to a PNG, convert the PNGs one
by one, encode the folder again (and lose the audio and the timestamps on the way). ``ccv video``
decodes, infers and encodes at once in one process. Prints frames/s for both, the ratio, and the
rate each stage sustains on its own.

    python benchmarks/video_speed.py --size 426x240 --frames 48 [--ngf 64 --blocks 9] [--device cuda]

The clip is made from two real photos (the first two JPEGs of ../shared/data/photos-large/mate_nature
beside the repository, or of ``--data DIR``), panned and zoomed, with a sine-wave audio track.
Generators are random-init (no trained model is assumed).
Numbers go to benchmarks/RESULTS.md (## video) by hand, with the machine they came from.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from data_paths import require, shared_data, shown  # noqa: E402  (benchmarks/ is on sys.path as a script)
from videoclips import ClipSpec, make_clip  # noqa: E402  (the tests' clip maker: real photos, panned)

from cyclegan_convert.networks import ResnetGenerator, init_weights  # noqa: E402
from cyclegan_convert.resolve import resolve_model  # noqa: E402
from cyclegan_convert.video import VideoConverter, VideoOptions  # noqa: E402

DATA = shared_data("photos-large", "mate_nature")  # --data overrides


def workaround(src: Path, work: Path, backend) -> dict[str, float]:
    """Frames to PNG files, each file through the model, the files encoded again. Seconds per step."""
    import av
    from PIL import Image

    frames_dir, out_dir = work / "frames", work / "converted"
    frames_dir.mkdir()
    out_dir.mkdir()
    t0 = time.perf_counter()
    with av.open(str(src)) as c:
        rate = c.streams.video[0].average_rate
        for i, f in enumerate(c.decode(video=0)):
            f.to_image().save(frames_dir / f"{i:05d}.png")
    t1 = time.perf_counter()
    for p in sorted(frames_dir.glob("*.png")):
        x = torch.from_numpy(np.array(Image.open(p).convert("RGB")))[None]
        Image.fromarray(backend.infer(x)[0].numpy()).save(out_dir / p.name)
    t2 = time.perf_counter()
    with av.open(str(work / "out.mp4"), "w") as c:
        vs = None
        for p in sorted(out_dir.glob("*.png")):
            img = Image.open(p)
            if vs is None:
                vs = c.add_stream("libx264", rate=rate)
                vs.width, vs.height, vs.pix_fmt = img.width, img.height, "yuv420p"
                vs.codec_context.options = {"crf": "18"}
            c.mux(vs.encode(av.VideoFrame.from_image(img).reformat(format="yuv420p")))
        c.mux(vs.encode(None))
    t3 = time.perf_counter()
    return {"extract": t1 - t0, "convert": t2 - t1, "encode": t3 - t2, "total": t3 - t0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="426x240")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--blocks", type=int, default=9)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=0)
    ap.add_argument("--data", type=Path, default=DATA, metavar="DIR",
                    help=f"folder whose first two JPEGs make the clip (default {shown(DATA)})")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    photos = sorted(require(args.data, "photos for the clip").glob("*.jpg"))[:2]
    if not photos:
        sys.exit(f"error: no JPEG photos in {args.data}; give --data DIR")

    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        src = make_clip(work / "clip.mp4", ClipSpec(size=(w, h), frames=args.frames, fps=24, photos=photos))
        torch.manual_seed(0)
        torch.save(init_weights(ResnetGenerator(ngf=args.ngf, n_blocks=args.blocks)).state_dict(), work / "g.pth")
        ref = resolve_model(model=work / "g.pth")

        from cyclegan_convert.backends.select import make_backend
        from cyclegan_convert.converter import export_artifacts

        backend = make_backend(ref, args.backend, args.device, artifacts=export_artifacts()).open()
        backend.infer(torch.zeros(1, h, w, 3, dtype=torch.uint8))  # warm-up, for both contenders
        opts = VideoOptions(output=work / "ccv.mp4", batch_size=args.batch_size)
        ours = VideoConverter(ref, opts, backend=backend).run(src)
        wk = workaround(src, work, backend)
        backend.close()

    n = args.frames
    print(f"clip: {w}x{h}, {n} frames (real photos panned and zoomed, AAC audio); "
          f"generator ngf {args.ngf}, {args.blocks} blocks, random init; backend {ours.backend}")
    print(f"{'':28}{'frames/s':>10}{'ratio':>8}")
    print(f"{'workaround (PNG folder)':28}{n / wk['total']:>10.2f}{1.0:>8.2f}")
    print(f"{'ccv video':28}{ours.fps:>10.2f}{ours.fps / (n / wk['total']):>8.2f}")
    print("per stage, frames/s:")
    print(f"  workaround: extract {n / wk['extract']:.1f}, convert {n / wk['convert']:.2f}, encode {n / wk['encode']:.1f}")
    r = ours.rates
    print(f"  ccv video:  decode {r['decode']:.1f}, model {r['infer']:.2f}, encode {r['encode']:.1f} "
          f"(each stage alone; they overlap)")
    print("audio and timestamps: workaround loses both; ccv video keeps them")


if __name__ == "__main__":
    main()
