"""Temporal consistency of `ccv video` on real clips: warping error, sharpness and speed of each mode.

    python benchmarks/video_consistency.py                      # the clips in tests/fixtures/video, bundled model
    python benchmarks/video_consistency.py --clip a.mp4 --clip b.mp4 --model G.pth
    python benchmarks/video_consistency.py --speed-frames 12    # also frames/s at 1280x720
    python benchmarks/video_consistency.py --skip-table --gif docs/images/stable_cockatoo.webp
    python benchmarks/video_consistency.py --strokes 0.5        # also per-frame and --stable with strokes

Warping error (Lai et al., ECCV 2018): optical flow on the INPUT frames (Farneback at the clip's
full size: not DIS, which --stable uses, so the measure is not the method's own), the previous frame
of a video warped onto the current one, mean squared difference (RGB in [0, 1]) over the pixels
that pass a forward-backward check; summed over the clip's pairs and divided by the input's own
(1.0: the output moves exactly as the input does). Pairs across a cut (the input's error over 10x
its median) are left out and counted. Sharpness: mean gradient magnitude and Laplacian variance,
each against the per-frame output's.

Modes (all PyTorch, so frames/s compare): per-frame; `--stable` before issue 27 (InstanceNorm
statistics smoothed, no flow: stable_strength 0); the flow-guided blending alone (statistics off:
stable_momentum 0); `--stable` now (both); with ``--strokes K`` also per-frame and `--stable` with
that much of the look's brush strokes. Every mode sets its strokes and highlights (0 but there), so the
table does not change with the model's recommended look. Encoded losslessly (crf 0, .mkv) so the codec adds no
change of its own.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from videoclips import read_video  # noqa: E402  (benchmarks/ is on sys.path as a script)

from cyclegan_convert.backends.select import cpu_name  # noqa: E402
from cyclegan_convert.resolve import resolve_model  # noqa: E402
from cyclegan_convert.temporal import sharpness, warping_errors  # noqa: E402
from cyclegan_convert.video import VideoConverter, VideoOptions  # noqa: E402

CLIPS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "video"
MODES = {
    "per-frame": {},
    "stats only (old --stable)": {"stable": True, "stable_strength": 0.0, "stable_momentum": 0.9},
    "--stable (flow blend)": {"stable": True},
    "flow + stats": {"stable": True, "stable_momentum": 0.9},
}


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def convert(ref, src: Path, out: Path, **options) -> tuple[list[np.ndarray], float]:
    r = VideoConverter(ref, VideoOptions(output=out, crf=0, backend="torch", overwrite=True, **options)).run(src)
    return read_video(r.output)["frames"], r.fps


def consistency(ref, clips: list[Path], tmp: Path, strokes: float = 0.0) -> None:
    raw = {"strokes": 0.0, "highlights": 0.0}  # whatever look the model recommends
    modes = {name: {**raw, **options} for name, options in MODES.items()}
    if strokes:
        modes[f"per-frame, strokes {strokes:g}"] = {**raw, "strokes": strokes}
        modes[f"--stable, strokes {strokes:g}"] = {**raw, "stable": True, "strokes": strokes}
    print(f"CPU: {cpu_name()}; load average before: {load()}")
    print("| clip | frames | mode | warping error vs input | gradient vs per-frame | Laplacian var vs per-frame | frames/s |")
    print("|---|---|---|---|---|---|---|")
    for clip in clips:
        inputs = read_video(clip)["frames"]
        outs, fps = {}, {}
        for name, options in modes.items():
            outs[name], fps[name] = convert(ref, clip, tmp / f"{clip.stem}.{len(outs)}.mkv", **options)
        errors = warping_errors(inputs, [inputs] + list(outs.values()))
        keep = errors[0] < 10 * np.median(errors[0])
        ratios = errors[:, keep].sum(1) / errors[0, keep].sum()
        base = sharpness(outs["per-frame"])
        cut = f", {int((~keep).sum())} cut pairs left out" if (~keep).any() else ""
        print(f"| {clip.name} | {len(inputs)}{cut} | input | 1.00 | | | |")
        for (name, frames), ratio in zip(outs.items(), ratios[1:]):
            g, lap = sharpness(frames)
            print(f"| | | {name} | {ratio:.2f} | {g / base[0]:.2f} | {lap / base[1]:.2f} | {fps[name]:.2f} |", flush=True)
    print(f"load average after: {load()}")


def speed(ref, clip: Path, frames: int, tmp: Path) -> None:
    """Frames/s at 1280x720: per-frame against --stable on the same clip, backend and machine."""
    import av
    from PIL import Image

    src = tmp / "720p.mp4"
    with av.open(str(clip)) as c, av.open(str(src), "w") as o:
        vs = c.streams.video[0]
        s = o.add_stream("libx264", rate=vs.average_rate)
        s.width, s.height, s.pix_fmt = 1280, 720, "yuv420p"
        s.codec_context.options = {"crf": "16"}
        for i, f in enumerate(c.decode(vs)):
            if i == frames:
                break
            rgb = np.array(Image.fromarray(f.to_ndarray(format="rgb24")).resize((1280, 720), Image.BICUBIC))
            out = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            out.pts, out.time_base = i, 1 / vs.average_rate
            o.mux(s.encode(out))
        o.mux(s.encode(None))
    print(f"\nspeed at 1280x720 ({clip.name} scaled up, {frames} frames), CPU: {cpu_name()}, load average {load()}")
    times = {}
    for name in ("per-frame", "--stable (flow blend)", "flow + stats", "per-frame"):  # per-frame twice: load drifts
        _, fps = convert(ref, src, tmp / "speed.mkv", **MODES[name])
        times.setdefault(name, []).append(1 / fps)
        print(f"{name}: {fps:.3f} frames/s ({1 / fps:.2f} s/frame)", flush=True)
    plain = float(np.mean(times["per-frame"]))
    print(f"--stable extra time: {100 * (times['--stable (flow blend)'][0] / plain - 1):+.1f}%, "
          f"with statistics: {100 * (times['flow + stats'][0] / plain - 1):+.1f}% "
          f"(per-frame runs {', '.join(f'{t:.2f}' for t in times['per-frame'])} s/frame); load average {load()}")


def stage_cost(clip: Path, frames: int = 12) -> None:
    """CPU time of the two --stable stages per 1280x720 frame (one OpenCV thread): what they add to
    a conversion, whatever else the machine is running (wall time on a loaded machine says little)."""
    import time

    import cv2

    from cyclegan_convert.temporal import FlowAnalyzer, OutputBlender

    cv2.setNumThreads(1)
    big = [cv2.resize(f, (1280, 720), interpolation=cv2.INTER_CUBIC) for f in read_video(clip)["frames"][:frames]]
    analyze, blend = FlowAnalyzer(), OutputBlender()
    spent = np.zeros(2)
    for f in big:
        t0 = time.process_time()
        motion = analyze(f)
        t1 = time.process_time()
        blend(motion, f[..., ::-1].copy())  # any per-frame output of the same size
        spent += (t1 - t0, time.process_time() - t1)
    a, b = 1000 * spent / len(big)
    print(f"\n--stable stages at 1280x720, CPU time per frame (1 OpenCV thread): flow analysis {a:.0f} ms, "
          f"blend {b:.0f} ms; CPU: {cpu_name()}, load average {load()}")


def gif(ref, clip: Path, path: Path, tmp: Path, width: int = 240, frames: int = 30) -> None:
    """Input | per-frame | --stable, side by side, as an animated image (GIF or WebP by suffix)."""
    from PIL import Image

    clip_info = read_video(clip)
    inputs = clip_info["frames"][:frames]
    cut = {"duration": float(clip_info["times"][frames] - clip_info["times"][0])} if len(clip_info["times"]) > frames else {}
    plain, _ = convert(ref, clip, tmp / "gif.plain.mkv", **cut)
    stable, _ = convert(ref, clip, tmp / "gif.stable.mkv", stable=True, **cut)
    h = round(inputs[0].shape[0] * width / inputs[0].shape[1])
    panels = []
    for i in range(len(inputs)):
        row = [Image.fromarray(f[i]).resize((width, h), Image.LANCZOS) for f in (inputs, plain, stable)]
        sheet = Image.new("RGB", (3 * width + 8, h), "white")
        for k, im in enumerate(row):
            sheet.paste(im, (k * (width + 4), 0))
        panels.append(sheet)
    path.parent.mkdir(parents=True, exist_ok=True)
    panels[0].save(path, save_all=True, append_images=panels[1:], duration=100, loop=0,
                   **({"quality": 70} if path.suffix == ".webp" else {"optimize": True}))
    print(f"{path}: {path.stat().st_size / 1e3:.0f} kB, input | per-frame | --stable, {len(panels)} frames")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, action="append", help="a real video (default: tests/fixtures/video/*.mp4)")
    ap.add_argument("--to", default="monet")
    ap.add_argument("--model", type=Path)
    ap.add_argument("--speed-frames", type=int, default=0, help="also time this many frames at 1280x720")
    ap.add_argument("--speed-clip", type=Path, default=CLIPS / "cockatoo.mp4")
    ap.add_argument("--gif", type=Path, help="write input | per-frame | --stable as an animated image here")
    ap.add_argument("--gif-clip", type=Path, default=CLIPS / "cockatoo.mp4")
    ap.add_argument("--skip-table", action="store_true")
    ap.add_argument("--strokes", type=float, default=0.0, help="also per-frame and --stable with this --strokes")
    args = ap.parse_args()
    ref = resolve_model(to=args.to, model=args.model)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if not args.skip_table:
            consistency(ref, args.clip or sorted(CLIPS.glob("*.mp4")), tmp, args.strokes)
        if args.speed_frames:
            stage_cost(args.speed_clip)
            speed(ref, args.speed_clip, args.speed_frames, tmp)
        if args.gif:
            gif(ref, args.gif_clip, args.gif, tmp)


if __name__ == "__main__":
    main()
