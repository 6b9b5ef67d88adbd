"""Unpaired training data: two folders of images, read as the original's unaligned dataset.

An epoch is max(|A|, |B|) items; A is taken in a shuffled order (``perm[pos] % |A|``), B at random;
each image is resized to ``load_size`` squared (bicubic), randomly cropped to ``crop_size`` and
randomly flipped, independently for A and B, and scaled to [-1, 1]. With ``zoom_b`` above 1 (ccv's), a
B image is resized to ``load_size`` times a zoom drawn log-uniformly from [1, zoom_b] before its crop.

Every random choice for item ``pos`` of ``epoch`` comes from a generator seeded with
(seed, epoch, pos). The data order therefore needs no saved state, does not depend on the number of
loader workers, and a run resumed in the middle of an epoch sees exactly the items it would have.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from cyclegan_convert.errors import DataError, MediaError, UsageError
from cyclegan_convert.formats import probe, suffixes_text
from cyclegan_convert.imaging import is_image_name, read_rgb

Report = Callable[[str], None]

_X2Y = re.compile(r"^([A-Za-z][\w-]*?)2([A-Za-z][\w-]*)$")


@dataclass(frozen=True)
class DataSource:
    dir_a: Path
    dir_b: Path
    a_name: Optional[str]  # None when the folder names say nothing useful
    b_name: Optional[str]
    default_run_name: str


def resolve_source(paths: Sequence[Path]) -> DataSource:
    """``DATAROOT`` (with trainA/ and trainB/) or two folders A and B; default domain names:
    X and Y from a DATAROOT named X2Y (monet2photo), else the two folders' names."""
    paths = [Path(p).expanduser() for p in paths]
    if len(paths) == 1:
        root = paths[0]
        if not root.is_dir():
            raise DataError(f"{root}: no such folder; give DATAROOT with trainA/ and trainB/, or two folders")
        dir_a, dir_b = root / "trainA", root / "trainB"
        for d in (dir_a, dir_b):
            if not d.is_dir():
                raise DataError(f"{d}: missing; DATAROOT needs trainA/ and trainB/ (or give two folders A B)")
        m = _X2Y.match(root.resolve().name)
        a, b = (m.group(1), m.group(2)) if m else (None, None)
        return DataSource(dir_a, dir_b, a, b, root.resolve().name)
    if len(paths) == 2:
        for d in paths:
            if not d.is_dir():
                raise DataError(f"{d}: no such folder")
        a, b = paths[0].resolve().name, paths[1].resolve().name
        if a == b:
            a = b = None  # two folders both called "images": no names to take
        return DataSource(paths[0], paths[1], a, b, f"{paths[0].resolve().name}2{paths[1].resolve().name}")
    raise UsageError("give DATAROOT (with trainA/ and trainB/) or two folders A and B")


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder``, recursively, in a stable order; hidden files and folders skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    # os.walk, not Path.rglob: rglob does not enter symlinked folders (a dataset assembled from
    # links to other disks would come out empty or partial); a link back up is entered only once.
    found = []
    seen: set[str] = set()
    for top, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            p = Path(top) / name
            if not name.startswith(".") and is_image_name(p) and p.is_file():
                found.append(p)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def scan_domain(folder: Path, label: str, report: Report) -> list[Path]:
    """The usable images of one domain. Files PIL cannot even open are reported now, once; files that
    fail later while decoding (truncated data) are reported by the loop and skipped there."""
    files = list_images(folder)
    if not files:
        raise DataError(f"{folder}: no images for domain {label} (looked for {suffixes_text()}, recursively)")
    good = []
    for f in files:
        reason = probe(f)  # the header only (a RAW: LibRaw's), so a HEIC or RAW without its package is said here
        if reason is None:
            good.append(f)
        else:
            report(f"skipped {f}: {reason}")
    if not good:
        raise DataError(f"{folder}: none of the {len(files)} images of domain {label} can be read")
    return good


def item_seed(seed: int, epoch: int, pos: int) -> int:
    """A distinct, reproducible seed per (run seed, epoch, position)."""
    return (((seed & 0xFFFFFFFF) * 1_000_003 + epoch) * 1_000_033 + pos) % (2**63 - 1)


def to_tensor(img: Image.Image) -> torch.Tensor:
    """8-bit RGB PIL image -> 3 x H x W float in [-1, 1]."""
    a = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)
    return a.float().div_(127.5).sub_(1.0)


class UnpairedDataset(torch.utils.data.Dataset):
    """Indexed by (epoch, pos); returns (A 3xHxW, B 3xHxW, files that failed to decode, newline-joined)."""

    def __init__(self, files_a: Sequence[Path], files_b: Sequence[Path], load_size: int, crop_size: int,
                 flip: bool, seed: int, zoom_b: float = 1.0):
        if crop_size > load_size:
            raise UsageError(f"--crop-size {crop_size} is larger than --load-size {load_size}")
        if zoom_b < 1.0:
            raise UsageError(f"--zoom-b {zoom_b}: give 1 (no zoom) or more")
        self.files_a, self.files_b = list(files_a), list(files_b)
        self.load_size, self.crop_size, self.flip, self.seed = load_size, crop_size, flip, seed
        self.zoom_b = zoom_b
        self._perm: tuple[int, Optional[torch.Tensor]] = (-1, None)

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def order_a(self, epoch: int) -> torch.Tensor:
        if self._perm[0] != epoch:
            g = torch.Generator().manual_seed(item_seed(self.seed, epoch, -1))
            self._perm = (epoch, torch.randperm(len(self), generator=g))
        return self._perm[1]  # type: ignore[return-value]

    def _load(self, files: list[Path], i: int, g: torch.Generator, bad: list[str], zoom: float = 1.0
              ) -> torch.Tensor:
        # An undecodable file is replaced by the next one in the list: still reproducible.
        for k in range(len(files)):
            path = files[(i + k) % len(files)]
            try:
                img = read_rgb(path, min_side=self.load_size)  # a large RAW is developed at half size
            except MediaError as e:
                bad.append(str(e))
                continue
            return self.transform(img, g, zoom)
        raise DataError(f"no image of {Path(files[0]).parent} can be decoded")

    def transform(self, img: Image.Image, g: torch.Generator, zoom: float = 1.0) -> torch.Tensor:
        size = self.load_size
        if zoom > 1.0:  # drawn only when asked, so runs without a zoom see the crops they always did
            size = round(size * math.exp(float(torch.rand(1, generator=g)) * math.log(zoom)))
        if img.size != (size, size):
            img = img.resize((size, size), Image.BICUBIC)
        if self.crop_size < size:
            x = int(torch.randint(0, size - self.crop_size + 1, (1,), generator=g))
            y = int(torch.randint(0, size - self.crop_size + 1, (1,), generator=g))
            img = img.crop((x, y, x + self.crop_size, y + self.crop_size))
        if self.flip and float(torch.rand(1, generator=g)) < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        return to_tensor(img)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, str]:
        epoch, pos = key
        g = torch.Generator().manual_seed(item_seed(self.seed, epoch, pos))
        ia = int(self.order_a(epoch)[pos]) % len(self.files_a)
        ib = int(torch.randint(0, len(self.files_b), (1,), generator=g))
        bad: list[str] = []
        a = self._load(self.files_a, ia, g, bad)
        b = self._load(self.files_b, ib, g, bad, self.zoom_b)
        return a, b, "\n".join(bad)

    def fixed_pair(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first decodable A and B, resized and centre-cropped (no flip), for sample grids."""
        out = []
        for files in (self.files_a, self.files_b):
            for f in files:
                try:
                    img = read_rgb(f, min_side=self.load_size)
                except MediaError:
                    continue
                img = img.resize((self.load_size, self.load_size), Image.BICUBIC)
                o = (self.load_size - self.crop_size) // 2
                out.append(to_tensor(img.crop((o, o, o + self.crop_size, o + self.crop_size))))
                break
            else:
                raise DataError(f"no image of {Path(files[0]).parent} can be decoded")
        return out[0], out[1]


def rank_positions(n: int, rank: int, world: int) -> list[int]:
    """This process's share of an epoch's positions; padded by wrapping so every rank takes the same
    number of steps (as DistributedSampler does: uneven ranks would hang DDP)."""
    total = math.ceil(n / world) * world
    return [p % n for p in range(rank, total, world)]


def epoch_keys(epoch: int, positions: Sequence[int], start: int) -> Iterator[tuple[int, int]]:
    for p in positions[start:]:
        yield (epoch, p)


def _ignore_sigint(_worker_id: int) -> None:
    # Ctrl-C (and a hang-up) reaches every process of the terminal's group: only the main process
    # handles it (it saves and stops); a worker that died of it would break the batch being loaded.
    # SIGTERM keeps its default: the DataLoader stops a stuck worker with it.
    import signal

    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)


def make_loader(dataset: UnpairedDataset, keys: list[tuple[int, int]], batch_size: int, workers: int,
                pin_memory: bool) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=keys, num_workers=workers, pin_memory=pin_memory,
        worker_init_fn=_ignore_sigint if workers > 0 else None, drop_last=False)
