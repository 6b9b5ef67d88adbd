"""Blind pairs of two ways of converting the same large photos: which reads better as a painting?

Each photo of the folder (above ``--min-mp``) is converted twice with the bundled model by `ccv convert
--to monet`, once with each ``--variant NAME=ARGS`` (extra `ccv convert` arguments). Per photo it
writes a 1400 px view and two 640 px crops at 100% of each version, as A and B in an order shuffled
by a fixed seed, beside the downscaled original; the key goes to ``key.json`` and the PSNR between
the versions is printed. A person (or a vision-capable helper, shown only ``views/``) says per photo
which reads better as a painting and what differs.

The default pair is issue 28's look question: photos above 4 MP run in tiles with InstanceNorm
statistics from a 768 px copy (`tiled`) against the whole-image pass (`whole`, `--tile 0`):

    python benchmarks/look_pairs.py --out /tmp/look [--data DIR] [--seed 28]
    python benchmarks/look_pairs.py --out /tmp/strokes --min-mp 0 --variant plain= --variant strokes=--strokes,1
    python benchmarks/look_pairs.py --out /tmp/hl --min-mp 0 --near-white --variant plain=--highlights,0 --variant highlights=

(``--near-white``: only photos with a nearly white place, ``look.highlight_mask``, the first crop centred on it.
``--where-differ``: the first crop centred where the two versions differ most, which tells a judge where
to look and not which is which: for a change that touches only some places, such as ``--edges``.)

Two models: a variant with ``--model,FILE`` uses that generator instead of the bundled one (give it the
look explicitly, e.g. ``new=--model,G.pth,--colors,0.5,--strokes,0.5,--highlights,1``).

(ARGS: commas between words.) Conversions already in OUT with the same model and settings are reused. Run whole, a 16 MP photo needs
about 7 GB.
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
from PIL import Image, ImageOps

from data_paths import require, shared_data, shown  # benchmarks/ is on sys.path when run as a script
from quality_metrics import psnr

from cyclegan_convert.image_stages import AUTO_TILE_PIXELS as TILED_ABOVE  # smaller photos run whole anyway
from cyclegan_convert.look import highlight_mask

Image.MAX_IMAGE_PIXELS = None  # the photos and their conversions run to 16 MP and more
VIEW_SIDE, CROP = 1400, 640
CROP_CENTRES = ((0.5, 0.3), (0.35, 0.65))  # fractions of width and height: the sky or top, the middle ground


def near_white_place(photo: Path) -> Optional[tuple[float, float]]:
    """(x, y) as fractions of the upright photo's width and height: its most nearly white place
    (``look.highlight_mask`` at least 0.5), None where it has none."""
    with Image.open(photo) as im:
        im.draft("RGB", (1024, 1024))
        rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    m = highlight_mask(rgb, (rgb.shape[1], rgb.shape[0]))
    if m.max() < 0.5:
        return None
    m = cv2.GaussianBlur(m, (0, 0), 0.05 * min(m.shape))  # the place with the most of it around, not a plateau's corner
    y, x = np.unravel_index(int(np.argmax(m)), m.shape)
    return (x + 0.5) / m.shape[1], (y + 0.5) / m.shape[0]


def most_different_place(a: Image.Image, b: Image.Image) -> tuple[float, float]:
    """(x, y) as fractions of the width and height: the centre of the crop-sized place where two
    versions of a photo differ most."""
    small = [np.asarray(im.resize((im.width // 8, im.height // 8), Image.BOX), np.float32) for im in (a, b)]
    diff = np.abs(small[0] - small[1]).sum(axis=2)
    diff = cv2.boxFilter(diff, -1, (CROP // 8, CROP // 8))  # the crop's area, not a single pixel
    y, x = np.unravel_index(int(np.argmax(diff)), diff.shape)
    return (x + 0.5) / diff.shape[1], (y + 0.5) / diff.shape[0]


def large_photos(folder: Path, above: float) -> list[Path]:
    photos = []
    for p in sorted(folder.rglob("*.jpg")):
        with Image.open(p) as im:
            if im.width * im.height > above:
                photos.append(p)
    return photos


def convert(photos: list[Path], out: Path, args: list[str]) -> None:
    """``ccv convert PHOTOS --to monet -o OUT --ext png ARGS`` (ARGS with ``--model FILE``: that
    generator instead of the bundled one): outputs already there with the same model and settings are
    skipped by ccv itself (its manifest), others redone."""
    model = [] if "--model" in args else ["--to", "monet"]
    cmd = [sys.executable, "-m", "cyclegan_convert", "convert", *map(str, photos), *model, "-o", str(out),
           "--ext", "png", *args]
    subprocess.run(cmd, check=True)


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``NAME=ARGS``, ARGS the extra `ccv convert` words separated by commas (may be empty)."""
    name, sep, rest = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r}: give NAME=ARGS, e.g. whole=--tile,0 or plain=")
    return name, [w for w in rest.split(",") if w]


def write_views(stem: str, original: Path, versions: dict[str, Image.Image], views: Path,
                centres=CROP_CENTRES) -> None:
    def view(im: Image.Image) -> Image.Image:
        s = VIEW_SIDE / max(im.size)
        return im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS)

    with Image.open(original) as im:
        view(im.convert("RGB")).save(views / f"{stem}_original_view.png")
    for label, im in versions.items():
        view(im).save(views / f"{stem}_{label}_view.png")
        for j, (fx, fy) in enumerate(centres, 1):
            x = min(max(0, int(im.width * fx) - CROP // 2), im.width - CROP)
            y = min(max(0, int(im.height * fy) - CROP // 2), im.height - CROP)
            im.crop((x, y, x + CROP, y + CROP)).save(views / f"{stem}_{label}_crop{j}.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=shared_data("photos-large"),
                    help=f"folder of large JPEG photos (default {shown(shared_data('photos-large'))})")
    ap.add_argument("--out", type=Path, required=True, help="folder for the conversions, views/ and key.json")
    ap.add_argument("--seed", type=int, default=28, help="seed of the A/B order")
    ap.add_argument("--min-mp", type=float, default=TILED_ABOVE / 1e6,
                    help="only photos above this many megapixels (default: those that run in tiles)")
    ap.add_argument("--variant", type=parse_variant, action="append", metavar="NAME=ARGS",
                    help="one of the two conversions (give two; default tiled= and whole=--tile,0)")
    ap.add_argument("--near-white", action="store_true",
                    help="only photos with a nearly white place (a sun, lamps), the first crop centred on it")
    ap.add_argument("--where-differ", action="store_true",
                    help="the first crop centred where the two versions differ most")
    args = ap.parse_args()
    variants = dict(args.variant or [("tiled", []), ("whole", ["--tile", "0"])])
    if len(variants) != 2:
        ap.error("give two --variant with different names")
    photos = large_photos(require(args.data, "large photos"), args.min_mp * 1e6)
    places = {p: near_white_place(p) for p in photos} if args.near_white else {}
    if args.near_white:
        photos = [p for p in photos if places[p] is not None]
    if not photos:
        sys.exit(f"error: {shown(args.data)}: no JPEG above {args.min_mp:g} MP")
    conv = {name: args.out / name for name in variants}
    views = args.out / "views"
    for d in (*conv.values(), views):
        d.mkdir(parents=True, exist_ok=True)
    for name, extra in variants.items():
        convert(photos, conv[name], extra)

    rng, key = random.Random(args.seed), {}
    for i, p in enumerate(photos, 1):
        order = list(variants)
        rng.shuffle(order)
        stem = f"photo{i:02d}"
        key[stem] = {"file": p.name, "A": order[0], "B": order[1]}
        ims = {m: Image.open(conv[m] / f"{p.stem}.png").convert("RGB") for m in order}
        centres = CROP_CENTRES
        if args.near_white:
            centres = (places[p], CROP_CENTRES[1])
        elif args.where_differ:
            centres = (most_different_place(*ims.values()), CROP_CENTRES[1])
        write_views(stem, p, dict(zip("AB", (ims[m] for m in order))), views, centres)
        first, second = variants
        apart = psnr(np.asarray(ims[first]), np.asarray(ims[second]))
        print(f"{stem}  {p.name:40s} {first} against {second} {apart:5.1f} dB")
    (args.out / "key.json").write_text(json.dumps(key, indent=1))
    print(f"{len(photos)} photos; views in {views}, key in {args.out / 'key.json'}")


if __name__ == "__main__":
    main()
