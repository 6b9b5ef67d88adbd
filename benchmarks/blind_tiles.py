"""A blind check of the kind a person would do (issue 24): which tiles are Monet's, which converted photos?

    make:   python benchmarks/blind_tiles.py make OUT --to monet [--look 0.5,1] [--n 12] [--seed 7]
            python benchmarks/blind_tiles.py make OUT G_B.pth --notch 32     (a training snapshot)
    score:  python benchmarks/blind_tiles.py score OUT ANSWERS.txt

``make`` writes ``OUT/tiles/tile_01.png ...``: N held-out Monet paintings and N converted held-out
photos of the TEST split (``quality_metrics.split``), shuffled by the seed, each the central 70% of
the image at 366 px (no signature in a corner) scaled to 256 px, so that paintings and photos are cut
and resampled alike. The key goes to ``OUT/key.json``, beside the tiles, never among them. Show a
judge (a person, or a vision-capable helper told to open only ``OUT/tiles``) the tiles and ask for one
line per tile, ``tile_01.png monet`` or ``tile_01.png converted`` (a third word, sure or unsure, is
kept). ``score`` reads those lines and prints the accuracy, per kind and for the sure answers; chance
is 50%. Converting is as in ``model_quality.py`` (the fp32 PyTorch backend, as ``ccv convert`` runs,
then the look).
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

import model_quality as mq  # benchmarks/ is on sys.path when run as a script
from data_paths import shown

from cyclegan_convert.atomic import atomic_path
from cyclegan_convert.look import Look, apply_look

KINDS = ("monet", "converted")
TILE, CUT = 256, 366  # the central 70% of a 366 px image is 256 px


def centre_tile(rgb: np.ndarray) -> np.ndarray:
    """The central 70% of the image at ``CUT`` px, scaled to ``TILE`` px."""
    im = Image.fromarray(rgb).resize((CUT, CUT), Image.LANCZOS)
    m = round(CUT * 0.15)
    return np.asarray(im.crop((m, m, CUT - m, CUT - m)).resize((TILE, TILE), Image.LANCZOS))


def make(out: Path, generator: Path | None, to: Optional[str], look: Look, n: int, seed: int, data: Path,
         notch: Optional[float]) -> dict[str, str]:
    tiles = out / "tiles"
    if tiles.is_dir() and any(tiles.iterdir()):
        raise SystemExit(f"error: {tiles}: not empty (an earlier check's tiles would mix in); choose a new OUT")
    paintings = mq.held_out_files(data / "trainA")
    photos = mq.split_files(data / "trainB", "test")
    if len(paintings) < n or len(photos) < n:
        raise SystemExit(f"error: {shown(data)}: {len(paintings)} held-out paintings and {len(photos)} test "
                         f"photos, fewer than --n {n}")
    rng = random.Random(seed)
    paintings, photos = rng.sample(paintings, n), rng.sample(photos, n)
    specs = mq.resolve_generators([generator] if generator else [], [to] if to else [])
    nets, failed = mq.load_generators(specs, notch)
    if failed:
        raise SystemExit(2)
    (_, net), = nets
    inputs = mq.read_images(photos)
    with mq.backend_for(net) as backend:
        outputs, _ = mq.convert(backend, inputs, batch=4)
    items = [("monet", centre_tile(rgb)) for rgb in mq.read_images(paintings)]
    items += [("converted", centre_tile(apply_look(o, i, look))) for o, i in zip(outputs, inputs)]
    rng.shuffle(items)
    tiles.mkdir(parents=True, exist_ok=True)
    key = {}
    for k, (kind, rgb) in enumerate(items, 1):
        name = f"tile_{k:02d}.png"
        with atomic_path(tiles / name, suffix=".png") as tmp:
            Image.fromarray(rgb).save(tmp, format="PNG")
        key[name] = kind
    model = str(generator) if generator else f"--to {to}"
    (out / "key.json").write_text(json.dumps({"model": model, "look": [look.colors, look.strength, look.strokes, look.highlights, look.edges], "seed": seed,
                                              "tiles": key}, indent=1), encoding="utf-8")
    return key


TILE_NAME = re.compile(r"tile_\d+\.png")
WORD = re.compile(r"\b(monet|converted|unsure|sure)\b", re.IGNORECASE)


def read_answers(text: str) -> dict[str, tuple[str, str]]:
    """{tile: (kind, sure or unsure or "")} from lines that name one tile and exactly one kind; a line
    naming both kinds ("tile_20.png monet converted") is ambiguous and left unanswered."""
    said = {}
    for line in text.splitlines():
        names = TILE_NAME.findall(line)
        words = [w.lower() for w in WORD.findall(line)]
        kinds = {w for w in words if w in KINDS}
        if len(names) == 1 and len(kinds) == 1:
            said[names[0]] = (kinds.pop(), next((w for w in words if w in ("sure", "unsure")), ""))
    return said


def score(key: dict[str, str], answers: str) -> dict[str, float]:
    """Accuracy over every tile of the key (a tile without an answer counts as wrong), per kind, and
    over the answers marked sure."""
    said = read_answers(answers)
    right = {t: said.get(t, ("", ""))[0] == kind for t, kind in key.items()}
    result = {"accuracy": float(np.mean(list(right.values()))), "answered": len(set(said) & set(key)) / len(key)}
    for kind in KINDS:
        result[kind] = float(np.mean([right[t] for t, k in key.items() if k == kind]))
    sure = [right[t] for t in key if said.get(t, ("", ""))[1] == "sure"]
    if sure:
        result["sure"], result["sure_share"] = float(np.mean(sure)), len(sure) / len(key)
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    mk = sub.add_parser("make", help="write shuffled tiles and their key")
    mk.add_argument("out", type=Path)
    mk.add_argument("generator", nargs="?", type=Path, help="a generator file (.pth), or --to")
    mk.add_argument("--to", metavar="NAME", help="a model from the store, by id or target domain")
    mk.add_argument("--look", type=mq.parse_look, default=Look(0.0, 1.0), metavar="COLORS,STRENGTH[,STROKES[,HIGHLIGHTS[,EDGES]]]",
                    help="the look applied to the outputs (default 0,1: the raw output)")
    mk.add_argument("--notch", type=float, metavar="SIGMA", help="as model_quality.py --notch")
    mk.add_argument("--n", type=int, default=12, help="tiles of each kind (default 12)")
    mk.add_argument("--seed", type=int, default=7)
    mk.add_argument("--data", type=Path, default=mq.DATA, metavar="DIR",
                    help=f"folder with trainA and trainB (default {shown(mq.DATA)})")
    sc = sub.add_parser("score", help="the accuracy of a judge's answers")
    sc.add_argument("out", type=Path)
    sc.add_argument("answers", type=Path, help="lines such as 'tile_01.png monet sure'")
    args = ap.parse_args(argv)
    if args.command == "make":
        if (args.generator is None) == (args.to is None):
            ap.error("give one generator file or --to NAME")
        key = make(args.out, args.generator, args.to, args.look, args.n, args.seed, args.data, args.notch)
        print(f"{len(key)} tiles in {args.out / 'tiles'}; key in {args.out / 'key.json'}")
        return 0
    key = json.loads((args.out / "key.json").read_text(encoding="utf-8"))
    r = score(key["tiles"], args.answers.read_text(encoding="utf-8"))
    print(f"{key['model']}, look {key['look']}: accuracy {100 * r['accuracy']:.0f}% of {len(key['tiles'])} tiles "
          f"(chance 50%); Monet {100 * r['monet']:.0f}%, converted {100 * r['converted']:.0f}%"
          + (f"; sure on {100 * r['sure_share']:.0f}%, right on {100 * r['sure']:.0f}% of those" if "sure" in r else "")
          + ("" if r["answered"] == 1 else f"; {100 * (1 - r['answered']):.0f}% unanswered (counted wrong)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
