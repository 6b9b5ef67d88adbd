"""`ccv convert` against the original test script's way of converting a folder, in one run.

Baseline (what the original ``test.py`` does, with ``--preprocess none``): one image at a time,
decoded in the main thread, PyTorch fp32 eager, batch 1, saved as PNG with Pillow's defaults. The
only liberty taken: it pads to a multiple of 4 and crops back (the original resizes), so both
produce the same pixels and the PSNR compares inference alone.
Ours: ``Converter`` with the backend ``auto`` picks for the device, PNG output, default workers.

    python benchmarks/convert_speed.py                     # 20 photos 256x256 + 4 large photos
    python benchmarks/convert_speed.py --small 8 --large 0 --device cuda
    python benchmarks/convert_speed.py --data gpu_data --device cuda   # the subset of benchmarks/gpu_prepare.sh
    python benchmarks/convert_speed.py --job 200            # the photographer's job (issue 15), below
    python benchmarks/convert_speed.py --nets-large 2       # compact against full-size network at ~12 MP

``--job N``: N photos of 256x256, for each network (``--nets full compact``: the original's
9-block ngf 64 generator and the bundled model's 6-block ngf 32 one), the original loop against
``ccv convert --model`` run as a command, as a user runs it: wall time of the whole process
(start-up, planning, any compiling included), first with an empty compile cache and then again
with the cache that run left (it matters only where the first run chose to compile). The PSNR is against the baseline's fp32 output.

Random-init weights (the original's N(0, 0.02)): speed and numerical agreement do not depend on the
weights' values.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cyclegan_convert.backends.base import pad_to_multiple
from cyclegan_convert.backends.select import make_backend
from cyclegan_convert.converter import export_artifacts
from cyclegan_convert.converter import ConvertOptions, Converter
from cyclegan_convert.imaging import read_rgb
from cyclegan_convert.networks import ResnetGenerator, init_weights
from cyclegan_convert.resolve import ModelRef

from data_paths import require, shared_data, shown  # benchmarks/ is on sys.path when run as a script
from quality_metrics import psnr

DATA = shared_data()  # ../shared/data beside the repository; --data overrides
LAYOUT = "a folder with monet2photo/trainB/ and photos-large/ or large/"


def make_folder(dst: Path, n_small: int, n_large: int, data: Path = DATA) -> list[Path]:
    """A copy of real photos: ``n_small`` 256x256 landscapes and the ``n_large`` smallest large photos.

    ``data`` holds ``monet2photo/trainB/`` and ``photos-large/`` (or ``large/``, as in gpu_data/)."""
    small = sorted(require(data / "monet2photo" / "trainB", LAYOUT).glob("*.jpg"))[:n_small] if n_small else []
    large = sorted(require(large_folder(data), LAYOUT).rglob("*.jpg"),
                   key=lambda p: Image.open(p).size[0] * Image.open(p).size[1]) if n_large else []
    dst.mkdir(parents=True)
    files = []
    for p in small + large[:n_large]:
        files.append(Path(shutil.copy(p, dst / p.name)))
    return files


def large_folder(data: Path) -> Path:
    return data / "photos-large" if (data / "photos-large").is_dir() else data / "large"


def reference(net: torch.nn.Module, f: Path) -> np.ndarray:
    """``net`` in fp32 on the photo as ccv reads it (colour-managed to sRGB): the quality column's
    reference. The original's loop ignores ICC profiles (183 of the job's 200 photos have one), and
    a random-init generator paints noise that turns any change of its input into a change of 20 dB."""
    x = torch.from_numpy(np.asarray(read_rgb(f))).permute(2, 0, 1)[None].float().div(127.5).sub(1)
    x, h, w = pad_to_multiple(x)
    with torch.no_grad():
        y = net(x)[..., :h, :w]
    return y[0].add(1).mul(127.5).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()


def baseline(files: list[Path], net: torch.nn.Module, out: Path, device: torch.device) -> float:
    """The original's loop. Returns seconds."""
    out.mkdir()
    t0 = time.perf_counter()
    for f in files:
        img = Image.open(f).convert("RGB")
        x = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(device)
        x, h, w = pad_to_multiple(x)
        with torch.no_grad():
            y = net(x)[..., :h, :w]
        a = y[0].add(1).mul(127.5).round().clamp(0, 255).byte().permute(1, 2, 0).cpu().numpy()
        Image.fromarray(a).save(out / f"{f.stem}.png")
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0




def command_run(files: list[Path], weights: Path, out: Path, cache: Path, args: argparse.Namespace
                ) -> tuple[float, int]:
    """``ccv convert`` as a user runs it, in its own process; returns its wall time and how many
    image sizes it chose to compile."""
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache), "CCV_HOME": str(cache.parent / "ccvhome")}
    cmd = [sys.executable, "-m", "cyclegan_convert", "convert", str(files[0].parent), "--model", str(weights),
           "-o", str(out), "--ext", "png", "--device", args.device, "--backend", args.backend]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"ccv convert failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    compiled = 0
    for line in (r.stdout + r.stderr).splitlines():
        if line.startswith(("backend:", "note:")) or "compiling" in line:
            print("   ", line.strip()[:200], flush=True)
        compiled += "compiling the generator for" in line
    return took, compiled


NETS = {"full": dict(ngf=64, n_blocks=9), "compact": dict(ngf=32, n_blocks=6, upsample="resize", notch=(4, 32.0))}


def job(args: argparse.Namespace) -> int:
    """The photographer's job: ``args.job`` photos, each network, baseline vs ours, twice (empty compile cache, then the one the first run left)."""
    work = Path(tempfile.mkdtemp(prefix="ccv-bench-"))
    try:
        files = make_folder(work / "photos", args.job, 0, args.data)
        load = os.getloadavg()[0]
        print(f"{len(files)} photos of 256x256; torch {torch.__version__}, {torch.get_num_threads()} threads; "
              f"load average {load:.2f} at the start", flush=True)
        rows = []
        for name in args.nets:
            torch.manual_seed(0)
            net = init_weights(ResnetGenerator(**NETS[name])).eval()
            weights = work / f"{name}.pth"
            torch.save(net.state_dict(), weights)
            t_base = baseline(files, net, work / f"base_{name}", torch.device("cpu"))
            print(f"{name}: baseline {t_base:.1f} s", flush=True)
            cache = work / f"inductor_{name}"
            for phase in ("1st, empty cache", "2nd, cache of the 1st"):
                out = work / f"ours_{name}_{phase[:3]}"
                t, compiled = command_run(files, weights, out, cache, args)
                score = min(psnr(reference(net, f), np.asarray(Image.open(out / f"{f.stem}.png"))) for f in files[:20])
                print(f"{name}: ours {phase} {t:.1f} s", flush=True)
                rows.append((name, phase, compiled, len(files) / t_base, len(files) / t, t_base / t, score))
        print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
        print("\n| network | ccv run | sizes compiled | original loop images/s | ccv convert images/s | ratio | "
              "min PSNR vs fp32, 20 photos (dB) |")
        print("|---|---|---|---|---|---|---|")
        for name, phase, compiled, base, ours, ratio, score in rows:
            print(f"| {name} | {phase} | {compiled} | {base:.2f} | {ours:.2f} | {ratio:.2f}x | {score:.1f} |")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def networks_large(args: argparse.Namespace) -> int:
    """The compact network against the full-size one on ``args.nets_large`` photos of about 12 MP,
    each converted by ``ccv convert`` as a command (tiles with whole-image statistics, as users get).
    No original-loop row: it runs a 12 MP image whole in fp32, about 2 minutes a photo here."""
    work = Path(tempfile.mkdtemp(prefix="ccv-bench-"))
    try:
        by_size = sorted(require(large_folder(args.data), LAYOUT).rglob("*.jpg"),
                         key=lambda p: abs(np.prod(Image.open(p).size) - 12e6))
        (work / "photos").mkdir()
        files = [Path(shutil.copy(p, work / "photos" / p.name)) for p in by_size[:args.nets_large]]
        mp = sum(np.prod(Image.open(f).size) for f in files) / 1e6
        print(f"{len(files)} photos, {mp:.1f} MP in all; torch {torch.__version__}, {torch.get_num_threads()} "
              f"threads; load average {os.getloadavg()[0]:.2f} at the start", flush=True)
        rows = []
        for name in args.nets:
            torch.manual_seed(0)
            weights = work / f"{name}.pth"
            torch.save(init_weights(ResnetGenerator(**NETS[name])).state_dict(), weights)
            t, _ = command_run(files, weights, work / f"ours_{name}", work / f"inductor_{name}", args)
            print(f"{name}: {t:.1f} s", flush=True)
            rows.append((name, t))
        print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
        print("\n| network | images/s | MP/s | time / first row's |\n|---|---|---|---|")
        for name, t in rows:
            print(f"| {name} | {len(files) / t:.3f} | {mp / t:.2f} | {t / rows[0][1]:.2f} |")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=20, help="256x256 photos")
    ap.add_argument("--large", type=int, default=4, help="large photos (the smallest of the large set first)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--batch-size", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                    help="ours with (or without) torch.compile; default: ccv's own choice")
    ap.add_argument("--data", type=Path, default=DATA,
                    metavar="DIR", help=f"{LAYOUT} (default {shown(DATA)})")
    ap.add_argument("--job", type=int, default=0, help="N photos of 256x256, each --nets network, ccv convert run twice")
    ap.add_argument("--nets", nargs="+", default=["full", "compact"], choices=sorted(NETS))
    ap.add_argument("--nets-large", type=int, default=0, metavar="K",
                    help="K photos of about 12 MP, each --nets network through ccv convert (no original loop)")
    args = ap.parse_args()
    if args.job:
        return job(args)
    if args.nets_large:
        return networks_large(args)

    work = Path(tempfile.mkdtemp(prefix="ccv-bench-"))
    try:
        files = make_folder(work / "photos", args.small, args.large, args.data)
        torch.manual_seed(0)
        net = init_weights(ResnetGenerator()).eval()
        weights = work / "g.pth"
        torch.save(net.state_dict(), weights)
        ref = ModelRef(weights, "pytorch")
        engine = make_backend(ref, args.backend, args.device, precision=args.precision, compile=args.compile,
                              artifacts=export_artifacts())
        device = torch.device("cuda" if engine.device.type == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                              else "cpu")
        pixels = sum(np.prod(Image.open(f).size) for f in files)
        print(f"{len(files)} images, {pixels / 1e6:.1f} MP in all; torch {torch.__version__}, {torch.get_num_threads()} "
              f"threads, device {device}" + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""),
              flush=True)

        t_base = baseline(files, net.to(device), work / "baseline", device)
        print(f"baseline: {t_base:.1f} s", flush=True)
        opts = ConvertOptions(output=work / "ours", ext="png", batch_size=args.batch_size, jobs=args.jobs,
                              backend=args.backend, device=args.device)
        summary = Converter(ref, opts, backend=engine).run([str(work / "photos")])
        t_ours = summary.elapsed_s
        print(f"ours ({summary.backend}): {t_ours:.1f} s", flush=True)
        if summary.failed:
            print(f"failures: {summary.failed}")
            return 1
        scores = [psnr(np.asarray(Image.open(work / "baseline" / f"{f.stem}.png")),
                       np.asarray(Image.open(work / "ours" / f"{f.stem}.png")))
                  for f in files]
        n = len(files)
        print("\n| run | backend | images/s | MP/s | ratio | min PSNR vs fp32 (dB) |")
        print("|---|---|---|---|---|---|")
        print(f"| original-style loop | PyTorch fp32 eager, batch 1 | {n / t_base:.3f} | {pixels / 1e6 / t_base:.3f} | 1.00x | reference |")
        print(f"| ccv convert | {summary.backend} | {n / t_ours:.3f} | {pixels / 1e6 / t_ours:.3f} | "
              f"{t_base / t_ours:.2f}x | {min(scores):.1f} |")
        s = summary.stats
        print(f"\nstage rates (images/s each stage sustains): decode {s.decode.rate:.1f}, infer {s.infer.rate:.2f}, "
              f"encode {s.encode.rate:.1f}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
