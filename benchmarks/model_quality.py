"""How good is a photo-to-Monet generator? Measured on held-out photos and paintings (issue 12).

    python benchmarks/model_quality.py runs/snapshots/G_B_step_0*.pth [--to monet] [--limit 40]
        [--markdown table.md] [--sheet sheet.png [--sheet-photos A.jpg B.jpg ...]]

Held out: every 10th file of monet2photo/trainA (108 Monet paintings) and trainB (300 photos), by
sorted name (``quality_metrics.held_out``); training must use the rest. Each generator converts the
held-out photos at their native 256 px, as ``ccv convert`` does (PyTorch fp32 backend: pad to a
multiple of 4, crop back, round to 8 bits). One row per generator, with reference rows:

- Monet share: outputs that a Monet-vs-photo classifier calls Monet. It is a logistic regression on
  hand-made colour and texture features (``quality_metrics.image_features``), trained on one half of
  the held-out images (interleaved) and applied to the outputs of the other half of the photos only.
  'photos unchanged' is its false-positive rate, 'paintings' its hit rate on the other half.
- FD: Frechet distance between those features (z-scored on the held-out real images) of the
  converted photos and of the paintings; 'ratio' divides it by the photos' own distance (the issue's
  bar: at most 0.5).
- edge corr: correlation of Sobel magnitude maps of luma, each output against its input, mean; and
  the same after 2x2 pooling both ('at 1/2 size'), where fine texture (strokes, a checkerboard)
  weighs less than the outlines.
- 2-px / 4-px peak: in the mean windowed power spectrum of the luma, the strongest of the peaks that
  the generator's two x2 upsamplings leave as a checkerboard (at 1/2 and 1/4 cycles per pixel) over
  the median of its neighbourhood. Real images sit near 1 (the photos' JPEG 8x8 blocks lift them to
  about 2); the bar is 'no stronger than the paintings'.

A classifier is easy to fool and these features are crude: look at the ``--sheet`` too (before/after
contact sheet of photos the training never saw, by default 6 from photos-large at <= 512 px).
Deterministic: fixed data order, full-batch L-BFGS from zero, no sampling. About a minute per
generator on 2 idle cores with all 300 photos; beside a training run, use `nice -n 19` and
`--threads 1` (two threads fighting for a busy core spin more than they work).
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_metrics as qm  # noqa: E402
from data_paths import shared_data, shown  # noqa: E402

from cyclegan_convert.atomic import atomic_path  # noqa: E402
from cyclegan_convert.backends import TorchBackend  # noqa: E402
from cyclegan_convert.backends.select import cpu_name  # noqa: E402
from cyclegan_convert.errors import CcvError, DataError, UsageError  # noqa: E402
from cyclegan_convert.imaging import is_image_name, read_rgb, resize_rgb  # noqa: E402
from cyclegan_convert.networks import ResnetGenerator  # noqa: E402
from cyclegan_convert.store import ModelStore  # noqa: E402
from cyclegan_convert.weights import load_generator  # noqa: E402

DATA = shared_data("monet2photo")  # ../shared/data beside the repository; --data overrides
SHEET_PHOTOS = shared_data("photos-large")  # --sheet-photos overrides
SHEET_COUNT = 6
SHEET_SIDE = 512  # photos are resized to at most this long side before conversion


@dataclass(frozen=True)
class GeneratorSpec:
    label: str
    path: Path


@dataclass
class Row:
    name: str
    monet_share: Optional[float] = None
    fd: Optional[float] = None
    fd_ratio: Optional[float] = None
    edge: Optional[float] = None
    edge_half: Optional[float] = None
    peak2: Optional[float] = None
    peak4: Optional[float] = None
    sec_per_image: Optional[float] = None


@dataclass
class Reference:
    """The held-out real images and everything computed from them once."""

    photos: list[np.ndarray]
    paintings: list[np.ndarray]
    photo_features: np.ndarray
    painting_features: np.ndarray
    classifier: qm.Classifier
    scale: qm.Standardizer  # for the Frechet distance

    @property
    def eval_photos(self) -> slice:
        """The half of the photos whose outputs the classifier judges (it trained on the other)."""
        return slice(1, None, 2)

    def fd_to_paintings(self, feats: np.ndarray) -> float:
        return qm.frechet_distance(self.scale(feats), self.scale(self.painting_features))


# -- inputs --------------------------------------------------------------------------------------

def held_out_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"{shown(folder)}: no such folder (the held-out split reads monet2photo/trainA and "
                        "trainB; give --data DIR)")
    return [folder / n for n in qm.held_out(n for n in os.listdir(folder) if is_image_name(n))]


def read_images(paths: Sequence[Path]) -> list[np.ndarray]:
    return [np.asarray(read_rgb(p)) for p in paths]  # MediaError names the file


def resolve_generators(files: Sequence[Path], names: Sequence[str]) -> list[GeneratorSpec]:
    """Files as given; ``--to`` names from the model store (an id or a target domain; never a download)."""
    specs = []
    for f in files:
        if not Path(f).is_file():
            raise UsageError(f"{f}: no such generator file")
        specs.append(GeneratorSpec(Path(f).stem, Path(f)))
    store = ModelStore()
    for name in names:
        ids = {e.id: e for e in store.entries()}
        entry = ids[name] if name in ids else store.find(name)
        specs.append(GeneratorSpec(f"{entry.id} (--to {name})", entry.weights))
    stems = [s.label for s in specs]
    return [GeneratorSpec(str(s.path), s.path) if stems.count(s.label) > 1 else s for s in specs]


def sheet_photo_files(given: Sequence[Path]) -> list[Path]:
    """``--sheet-photos`` as given, else SHEET_COUNT photos spread evenly over photos-large."""
    if given:
        return list(given)
    files = sorted(p for p in SHEET_PHOTOS.rglob("*") if p.is_file() and is_image_name(p))
    if not files:
        raise DataError(f"{shown(SHEET_PHOTOS)}: no photos for the contact sheet (give --sheet-photos PHOTO ...)")
    return [files[i * len(files) // SHEET_COUNT] for i in range(min(SHEET_COUNT, len(files)))]


def fit_side(rgb: np.ndarray, side: int = SHEET_SIDE) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = min(1.0, side / max(h, w))
    return resize_rgb(rgb, max(1, round(h * s)), max(1, round(w * s)))


# -- measuring -----------------------------------------------------------------------------------

def convert(backend: TorchBackend, images: Sequence[np.ndarray], batch: int) -> tuple[list[np.ndarray], float]:
    """Outputs as ``ccv convert`` makes them, and seconds per image. Batches only hold images of one
    size (InstanceNorm is per image, so batching does not change the result)."""
    out: list[np.ndarray] = []
    t0 = time.perf_counter()
    i = 0
    while i < len(images):
        j = i + 1
        while j < len(images) and j - i < batch and images[j].shape == images[i].shape:
            j += 1
        y = backend.infer(torch.from_numpy(np.stack(images[i:j])))
        out += list(y.numpy())
        i = j
    return out, (time.perf_counter() - t0) / max(1, len(images))


def reference(photo_paths: Sequence[Path], painting_paths: Sequence[Path]) -> Reference:
    photos, paintings = read_images(photo_paths), read_images(painting_paths)
    for paths, images in ((photo_paths, photos), (painting_paths, paintings)):
        for p, im in zip(paths, images):
            if im.shape != images[0].shape:  # the mean spectrum adds up images of one size
                raise DataError(f"{p}: {im.shape[1]}x{im.shape[0]}, the other held-out images are "
                                f"{images[0].shape[1]}x{images[0].shape[0]}")
    fp, fa = qm.features(photos), qm.features(paintings)
    clf = qm.train_classifier(fa[0::2], fp[0::2])
    return Reference(photos, paintings, fp, fa, clf, qm.Standardizer.fit(np.concatenate([fp, fa])))


def outputs_row(label: str, outputs: Sequence[np.ndarray], ref: Reference, photos_fd: float,
                sec: Optional[float] = None) -> Row:
    """The row of one set of outputs of the held-out photos (in their order)."""
    feats = qm.features(outputs)
    fd = ref.fd_to_paintings(feats)
    peaks = qm.grid_peaks(qm.mean_power_spectrum(outputs))
    edge, edge_half = (float(np.mean([qm.edge_correlation(a, b, k) for a, b in zip(ref.photos, outputs)]))
                       for k in (0, 1))
    return Row(label, float(ref.classifier.says_painting(feats[ref.eval_photos]).mean()), fd,
               fd / photos_fd, edge, edge_half, peaks[2], peaks[4], sec)


def reference_rows(ref: Reference) -> list[Row]:
    """'photos unchanged' goes through the same measurements as a generator's outputs (so it checks
    them: ratio and edge correlation 1, Monet share the classifier's false-positive rate)."""
    peaks = qm.grid_peaks(qm.mean_power_spectrum(ref.paintings))
    return [
        outputs_row("photos unchanged", ref.photos, ref, ref.fd_to_paintings(ref.photo_features)),
        Row("paintings", float(ref.classifier.says_painting(ref.painting_features[1::2]).mean()),
            None, None, None, None, peaks[2], peaks[4]),
    ]


def load_generators(specs: Sequence[GeneratorSpec]) -> tuple[list[tuple[GeneratorSpec, ResnetGenerator]], int]:
    """Every generator that loads, and how many did not (each said in one line on stderr): a damaged
    or half-copied snapshot should not cost the others' rows."""
    loaded, failed = [], 0
    for spec in specs:
        try:
            loaded.append((spec, load_generator(spec.path)))
        except CcvError as e:  # the message names the file
            print(f"error: {e}", file=sys.stderr)
            failed += 1
    return loaded, failed


def backend_for(net: ResnetGenerator) -> TorchBackend:
    # fp32 eager, NCHW: what `ccv convert` runs on a CPU (channels_last measured slower there)
    return TorchBackend(net, device="cpu", channels_last=False)


def measure(label: str, net: ResnetGenerator, ref: Reference, photos_fd: float, batch: int) -> Row:
    with backend_for(net) as backend:
        outputs, sec = convert(backend, ref.photos, batch)
    return outputs_row(label, outputs, ref, photos_fd, sec)


# -- reporting -----------------------------------------------------------------------------------

def machine_line() -> str:
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return (f"CPU: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__} with "
            f"{torch.get_num_threads()} threads; load average {load}")


def _fmt(v: Optional[float], spec: str) -> str:
    return "-" if v is None else format(v, spec)


def markdown_table(rows: Sequence[Row]) -> str:
    lines = ["| model | Monet share | FD to paintings | FD ratio | edge corr | at 1/2 size | 2-px peak | 4-px peak "
             "| s/image |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        share = "-" if r.monet_share is None else f"{100 * r.monet_share:.0f}%"
        lines.append(f"| {r.name} | {share} | {_fmt(r.fd, '.1f')} | {_fmt(r.fd_ratio, '.2f')} | "
                     f"{_fmt(r.edge, '.3f')} | {_fmt(r.edge_half, '.3f')} | {_fmt(r.peak2, '.2f')} | {_fmt(r.peak4, '.2f')} | "
                     f"{_fmt(r.sec_per_image, '.3f')} |")
    return "\n".join(lines)


def contact_sheet(inputs: Sequence[np.ndarray], rows: Sequence[tuple[str, Sequence[np.ndarray]]],
                  label_height: int = 20, gap: int = 4) -> Image.Image:
    """Inputs on top, each generator's outputs below them, one labelled band per row; every image
    scaled to the height of the lowest input so that columns line up."""
    height = min(im.shape[0] for im in inputs)
    widths = [max(1, round(im.shape[1] * height / im.shape[0])) for im in inputs]
    bands = [("input", inputs), *rows]
    sheet = Image.new("RGB", (sum(widths) + gap * (len(widths) + 1),
                              len(bands) * (label_height + height + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=label_height - 4)  # FreeType when Pillow has it, else a bitmap font
    y = gap
    for label, images in bands:
        draw.text((gap, y + 1), label, fill="black", font=font)
        y += label_height
        x = gap
        for im, w in zip(images, widths):
            sheet.paste(Image.fromarray(resize_rgb(im, height, w)), (x, y))
            x += w + gap
        y += height + gap
    return sheet


def write_sheet(path: Path, nets: Sequence[tuple[GeneratorSpec, ResnetGenerator]], photo_files: Sequence[Path],
                batch: int) -> None:
    inputs = [fit_side(im) for im in read_images(photo_files)]
    rows = []
    for spec, net in nets:
        with backend_for(net) as backend:
            rows.append((spec.label, convert(backend, inputs, batch)[0]))
    with atomic_path(path, suffix=".png") as tmp:
        contact_sheet(inputs, rows).save(tmp, format="PNG")


# -- command line --------------------------------------------------------------------------------

def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("generators", nargs="*", type=Path, help="generator files (.pth, photo -> Monet)")
    ap.add_argument("--to", action="append", default=[], metavar="NAME",
                    help="a model from the store, by id or target domain (repeatable)")
    ap.add_argument("--data", type=Path, default=DATA, metavar="DIR",
                    help=f"folder with trainA (paintings) and trainB (photos) (default {shown(DATA)})")
    ap.add_argument("--limit", type=int, default=None, metavar="N",
                    help="only the first N held-out photos (quick runs; all 108 paintings stay)")
    ap.add_argument("--markdown", type=Path, metavar="FILE", help="also write the table as markdown")
    ap.add_argument("--sheet", type=Path, metavar="OUT.png", help="write a before/after contact sheet")
    ap.add_argument("--sheet-photos", type=Path, nargs="+", default=[], metavar="PHOTO",
                    help=f"photos for the sheet (default: {SHEET_COUNT} from {shown(SHEET_PHOTOS)})")
    ap.add_argument("--sheet-only", action="store_true", help="write the sheet, skip the table")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)
    if not args.generators and not args.to:
        ap.error("give one or more generator files, or --to NAME")
    if args.limit is not None and args.limit < 2:
        ap.error("--limit needs at least 2 photos (one half trains the classifier, the other is judged)")
    if args.sheet_only and not args.sheet:
        ap.error("--sheet-only needs --sheet OUT.png")
    return args


def progress(t0: float, text: str) -> None:
    print(f"[{time.perf_counter() - t0:6.0f} s] {text}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    nets, failed = load_generators(resolve_generators(args.generators, args.to))
    if args.sheet:
        write_sheet(args.sheet, nets, sheet_photo_files(args.sheet_photos), args.batch)
        print(f"contact sheet: {args.sheet}")
    if args.sheet_only:
        return 1 if failed else 0
    started = machine_line()
    t0 = time.perf_counter()
    photo_files = held_out_files(args.data / "trainB")[:args.limit]
    painting_files = held_out_files(args.data / "trainA")
    for files, what in ((photo_files, "photos"), (painting_files, "paintings")):
        if len(files) < 2:  # one half trains the classifier, the other is judged
            raise DataError(f"{shown(args.data)}: {len(files)} held-out {what}, at least 2 are needed")
    progress(t0, f"reading {len(photo_files)} photos and {len(painting_files)} paintings, training the classifier")
    ref = reference(photo_files, painting_files)
    rows = reference_rows(ref)
    photos_fd = rows[0].fd
    for spec, net in nets:
        progress(t0, f"converting and measuring: {spec.label}")
        rows.append(measure(spec.label, net, ref, photos_fd, args.batch))
    n_eval = len(ref.photos[ref.eval_photos])
    notes = [
        f"Held out (never trained on): {len(ref.photos)} photos (trainB) and {len(painting_files)} paintings "
        f"(trainA) of {shown(args.data)}, 256 px; {datetime.date.today().isoformat()}, {time.perf_counter() - t0:.0f} s.",
        f"Classifier ({ref.photo_features.shape[1]} colour and texture features, logistic regression, "
        f"l2 {ref.classifier.l2:g} by 5-fold CV): trained on {len(ref.painting_features[0::2])} paintings and "
        f"{len(ref.photo_features[0::2])} photos; Monet share is on the other {n_eval} photos' outputs.",
        f"At start: {started}",
        f"At end:   {machine_line()}",
    ]
    if len(painting_files) >= 4:
        halves = qm.frechet_distance(*(ref.scale(ref.painting_features[k::2]) for k in (0, 1)))
        notes.insert(2, f"FD between the two halves of the paintings: {halves:.1f} (a floor set by sample size).")
    text = "\n".join(notes) + "\n\n" + markdown_table(rows) + "\n"
    print(text, end="")
    if args.markdown:
        with atomic_path(args.markdown, suffix=".md") as tmp:
            tmp.write_text(text, encoding="utf-8")
    return 1 if failed else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except CcvError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
