"""The README's 100% crops: the bundled model at full size on three hard cases, with and without
the recommended brush strokes.

Each photo is converted by `ccv convert --to monet` at the default look and again with `--strokes 0`
(the look before strokes), then a crop at 100% of each (the sun of the sunset, the orange flower's
petals, the storm sky) is put beside the input's, one row per photo: input | --strokes 0 | default.

    python benchmarks/crops_figure.py --out docs/images/monet_crops_100.jpg [--data DIR] [--work DIR]

The same sheet compares candidate models at 100% before one is bundled (issue 24's check by eye):
`--variant NAME=ARGS` (repeatable, as in look_pairs.py) replaces the two default columns, and
`--more-cases` adds three more hard cases (sand, a yellow flower, a dragonfly's wings), e.g.

    python benchmarks/crops_figure.py --out sheet.png --more-cases --variant bundled=$L \
        --variant new=--model,G_B_notched.pth,$L     # L=--colors,0.5,--strength,1,...

Conversions already in --work with the same model and settings are reused.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from PIL import Image

from data_paths import require, shared_data  # benchmarks/ is on sys.path when run as a script
from look_pairs import convert, parse_variant

Image.MAX_IMAGE_PIXELS = None
# (photo under photos-large, crop centre as fractions of width and height)
CASES = (("lomiri_16.04/sunset_by_Aitzol_Berasategi.jpg", (0.51, 0.40)),
         ("mate_nature/FreshFlower.jpg", (0.55, 0.62)),
         ("mate_nature/Storm.jpg", (0.30, 0.22)))
MORE_CASES = (("mate_nature/Dune.jpg", (0.5, 0.5)), ("mate_nature/YellowFlower.jpg", (0.5, 0.5)),
              ("lomiri_16.04/Dragonfly_by_Bolly.jpg", (0.5, 0.5)))
CROP_W, CROP_H, GAP = 600, 400, 10
VARIANTS = (("no_strokes", ["--strokes", "0"]), ("default", []))  # folder under --work, extra ccv convert words


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="the figure (.jpg)")
    ap.add_argument("--data", type=Path, default=shared_data("photos-large"), help="photos-large folder")
    ap.add_argument("--work", type=Path, help="folder for the conversions (default: a temporary one)")
    ap.add_argument("--variant", type=parse_variant, action="append", metavar="NAME=ARGS",
                    help="a column: extra ccv convert words, comma-separated (repeatable; default "
                         "no_strokes=--strokes,0 and default=)")
    ap.add_argument("--more-cases", action="store_true", help="also sand, a yellow flower and a dragonfly")
    args = ap.parse_args()
    data = require(args.data, "the large photos (photos-large)")
    cases = CASES + (MORE_CASES if args.more_cases else ())
    variants = args.variant or list(VARIANTS)
    if len({name for name, _ in variants}) != len(variants):
        ap.error("give each --variant its own name")
    photos = [data / rel for rel, _ in cases]
    with tempfile.TemporaryDirectory(prefix="ccv-crops-") as tmp:
        work = args.work or Path(tmp)
        for name, extra in variants:
            convert(photos, work / name, extra)
        cols = 1 + len(variants)
        sheet = Image.new("RGB", (cols * CROP_W + (cols - 1) * GAP, len(cases) * CROP_H + (len(cases) - 1) * GAP),
                          "white")
        for row, (photo, (fx, fy)) in enumerate(zip(photos, (c for _, c in cases))):
            versions = [Image.open(photo).convert("RGB")]
            versions += [Image.open(work / name / f"{photo.stem}.png").convert("RGB") for name, _ in variants]
            w, h = versions[0].size
            x = min(max(0, round(w * fx) - CROP_W // 2), w - CROP_W)
            y = min(max(0, round(h * fy) - CROP_H // 2), h - CROP_H)
            for col, im in enumerate(versions):
                sheet.paste(im.crop((x, y, x + CROP_W, y + CROP_H)), (col * (CROP_W + GAP), row * (CROP_H + GAP)))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(args.out, quality=88)
    print(f"{args.out}: rows {', '.join(p.stem for p in photos)}; columns input | "
          + " | ".join(name for name, _ in variants))


if __name__ == "__main__":
    main()
