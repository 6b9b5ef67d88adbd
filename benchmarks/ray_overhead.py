"""`ccv convert --ray` on a local Ray instance against a plain `ccv convert`, same photos, same
device, same model, in one run: the overhead ratio and the per-stage rates.

    python benchmarks/ray_overhead.py                   # 200 photos of monet2photo/trainB, full-size generator
    python benchmarks/ray_overhead.py --limit 8 --ngf 8 --blocks 2   # a quick check that it runs
    python benchmarks/ray_overhead.py --device cuda

The generator has the original's random init (speed does not depend on the weights' values). Both
runs write JPEGs into fresh folders; the Ray run includes starting Ray (reported apart). The plain
run goes first, so the page cache favours the Ray run slightly, if at all.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from cyclegan_convert.converter import ConvertOptions, Converter
from cyclegan_convert.networks import ResnetGenerator, init_weights
from cyclegan_convert.resolve import ModelRef

from data_paths import require, shared_data, shown  # benchmarks/ is on sys.path when run as a script

DATA = shared_data("monet2photo", "trainB")  # --data overrides


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", "-n", type=int, default=200, help="photos (default 200)")
    ap.add_argument("--data", type=Path, default=DATA, metavar="DIR",
                    help=f"folder of JPEG photos (default {shown(DATA)})")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--blocks", type=int, default=9)
    ap.add_argument("--jobs", type=int, default=2, help="plain run: decode and encode workers")
    ap.add_argument("--num-cpus", type=int, default=None, help="local Ray's CPUs (default: all)")
    args = ap.parse_args()
    files = sorted(require(args.data, "JPEG photos").glob("*.jpg"))[: args.limit]
    if not files:
        sys.exit(f"error: no photos in {shown(args.data)}; give --data DIR")

    import ray

    from cyclegan_convert.ray_runner import RayConverter, _start_ray

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "in"
        src.mkdir()
        for f in files:
            shutil.copy(f, src / f.name)
        torch.manual_seed(0)
        model = tmp / "generator.pth"
        torch.save(init_weights(ResnetGenerator(ngf=args.ngf, n_blocks=args.blocks)).state_dict(), model)
        ref = ModelRef(model, "pytorch")

        plain_opt = ConvertOptions(output=tmp / "plain", device=args.device, jobs=args.jobs)
        t0 = time.perf_counter()
        plain = Converter(ref, plain_opt).run([str(src)])
        plain_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
        _start_ray(ray, None)  # Ray's progress bars and logs off, as the CLI has them
        start_s = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            on_ray = RayConverter(ref, ConvertOptions(output=tmp / "ray", device=args.device)).run([str(src)])
            ray_s = time.perf_counter() - t0
        finally:
            ray.shutdown()

    n = len(files)
    assert plain.converted == on_ray.converted == n, (plain.converted, on_ray.converted, plain.failed, on_ray.failed)
    print(f"{n} photos from {shown(args.data)}, generator ngf {args.ngf} / {args.blocks} blocks, device {args.device}")
    print(f"plain backend: {plain.backend}")
    print(f"ray backend:   {on_ray.backend}")
    rows = [("plain ccv convert", plain_s, plain.stats), ("ccv convert --ray", ray_s, on_ray.stats)]
    print(f"{'run':<20}{'wall s':>9}{'files/s':>9}{'decode/s':>10}{'infer/s':>9}{'encode/s':>10}")
    for name, s, st in rows:
        print(f"{name:<20}{s:>9.1f}{n / s:>9.2f}{st.decode.rate:>10.2f}{st.infer.rate:>9.2f}{st.encode.rate:>10.2f}")
    print(f"ray start-up: {start_s:.1f} s (not in the wall time above)")
    print(f"overhead ratio (ray wall / plain wall): {ray_s / plain_s:.2f}x; with the start-up: "
          f"{(ray_s + start_s) / plain_s:.2f}x")
    print("time split of the ray run (stages summed over workers): "
          + ", ".join(f"{k} {v:.1f} s" for k, v in on_ray.time_split.items()))
    print("stage rates: plain = the stage with all its workers; ray = per worker (one task or actor)")


if __name__ == "__main__":
    main()
