"""Seconds per real photo, end to end, against the plain baseline and the CPU's limit (issue 28).

For each photo (real ones from ../shared/data/photos-large at 2-12 MP, plus 24 and 48 MP made by
upscaling the 12 MP one), in a process of its own so that its peak memory is its own:
- ccv: `ccv convert PHOTO -o DIR --colors model --strength 1 --strokes 0 --highlights 0 --edges 0` with the
  bundled model, otherwise at default settings (decode, tiles, notch, encode, metadata), seconds and
  peak RSS, with the raw look so that the output can be compared with the baseline's raw network
  output; and at the default look (the model's recommendation, which a plain `ccv convert` applies):
  the issue's bar is for default settings. The two alternate (which goes first too), so that both
  see the same machine; the peak RSS column is the larger of the two;
- baseline: the same network in fp32 eager PyTorch on the whole image at once, as the original's
  test script does with `--preprocess none` (skipped above --baseline-max-mp: its activations at
  48 MP take tens of GB);
- the network's FLOPs at that size (multiply-adds x 2, counted on its convolutions), and the
  seconds they take at this CPU's measured peak (the best of a few matmuls, square and shaped like the
  residual blocks' convolutions, in bf16 where the CPU has native bf16, fp32 elsewhere): "x limit" is
  ccv's time over that;
- quality: ccv's output against the baseline's (PSNR, dB).

Video (``--video 720,1080``): a clip of ``--video-frames`` frames at each height (16:9, real photos of
the data folder panned and zoomed, 30 fps, AAC audio), `ccv video CLIP -o OUT.mp4 --colors model
--strength 1` at default settings and with `--max-side 360`, its own process: frames/s end to end
(start-up included) and "x limit" against the FLOPs of the working size at the same peak.

    python benchmarks/photo_speed.py [--data DIR] [--sizes 24,48] [--repeat 1] [--video 720,1080] [--markdown FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from data_paths import require, shared_data, shown  # benchmarks/ is on sys.path when run as a script
from quality_metrics import psnr

from cyclegan_convert.look import RAW_FLAGS  # the raw look, whatever the model recommends

PHOTOS = ["mate_nature/Storm.jpg", "lomiri_16.04/free_by_Peter_Nerlich.jpg",
          "lomiri_16.04/sunset_by_Aitzol_Berasategi.jpg"]  # 2.5, 6.2 and 12.2 MP
UPSCALE_FROM = "lomiri_16.04/sunset_by_Aitzol_Berasategi.jpg"


def _bundled_generator() -> torch.nn.Module:
    from cyclegan_convert.resolve import resolve_model
    from cyclegan_convert.weights import load_generator

    return load_generator(resolve_model("monet", None, None).path).eval()


def flops_per_pixel(net: torch.nn.Module, side: int = 256) -> float:
    """FLOPs (2 x multiply-adds) of the convolutions per output pixel, counted at side x side."""
    total = 0

    def hook(m, inp, out):
        nonlocal total
        k = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]
        if isinstance(m, torch.nn.ConvTranspose2d):
            total += 2 * inp[0].numel() * m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]
        else:
            total += 2 * out.numel() * k

    hooks = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    with torch.no_grad():
        net(torch.zeros(1, 3, side, side))
    for h in hooks:
        h.remove()
    return total / (side * side)


# Matrix shapes (m, k, n) for the peak: square ones, and the residual blocks' convolutions as matrices
# (pixels x 9 * channels x channels). The best of them is the peak: a 4096^3 matmul alone, whose
# operands leave a 32 MB L3 cache, read 393 GFLOP/s where the blocks' own convolutions ran at 430
# (AMD EPYC, stop 27), which would put ccv closer to its limit than it is.
PEAK_SHAPES = ((4096, 4096, 4096), (2048, 2048, 2048), (1024, 1024, 1024), (16384, 1152, 128), (4096, 2304, 256))


def peak_gflops(dtype: torch.dtype, shapes=PEAK_SHAPES, reps: int = 3) -> float:
    best = 0.0
    for m, k, n in shapes:
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        torch.mm(a, b)  # warm-up
        for _ in range(reps):
            t0 = time.perf_counter()
            torch.mm(a, b)
            best = max(best, 2 * m * k * n / (time.perf_counter() - t0) / 1e9)
    return best


def _measured(cmd: list[str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in GB, stdout) of a child process, its own RSS (wait4, not the children's max)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = p.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(p.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out[-2000:]}")
    return seconds, usage.ru_maxrss / 2**20, out


def baseline_one(src: Path, dst: Path) -> None:
    """The child's work for the baseline: the whole image through fp32 eager PyTorch."""
    from cyclegan_convert.backends.base import pad_to_multiple

    torch.set_num_threads(os.cpu_count() or 1)
    net = _bundled_generator()
    img = np.asarray(Image.open(src).convert("RGB"))
    t0 = time.perf_counter()
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(127.5).sub(1)
    x, h, w = pad_to_multiple(x)
    with torch.no_grad():
        y = net(x)[..., :h, :w]
    a = y[0].add(1).mul(127.5).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
    print(json.dumps({"network_s": time.perf_counter() - t0}))
    Image.fromarray(a).save(dst)


def video_rows(tmp: Path, heights: list[int], frames: int, photos: list[Path], fpp: float, peak: float) -> list[dict]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from videoclips import ClipSpec, make_clip

    from cyclegan_convert.video_io import fit_within

    rows = []
    for height in heights:
        size = (height * 16 // 9 // 2 * 2, height)
        clip = make_clip(tmp / f"clip_{height}p.mp4", ClipSpec(size=size, frames=frames, fps=30, photos=photos))
        for max_side in (None, 360):
            work = fit_within(*size, max_side)
            extra = ["--max-side", str(max_side)] if max_side else []
            seconds, rss, _ = _measured([sys.executable, "-m", "cyclegan_convert", "video", str(clip), "-o",
                                         str(tmp / f"out_{height}_{max_side}.mp4"), "--to", "monet",
                                         *RAW_FLAGS.split(), *extra])
            tflop = fpp * ((work[0] + 3) // 4 * 4) * ((work[1] + 3) // 4 * 4) * frames / 1e12
            row = {"clip": f"{size[0]}x{size[1]}" + (f" --max-side {max_side}" if max_side else ""),
                   "work": f"{work[0]}x{work[1]}", "fps": frames / seconds, "gflops": tflop * 1e3 / seconds,
                   "x_limit": seconds / (tflop * 1e3 / peak), "rss": rss}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=shared_data("photos-large"), help="photos-large folder")
    ap.add_argument("--sizes", default="24,48", help="MP of photos made by upscaling the 12 MP one ('' for none)")
    ap.add_argument("--baseline-max-mp", type=float, default=13.0)
    ap.add_argument("--repeat", type=int, default=1, help="ccv runs per photo (the best is kept)")
    ap.add_argument("--video", default="720,1080", help="heights of the video clips ('' for none)")
    ap.add_argument("--video-frames", type=int, default=24)
    ap.add_argument("--markdown", type=Path)
    ap.add_argument("--baseline-one", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.baseline_one:
        baseline_one(*args.baseline_one)
        return 0
    from cyclegan_convert.backends.select import cpu_has_native_bf16, cpu_name

    data = require(args.data, "the large photos (photos-large)")
    load0 = os.getloadavg()
    net = _bundled_generator()
    fpp = flops_per_pixel(net)
    native = cpu_has_native_bf16()
    peak = peak_gflops(torch.bfloat16 if native else torch.float32)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ccv-photo-speed-") as tmp:
        tmp = Path(tmp)
        photos = [data / p for p in PHOTOS]
        big = Image.open(data / UPSCALE_FROM).convert("RGB")
        for mp in [float(s) for s in args.sizes.split(",") if s]:
            k = (mp * 1e6 / (big.width * big.height)) ** 0.5
            path = tmp / f"upscaled_{mp:g}MP.jpg"
            big.resize((round(big.width * k), round(big.height * k)), Image.Resampling.LANCZOS).save(path, quality=92)
            photos.append(path)
        for src in photos:
            with Image.open(src) as im:
                w, h = im.size
            pad = ((h + 3) // 4 * 4) * ((w + 3) // 4 * 4)
            runs, looked = [], []
            for i in range(args.repeat):
                convert = [sys.executable, "-m", "cyclegan_convert", "convert", str(src), "--to", "monet"]
                both = [(runs, [*convert, "-o", str(tmp / f"ccv_{i}"), *RAW_FLAGS.split()]),
                        (looked, [*convert, "-o", str(tmp / f"look_{i}")])]
                for into, cmd in (both if i % 2 == 0 else both[::-1]):
                    into.append(_measured(cmd))
            ccv_s, ccv_rss, _ = min(runs)
            look_s, look_rss, _ = min(looked)
            got = np.asarray(Image.open(next((tmp / "ccv_0").glob(src.stem + ".*"))).convert("RGB"))
            row = {"photo": src.name, "MP": w * h / 1e6, "ccv_s": ccv_s, "ccv_rss": max(ccv_rss, look_rss),
                   "look_s": look_s, "tflop": fpp * pad / 1e12}
            row["limit_s"] = row["tflop"] * 1e3 / peak
            if w * h / 1e6 <= args.baseline_max_mp:
                ref = tmp / "baseline.png"
                base_s, base_rss, _ = _measured([sys.executable, __file__, "--baseline-one", str(src), str(ref)])
                row.update(base_s=base_s, base_rss=base_rss, psnr=psnr(got, np.asarray(Image.open(ref).convert("RGB"))))
            rows.append(row)
            print(json.dumps(row), flush=True)
        videos = video_rows(tmp, [int(v) for v in args.video.split(",") if v], args.video_frames, photos[:2], fpp, peak)
    load1 = os.getloadavg()
    lines = [f"CPU: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}; peak "
             f"{'bf16' if native else 'fp32'} matmul {peak:.0f} GFLOP/s (the best of {len(PEAK_SHAPES)} shapes); the network: "
             f"{fpp / 1e6:.3f} MFLOP per pixel; load average {load0[0]:.2f} at start, {load1[0]:.2f} at end.",
             f"Photos: {shown(data)} and upscaled copies of {UPSCALE_FROM}; ccv = `ccv convert PHOTO -o DIR --to monet "
             "--colors model --strength 1 --strokes 0 --highlights 0 --edges 0` (bundled model, raw look, otherwise default settings; a new process: "
             "its start and the model load count), best of "
             f"{args.repeat}; default look = the same without the look's flags (the bundled model's recommended look), "
             f"alternating with it; peak GB: the larger of the two; baseline = fp32 eager, whole image, one run (its own process).", "",
             "| photo | MP | ccv s | ccv GFLOP/s | x limit | default look s | default look x limit | ccv peak GB | baseline s "
             "| baseline peak GB | ccv speed-up | PSNR vs baseline |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        base = (f"{r['base_s']:.1f} | {r['base_rss']:.1f} | {r['base_s'] / r['ccv_s']:.2f}x | {r['psnr']:.1f} dB"
                if "base_s" in r else "not run | - | - | -")
        lines.append(f"| {r['photo']} | {r['MP']:.1f} | {r['ccv_s']:.1f} | {r['tflop'] * 1e3 / r['ccv_s']:.0f} | "
                     f"{r['ccv_s'] / r['limit_s']:.2f}x | {r['look_s']:.1f} | {r['look_s'] / r['limit_s']:.2f}x | "
                     f"{r['ccv_rss']:.2f} | {base} |")
    if videos:
        lines += ["", f"Video: `ccv video CLIP -o OUT.mp4 --to monet --colors model --strength 1 [--max-side 360]`, "
                  f"{args.video_frames} frames at 30 fps (photos panned and zoomed, AAC audio), its own process "
                  "(start-up included).", "",
                  "| clip | working size | frames/s | GFLOP/s | x limit | peak GB |", "|---|---|---|---|---|---|"]
        for v in videos:
            lines.append(f"| {v['clip']} | {v['work']} | {v['fps']:.2f} | {v['gflops']:.0f} | {v['x_limit']:.2f}x | {v['rss']:.2f} |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
