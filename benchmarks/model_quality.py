"""How good is a photo-to-Monet generator? Measured on held-out photos and paintings (issues 12, 24, 26).

    choose a checkpoint:   python benchmarks/model_quality.py --split val runs/snapshots/G_B_step_*.pth
    report the chosen one: python benchmarks/model_quality.py --split test G_B_step_N.pth
                               [--look 0,1 --look 1,1 --look 0.5,1 --look 0,0.6] [--markdown table.md]
    also: [--to monet] [--limit 40] [--zoom 3] [--sheet sheet.png [--sheet-photos A.jpg B.jpg ...]]

Held out: every 10th file of monet2photo/trainA (108 Monet paintings) and trainB (300 photos), by
sorted name (``quality_metrics.held_out``); training must use the rest. The held-out photos are split
in two, alternately in name order (``quality_metrics.split``): 'val' (150) to choose checkpoints
with, 'test' (the other 150, the default) for the figures reported, so that a reported figure does
not come from the photos its checkpoint was chosen on. Only the chosen split's photos are
converted; the other split's are read for the floor line only (no generator sees them). The 108
paintings serve both splits whole: they are the target that distances are measured to, not samples
a checkpoint is scored on one by one, and halving them (54, fewer than the 70 and 57 features) would
make both Frechet distances mostly sample noise; the second, random-feature
distance, with which no checkpoint is chosen, guards against a checkpoint that flatters this one set.

Each generator converts the split's photos at their native 256 px, as ``ccv convert`` does (PyTorch
fp32 backend: pad to a multiple of 4, crop back, round to 8 bits). ``--zoom Z`` measures what the
model does at full size instead: each photo is enlarged Z times (256 Z px) before it is converted,
and every measure reads the central 256 px of it (input and output alike; the photos' rows, the
classifier and the floor too), so its pixels carry the smooth, spread-out detail of a large photo
converted at full size, where the model's by-eye faults show (contour rings in soft blur, grain and
streaks on flat areas). The paintings stay at their own 256 px. Read its distances with care: they
then compare the output's texture per pixel with that of whole canvases shrunk to 256 px, so they
reward a thumbnail's dense texture spread over a full-size photo, which by eye reads as grain (at
--zoom 3 the bundled model's raw output is at FD ratio 0.16, RF 0.32, and its recommended look, whose
strokes blind judges preferred on 21-25 of 27 full-size photos, at 0.33 and 0.63: RESULTS, stop 31).
Its colour and edge correlations keep their meaning.

One row per generator and look
(``--look COLORS,STRENGTH[,STROKES[,HIGHLIGHTS[,EDGES]]]``, repeatable: ``cyclegan_convert.look.apply_look`` on each output against
its input, as ``ccv convert --colors --strength`` does; without it, the raw output), with reference rows:

- Monet share: outputs that a Monet-vs-photo classifier calls Monet. It is a logistic regression on
  hand-made colour and texture features (``quality_metrics.image_features``), trained on one half of
  the split's photos and of the paintings (interleaved) and applied to the outputs of the other half
  of the split's photos only. 'photos unchanged' is its false-positive rate, 'paintings' its hit rate
  on the other half of the paintings.
- FD: Frechet distance between those features (z-scored on the split's photos and the paintings) of
  the converted photos and of the paintings; 'FD ratio' divides it by the photos' own distance (the
  issue's bar: at most 0.5).
- The floor: the notes give the FD and RF ratios between two sets of photos (the other split's, as
  many as there are paintings, against this split's): what two samples of one kind read at these
  sizes (here about 0.2 FD, 0.4-0.5 RF). A ratio near it is as close as the measure can tell.
- KD ratio: the same features' unbiased kernel distance (squared MMD, cubic polynomial kernel: the KID
  formula, ``quality_metrics.kernel_distance``), again over the photos' own. A Frechet distance
  between small sets keeps a floor set by sample size (the two halves of the paintings are about 0.2
  FD ratio and 0.5 RF ratio apart), so a bar of 0.5 can sit at that floor; the kernel distance has
  none (over 30 random halvings of the paintings its ratio read 0 +- 0.03), so it separates "as far
  from the paintings as another set of paintings" from "half way there".
- RF ratio: a second, independent colour/texture distance, the same ratio for the Frechet distance
  between the log mean and std of the feature maps of a fixed random-weight two-layer network at
  three scales, plus CIELAB colour moments (``quality_metrics.random_texture_features``). Choose
  checkpoints by FD ratio and confirm on this one (a measure chosen on flatters itself). Its kernel
  distance is not shown: over 30 random halvings of the paintings it read 0 +- 0.59 of the photos'
  (the hand-made features': 0 +- 0.03), too noisy to read.
- colour corr: correlation of the CIELAB a*/b* of each output with its input's, in a 16x16 grid of
  cells (``quality_metrics.colour_correlation``), mean over images: 1 keeps the colour layout, low
  values mean swapped hues (orange sand turning blue-grey).
- edge corr: correlation of Sobel magnitude maps of luma, each output against its input, mean; and
  the same after 2x2 pooling both ('at 1/2 size'), where fine texture (strokes, a checkerboard)
  weighs less than the outlines.
- 2-px / 4-px peak: in the mean windowed power spectrum of the luma, the strongest of the peaks that
  the generator's two x2 upsamplings leave as a checkerboard (at 1/2 and 1/4 cycles per pixel) over
  the median of its neighbourhood. Real images sit near 1 (the photos' JPEG 8x8 blocks lift them to
  about 2). These read the exact lattice bins, which a generator's fixed notch filter zeroes by
  construction: a notched model always 'beats the paintings' here.
- 2-px / 4-px grain: the mean power in a 7x7-bin window around each of those frequencies, exact bin
  included, over the median of a ring further out (``quality_metrics.grain_ratio``): a notched grain,
  or one whose period or phase drifts over the image, leaves its energy beside the exact bin, inside
  the window. The bar for both is 'no stronger than the paintings'.

A classifier is easy to fool and these features are crude: look at the ``--sheet`` too (before/after
contact sheet of photos the training never saw, by default the hard cases at <= 512 px: a sunset with
the sun in frame, an orange flower, sand, snow, a storm sky, a flat blue sky, a night city, a face).
Deterministic: fixed data order, full-batch L-BFGS from zero, no sampling, a seeded random network.
The measurements cost little CPU (8 photos, 108 paintings, one model with two looks: 14 s of CPU
in all, 2026-12-06); converting is what costs (the s/image column). Beside a training run, use
`nice -n 19` and `--threads 1` (two threads fighting for a busy core spin more than they work); that
run took 7 minutes of wall time there.
"""
from __future__ import annotations

import argparse
import datetime
import functools
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
from cyclegan_convert.look import Look, apply_look, parse_colors  # noqa: E402
from cyclegan_convert.networks import ResnetGenerator  # noqa: E402
from cyclegan_convert.store import ModelStore  # noqa: E402
from cyclegan_convert.weights import load_generator, notched, read_state_dict  # noqa: E402

DATA = shared_data("monet2photo")  # ../shared/data beside the repository; --data overrides
# The contact sheet's photos (--sheet-photos overrides): the cases where the look fails first, each a
# photo the training never saw (photos-large is not in the training set; the two from monet2photo are
# held out: the night city in the test split, the face in the validation split), so that every
# checkpoint is judged by eye on the same hard cases.
HARD_CASES = (
    ("sunset, sun in frame", "photos-large/lomiri_16.04/sunset_by_Aitzol_Berasategi.jpg"),
    ("orange flower", "photos-large/mate_nature/FreshFlower.jpg"),
    ("sand", "photos-large/mate_nature/Dune.jpg"),
    ("snow, clouds", "photos-large/lomiri_16.04/picosdeeuropa_by_Aitzol_Berasategi.jpg"),
    ("storm sky", "photos-large/mate_nature/Storm.jpg"),
    ("flat blue sky", "photos-large/lomiri_16.04/Bridge_by_Sander_Klootwijk.jpg"),
    ("night city", "monet2photo/trainB/2016-02-29 06_33_01.jpg"),
    ("face", "monet2photo/trainB/2015-02-22 18_52_50.jpg"),
)
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
    kd_ratio: Optional[float] = None
    rf_ratio: Optional[float] = None
    colour: Optional[float] = None
    edge: Optional[float] = None
    edge_half: Optional[float] = None
    peak2: Optional[float] = None
    peak4: Optional[float] = None
    grain2: Optional[float] = None
    grain4: Optional[float] = None
    sec_per_image: Optional[float] = None


@dataclass
class Reference:
    """The held-out real images (the split's photos, all paintings) and everything computed from
    them once."""

    photos: list[np.ndarray]  # what the outputs are compared with: the photos, or their centres (--zoom)
    paintings: list[np.ndarray]
    photo_features: np.ndarray
    painting_features: np.ndarray
    classifier: qm.Classifier
    scale: qm.Standardizer  # for the Frechet distance
    photo_rf: np.ndarray  # random-feature statistics (the second distance)
    painting_rf: np.ndarray
    rf_scale: qm.Standardizer
    inputs: list[np.ndarray]  # what the generators convert: the photos, or the photos enlarged (--zoom)

    @property
    def eval_photos(self) -> slice:
        """The half of the photos whose outputs the classifier judges (it trained on the other)."""
        return slice(1, None, 2)

    def fd_to_paintings(self, feats: np.ndarray) -> float:
        return self.fd_between(feats, self.painting_features)

    def fd_between(self, feats: np.ndarray, target: np.ndarray) -> float:
        """The FD between two feature sets, scaled as for the paintings (a distance to another set)."""
        return qm.frechet_distance(self.scale(feats), self.scale(target))

    def rf_to_paintings(self, rf: np.ndarray) -> float:
        return self.rf_between(rf, self.painting_rf)

    def rf_between(self, rf: np.ndarray, target: np.ndarray) -> float:
        return qm.frechet_distance(self.rf_scale(rf), self.rf_scale(target))

    def kd_to_paintings(self, feats: np.ndarray) -> float:
        return qm.kernel_distance(self.scale(feats), self.scale(self.painting_features))

    @functools.cached_property
    def photos_fd(self) -> float:
        """The unchanged photos' own distances: the denominators of the ratios."""
        return self.fd_to_paintings(self.photo_features)

    @functools.cached_property
    def photos_rf(self) -> float:
        return self.rf_to_paintings(self.photo_rf)

    @functools.cached_property
    def photos_kd(self) -> float:
        return self.kd_to_paintings(self.photo_features)


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


def sheet_photos(given: Sequence[Path]) -> list[tuple[str, Path]]:
    """(caption, file) for each column of the sheet: ``--sheet-photos`` as given, captioned with their
    names, else the HARD_CASES (an error naming the first one missing)."""
    if given:
        return [(p.stem, p) for p in given]
    cases = [(caption, shared_data(rel)) for caption, rel in HARD_CASES]
    for caption, path in cases:
        if not path.is_file():
            raise DataError(f"{shown(path)}: missing, the contact sheet's {caption!r} photo "
                            "(give --sheet-photos PHOTO ...)")
    return cases


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


def zoomed(photo: np.ndarray, zoom: float) -> np.ndarray:
    """The photo enlarged ``zoom`` times (as ``ccv convert`` resizes), or as it is at 1."""
    if zoom == 1:
        return photo
    h, w = photo.shape[:2]
    return resize_rgb(photo, round(h * zoom), round(w * zoom))


def centre(image: np.ndarray, side: int = 256) -> np.ndarray:
    """The central ``side`` x ``side`` pixels (all of a 256 px image)."""
    h, w = image.shape[:2]
    y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return image[y:y + side, x:x + side]


def read_photos(paths: Sequence[Path], zoom: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(what the generators convert, what the measures read) of these photos at ``zoom``."""
    inputs = [zoomed(p, zoom) for p in read_images(paths)]
    return inputs, [centre(i) for i in inputs]


def split_files(folder: Path, split: str) -> list[Path]:
    """The held-out photos of one split (``quality_metrics.split``), in name order."""
    return [folder / n for n in qm.split((p.name for p in held_out_files(folder)), split)]


def reference(photo_paths: Sequence[Path], painting_paths: Sequence[Path], zoom: float = 1.0) -> Reference:
    (inputs, photos), paintings = read_photos(photo_paths, zoom), read_images(painting_paths)
    for paths, images in ((photo_paths, inputs), (painting_paths, paintings)):  # centres of one size share it
        for p, im in zip(paths, images):
            if im.shape != images[0].shape:  # the mean spectrum adds up images of one size
                raise DataError(f"{p}: {im.shape[1]}x{im.shape[0]}, the other held-out images are "
                                f"{images[0].shape[1]}x{images[0].shape[0]}")
    fp, fa = qm.features(photos), qm.features(paintings)
    clf = qm.train_classifier(fa[0::2], fp[0::2])
    rp, ra = qm.random_features(photos), qm.random_features(paintings)
    return Reference(photos, paintings, fp, fa, clf, qm.Standardizer.fit(np.concatenate([fp, fa])),
                     rp, ra, qm.Standardizer.fit(np.concatenate([rp, ra])), inputs)


def same_kind_floor(ref: Reference, other_photos: Sequence[Path], zoom: float = 1.0) -> tuple[float, float]:
    """FD and RF ratios between two sets of photos, the other split's (as many as there are paintings)
    against this split's: what the ratios read for two samples of one kind at this measurement's
    sizes, so a ratio near it cannot be told from 'as close as the paintings get'."""
    other = read_photos(other_photos[:len(ref.paintings)], zoom)[1]
    return (ref.fd_between(qm.features(other), ref.photo_features) / ref.photos_fd,
            ref.rf_between(qm.random_features(other), ref.photo_rf) / ref.photos_rf)


def _mean(values: Sequence[float]) -> float:
    """The mean of the defined values (a grey photo has no colour layout to keep: NaN)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v[np.isfinite(v)].mean()) if np.isfinite(v).any() else float("nan")


def outputs_row(label: str, outputs: Sequence[np.ndarray], ref: Reference, sec: Optional[float] = None) -> Row:
    """The row of one set of outputs of the split's photos (in their order)."""
    feats = qm.features(outputs)
    fd = ref.fd_to_paintings(feats)
    rf = ref.rf_to_paintings(qm.random_features(outputs))
    power = qm.mean_power_spectrum(outputs)
    peaks, grain = qm.grid_peaks(power), qm.grid_grain(power)
    edge, edge_half = (_mean([qm.edge_correlation(a, b, k) for a, b in zip(ref.photos, outputs)]) for k in (0, 1))
    colour = _mean([qm.colour_correlation(a, b) for a, b in zip(ref.photos, outputs)])
    return Row(label, float(ref.classifier.says_painting(feats[ref.eval_photos]).mean()), fd,
               fd / ref.photos_fd, ref.kd_to_paintings(feats) / ref.photos_kd, rf / ref.photos_rf, colour, edge,
               edge_half, peaks[2], peaks[4], grain[2], grain[4], sec)


def reference_rows(ref: Reference) -> list[Row]:
    """'photos unchanged' goes through the same measurements as a generator's outputs (so it checks
    them: ratios and correlations 1, Monet share the classifier's false-positive rate)."""
    power = qm.mean_power_spectrum(ref.paintings)
    peaks, grain = qm.grid_peaks(power), qm.grid_grain(power)
    return [
        outputs_row("photos unchanged", ref.photos, ref),
        Row("paintings", float(ref.classifier.says_painting(ref.painting_features[1::2]).mean()),
            peak2=peaks[2], peak4=peaks[4], grain2=grain[2], grain4=grain[4]),
    ]


def load_generators(specs: Sequence[GeneratorSpec], notch: Optional[float] = None
                    ) -> tuple[list[tuple[GeneratorSpec, ResnetGenerator]], int]:
    """Every generator that loads, and how many did not (each said in one line on stderr): a damaged
    or half-copied snapshot should not cost the others' rows. ``notch``: files without a lattice
    notch get one of this sigma, as ``train.bundle --notch`` would give them."""
    loaded, failed = [], 0
    for spec in specs:
        try:
            net = load_generator(spec.path)
            if notch and net.notch is None:
                net = load_generator(notched(read_state_dict(spec.path), notch, str(spec.path)))
            loaded.append((spec, net))
        except CcvError as e:  # the message names the file
            print(f"error: {e}", file=sys.stderr)
            failed += 1
    return loaded, failed


def backend_for(net: ResnetGenerator) -> TorchBackend:
    # fp32 eager, NCHW: what `ccv convert` runs on a CPU (channels_last measured slower there)
    return TorchBackend(net, device="cpu", channels_last=False)


def measure(label: str, net: ResnetGenerator, ref: Reference, looks: Sequence[Look], batch: int) -> list[Row]:
    """One row per look; the photos are converted once. A lone raw look keeps the plain label.
    Seconds per image include the look's own cost (applied to the whole output, as convert does)."""
    with backend_for(net) as backend:
        outputs, sec = convert(backend, ref.inputs, batch)
    rows = []
    for look in looks:
        t0 = time.perf_counter()
        styled = [centre(apply_look(out, photo, look)) for out, photo in zip(outputs, ref.inputs)]
        look_sec = (time.perf_counter() - t0) / max(1, len(outputs))
        name = label if list(looks) == [Look()] else f"{label}: {look.describe()}"
        rows.append(outputs_row(name, styled, ref, sec + look_sec))
    return rows


# -- reporting -----------------------------------------------------------------------------------

def machine_line() -> str:
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return (f"CPU: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__} with "
            f"{torch.get_num_threads()} threads; load average {load}")


def _fmt(v: Optional[float], spec: str) -> str:
    return "-" if v is None else format(v, spec)


def markdown_table(rows: Sequence[Row]) -> str:
    columns = ["model", "Monet share", "FD to paintings", "FD ratio", "KD ratio", "RF ratio", "colour corr",
               "edge corr", "at 1/2 size", "2-px peak", "4-px peak", "2-px grain", "4-px grain", "s/image"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        share = "-" if r.monet_share is None else f"{100 * r.monet_share:.0f}%"
        cells = [r.name, share, _fmt(r.fd, ".1f"), _fmt(r.fd_ratio, ".2f"), _fmt(r.kd_ratio, ".2f"),
                 _fmt(r.rf_ratio, ".2f"), _fmt(r.colour, ".3f"), _fmt(r.edge, ".3f"), _fmt(r.edge_half, ".3f"),
                 _fmt(r.peak2, ".2f"), _fmt(r.peak4, ".2f"), _fmt(r.grain2, ".2f"), _fmt(r.grain4, ".2f"),
                 _fmt(r.sec_per_image, ".3f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def contact_sheet(inputs: Sequence[np.ndarray], rows: Sequence[tuple[str, Sequence[np.ndarray]]],
                  captions: Sequence[str] = (), label_height: int = 20, gap: int = 4) -> Image.Image:
    """Inputs on top (under their captions), each generator's outputs below them, one labelled band
    per row; every image scaled to the height of the lowest input so that columns line up."""
    height = min(im.shape[0] for im in inputs)
    widths = [max(1, round(im.shape[1] * height / im.shape[0])) for im in inputs]
    bands = [("input", inputs), *rows]
    top = label_height if captions else 0
    sheet = Image.new("RGB", (sum(widths) + gap * (len(widths) + 1),
                              top + len(bands) * (label_height + height + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=label_height - 4)  # FreeType when Pillow has it, else a bitmap font
    x = gap
    for caption, w in zip(captions, widths):
        draw.text((x, gap + 1), caption, fill="black", font=font)
        x += w + gap
    y = gap + top
    for label, images in bands:
        draw.text((gap, y + 1), label, fill="black", font=font)
        y += label_height
        x = gap
        for im, w in zip(images, widths):
            sheet.paste(Image.fromarray(resize_rgb(im, height, w)), (x, y))
            x += w + gap
        y += height + gap
    return sheet


def write_sheet(path: Path, nets: Sequence[tuple[GeneratorSpec, ResnetGenerator]],
                photos: Sequence[tuple[str, Path]], batch: int) -> None:
    inputs = [fit_side(im) for im in read_images([p for _, p in photos])]
    rows = []
    for spec, net in nets:
        with backend_for(net) as backend:
            rows.append((spec.label, convert(backend, inputs, batch)[0]))
    with atomic_path(path, suffix=".png") as tmp:
        contact_sheet(inputs, rows, [caption for caption, _ in photos]).save(tmp, format="PNG")


# -- command line --------------------------------------------------------------------------------

def parse_look(text: str) -> Look:
    """``COLORS,STRENGTH[,STROKES[,HIGHLIGHTS[,EDGES]]]`` as ``ccv convert --colors --strength --strokes
    --highlights --edges`` take them: ``0.5,1``, ``keep,0.8``, ``0.5,1,0.5``, ``0.5,1,0.5,1,1``."""
    parts = text.split(",")
    if len(parts) not in (2, 3, 4, 5):
        raise argparse.ArgumentTypeError(f"{text!r}: give COLORS,STRENGTH[,STROKES[,HIGHLIGHTS[,EDGES]]] (e.g. 0,1 for the raw "
                                         "output, keep,1 or 0.5,0.8,0.5,1)")
    try:
        return Look(parse_colors(parts[0]), *(float(p) for p in parts[1:]))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: STRENGTH, STROKES, HIGHLIGHTS and EDGES must be numbers") from None
    except UsageError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: {e}") from None


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("generators", nargs="*", type=Path, help="generator files (.pth, photo -> Monet)")
    ap.add_argument("--to", action="append", default=[], metavar="NAME",
                    help="a model from the store, by id or target domain (repeatable)")
    ap.add_argument("--data", type=Path, default=DATA, metavar="DIR",
                    help=f"folder with trainA (paintings) and trainB (photos) (default {shown(DATA)})")
    ap.add_argument("--split", choices=list(qm.SPLITS), default="test",
                    help="which held-out photos to convert: val (to choose checkpoints with) or test (the "
                         "other half, for reported figures; default)")
    ap.add_argument("--look", type=parse_look, action="append", default=[], metavar="COLORS,STRENGTH[,STROKES[,HIGHLIGHTS[,EDGES]]]",
                    help="also apply this look to each output, one row each (repeatable; e.g. --look 0,1 "
                         "--look keep,1 --look 0.5,1 --look 0,0.6; default: the raw output only)")
    ap.add_argument("--zoom", type=float, default=1.0, metavar="Z",
                    help="enlarge each photo Z times before converting it and measure the central 256 px: "
                         "the model at full size, where a photo's detail is spread over many pixels (e.g. 3; "
                         "Z squared times the conversion time)")
    ap.add_argument("--limit", type=int, default=None, metavar="N",
                    help="only the first N photos of the split (quick runs; all 108 paintings stay)")
    ap.add_argument("--markdown", type=Path, metavar="FILE", help="also write the table as markdown")
    ap.add_argument("--sheet", type=Path, metavar="OUT.png", help="write a before/after contact sheet")
    ap.add_argument("--sheet-photos", type=Path, nargs="+", default=[], metavar="PHOTO",
                    help="photos for the sheet (default: the hard cases, " +
                         ", ".join(c for c, _ in HARD_CASES) + f", from {shown(shared_data())})")
    ap.add_argument("--sheet-only", action="store_true", help="write the sheet, skip the table")
    ap.add_argument("--notch", type=float, metavar="SIGMA",
                    help="measure generator files that have no lattice notch with one of this sigma added, as "
                         "they would be bundled (training snapshots; train.bundle --notch SIGMA), e.g. 32")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)
    if not args.generators and not args.to:
        ap.error("give one or more generator files, or --to NAME")
    if args.zoom < 1:
        ap.error(f"--zoom {args.zoom}: give 1 (the photos' own size) or more")
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
    nets, failed = load_generators(resolve_generators(args.generators, args.to), args.notch)
    if args.sheet:
        write_sheet(args.sheet, nets, sheet_photos(args.sheet_photos), args.batch)
        print(f"contact sheet: {args.sheet}")
    if args.sheet_only:
        return 1 if failed else 0
    started = machine_line()
    t0 = time.perf_counter()
    photo_files = split_files(args.data / "trainB", args.split)[:args.limit]
    painting_files = held_out_files(args.data / "trainA")
    for files, what in ((photo_files, "photos"), (painting_files, "paintings")):
        if len(files) < 2:  # one half trains the classifier, the other is judged
            raise DataError(f"{shown(args.data)}: {len(files)} held-out {what}, at least 2 are needed")
    progress(t0, f"reading {len(photo_files)} {args.split} photos and {len(painting_files)} paintings, "
                 "training the classifier")
    ref = reference(photo_files, painting_files, args.zoom)
    rows = reference_rows(ref)
    looks = args.look or [Look()]
    for spec, net in nets:
        progress(t0, f"converting and measuring: {spec.label}")
        rows += measure(spec.label, net, ref, looks, args.batch)
    n_eval = len(ref.photos[ref.eval_photos])
    purpose = {"val": "VALIDATION split, for choosing checkpoints; report figures with --split test",
               "test": "TEST split, for reported figures; choose checkpoints with --split val"}[args.split]
    notes = [
        f"Photos: {purpose} ({len(ref.photos)} photos{' (--limit)' if args.limit else ''}: every other "
        f"held-out photo in name order, {'1st, 3rd' if args.split == 'val' else '2nd, 4th'}, ...).",
        f"Held out (never trained on): {len(ref.photos)} photos (trainB) and {len(painting_files)} paintings "
        f"(trainA) of {shown(args.data)}, 256 px"
        + (f"; the photos enlarged {args.zoom:g}x before conversion, all measures on their central 256 px "
           "(--zoom)" if args.zoom != 1 else "") + f"; {datetime.date.today().isoformat()}, {time.perf_counter() - t0:.0f} s.",
        f"Classifier ({ref.photo_features.shape[1]} colour and texture features, logistic regression, "
        f"l2 {ref.classifier.l2:g} by 5-fold CV): trained on {len(ref.painting_features[0::2])} paintings and "
        f"{len(ref.photo_features[0::2])} photos; Monet share is on the other {n_eval} photos' outputs.",
        f"At start: {started}",
        f"At end:   {machine_line()}",
    ]
    other = split_files(args.data / "trainB", "test" if args.split == "val" else "val")
    if not args.limit and len(other) >= len(painting_files) >= 2:
        fd_f, rf_f = same_kind_floor(ref, other, args.zoom)
        notes.insert(3, f"Between two sets of photos ({len(painting_files)} of the other split against these "
                        f"{len(ref.photos)}, the sizes of the comparison with the paintings): FD ratio {fd_f:.2f}, RF "
                        f"ratio {rf_f:.2f}. That is the floor of these ratios here: a model's ratio near it "
                        "cannot be told from 'as close to the paintings as another sample of them'.")
    if len(painting_files) >= 4:
        halves = [(scale(feats[0::2]), scale(feats[1::2])) for scale, feats in
                  ((ref.scale, ref.painting_features), (ref.rf_scale, ref.painting_rf))]
        fd_h, rf_h = (qm.frechet_distance(*h) for h in halves)
        kd_h = qm.kernel_distance(*halves[0])
        notes.insert(3, f"Between the two halves of the paintings ({len(ref.paintings[0::2])} and "
                        f"{len(ref.paintings[1::2])}): FD {fd_h:.1f} (ratio {fd_h / ref.photos_fd:.2f}), RF "
                        f"{rf_h:.1f} (ratio {rf_h / ref.photos_rf:.2f}), a floor set by sample size; the unbiased "
                        f"kernel distance's KD ratio {kd_h / ref.photos_kd:.2f} "
                        f"(expected 0). The photos' own RF distance {ref.photos_rf:.1f}.")
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
