"""Make the folder the bundled model's runs train on: monet2photo without its held-out files.

    python benchmarks/training_folder.py ~/ccv-data/monet2photo_train
    ccv train ~/ccv-data/monet2photo_train --a-name monet --b-name photo ...

OUT/trainA and OUT/trainB get a symbolic link to every file of ``--data``'s trainA and trainB except
the held-out ones (every 10th by name, ``quality_metrics.held_out``): 964 paintings and 2700 photos,
so that ``model_quality.py`` measures on images the model never saw. Links, not copies: nothing is
duplicated and the shared data stays read-only. An existing OUT is refreshed, not added to.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import quality_metrics as qm
from data_paths import require, shared_data, shown

from cyclegan_convert.imaging import is_image_name


def make_training_folder(data: Path, out: Path) -> dict[str, int]:
    """Links in OUT/trainA and OUT/trainB; returns how many each got."""
    counts = {}
    for sub in ("trainA", "trainB"):
        src = require(data / sub, "monet2photo's paintings (trainA) and photos (trainB)")
        names = sorted(n for n in os.listdir(src) if is_image_name(n))
        held = set(qm.held_out(names))
        dst = out / sub
        dst.mkdir(parents=True, exist_ok=True)
        for old in dst.iterdir():  # a refresh: no stale link of an earlier split stays behind
            if old.is_symlink():
                old.unlink()
        for n in names:
            if n not in held:
                (dst / n).symlink_to((src / n).resolve())
        counts[sub] = len(names) - len(held)
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help="the folder to make (trainA/ and trainB/ of links)")
    ap.add_argument("--data", type=Path, default=shared_data("monet2photo"),
                    help="monet2photo with trainA and trainB (default ../shared/data/monet2photo)")
    args = ap.parse_args()
    counts = make_training_folder(args.data, args.out.expanduser())
    print(f"{args.out}: {counts['trainA']} paintings, {counts['trainB']} photos linked from {shown(args.data)} "
          f"(the held-out every {qm.HOLDOUT_EVERY}th left out)")


if __name__ == "__main__":
    main()
