"""The stages of one `ccv convert` run, for a stage runner: the local threads of ``pipeline`` (through
``Converter.run``) or Ray Data (``ray_runner``).

    source (planning: the mirrored tree, the manifest's skips)
      -> decode (read at the working size, route to an engine)
      -> infer (same-sized images batched through the router; a large one alone, in tiles)
      -> encode (the look, the file written under a temporary name, recorded, renamed)

Counters and failures are kept here (``ConvertProgress``, ``Summary``); the planning rules are the
``Converter``'s (``jobs``, ``decide``).
"""
from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional, Sequence

import numpy as np

from .atomic import publish, temporary_path
from .census import ShapeCensus, probe_size
from .errors import BackendError, CcvError, DecodeFailed, InferenceFailed, MediaError, WriteFailed, first_line
from .files import Job
from .imaging import DecodedImage, encode_image, output_format, read_image, resize_rgb, working_size
from .look import apply_look
from .manifest import ObjectManifest
from .object_store import ObjectPath, fetch, remove_matching, scratch_file, upload_temporary
from .pipeline import PipelineStats

if TYPE_CHECKING:
    from .converter import Converter

AUTO_TILE_PIXELS = 2048 * 2048  # larger images run in tiles (about 4 GB of activations at fp32)
_PARTIAL = re.compile(r"^\..+\.[^.]+\.part(\.[^.]+)?$")  # atomic.atomic_path's temporary names


@dataclass
class ConvertProgress:
    """A snapshot for progress displays (the CLI draws rich's ``Progress`` bar from it). ``total`` is
    None until all inputs have been listed."""

    converted: int = 0
    skipped: int = 0
    failed: int = 0
    total: Optional[int] = None
    elapsed_s: float = 0.0
    rates: dict[str, float] = field(default_factory=dict)  # decode, infer, encode: images/s each stage sustains
    last: str = ""  # the last file finished

    @property
    def done(self) -> int:
        return self.converted + self.skipped + self.failed


@dataclass
class Summary:
    """What a run did: counts, failures (source, one-line reason), the output folders, times."""

    backend: str
    converted: int = 0
    skipped: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    out_roots: list[Path] = field(default_factory=list)
    failures_files: list[Path] = field(default_factory=list)
    elapsed_s: float = 0.0
    stats: Optional[PipelineStats] = None
    interrupted: bool = False
    time_split: dict[str, float] = field(default_factory=dict)  # --ray: seconds per phase, stages summed over workers
    ignored: Counter = field(default_factory=Counter)  # files in the inputs that are not images, by suffix


@dataclass
class Work:
    """An image on its way through the pipeline."""

    job: Job
    image: DecodedImage  # rgb at the working size
    orig_size: tuple[int, int]  # (H, W) of the upright source
    tiled: bool
    elsewhere: bool = False  # the main engine refuses this size (a TensorRT shape profile): the router's PyTorch runs it
    result: Optional[np.ndarray] = None
    source: Optional[np.ndarray] = None  # the input as decoded (before the working size), when the look needs it


class ImageStages:
    """One `ccv convert` run as stage callables for ``pipeline.Pipeline``: ``source`` lists the jobs
    left to do, ``decode`` reads one file, ``shape_key`` and ``infer`` batch same-sized images
    through the router, ``encode`` writes one file atomically and records it in the manifest.
    Counters and failures are kept here; ``tick`` reports progress."""

    def __init__(self, conv: Converter, router, settings_key: str, census: Optional[ShapeCensus] = None):
        self.conv, self.opt, self.router, self.key = conv, conv.opt, router, settings_key
        self.census = census
        self.progress = ConvertProgress()
        self.summary = Summary(backend="")
        self.failures: dict[Path, list[tuple[Path, str]]] = {}  # per output folder
        self.stats: Optional[PipelineStats] = None
        self.t_start = time.perf_counter()
        self._lock = threading.Lock()
        self.seen_dirs: set[Path] = set()  # output folders met; their stale temporary files were removed
        self._told_raw = threading.Event()

    # -- source ------------------------------------------------------------------------------------
    def source(self, inputs: Sequence[str]) -> Iterator[Job]:
        """The jobs to convert; skips and refusals are counted here, never reach the workers."""
        conv = self.conv
        for job in conv.jobs(inputs, self.summary.ignored):
            if job.out_root not in self.summary.out_roots:
                self.summary.out_roots.append(job.out_root)
            if job.dst.parent not in self.seen_dirs:
                self.seen_dirs.add(job.dst.parent)
                remove_partials(job.dst.parent)
            try:
                p = conv.decide(job, self.key)
            except OSError as e:  # a store that cannot say whether the output exists: this file fails
                self.fail(job, f"{job.dst}: cannot check the output ({first_line(e, 160)})")
                continue
            if p.action in ("convert", "replace"):
                yield job
            elif p.action == "refuse":
                self.fail(job, f"{job.src}: {p.note}")
            else:
                with self._lock:
                    self.progress.skipped += 1
                if p.action == "exists":
                    conv.on_message("note", f"{job.dst}: {p.note}")

    def count_total(self, inputs: Sequence[str]) -> None:
        """A second, cheap walk so the ETA is known early, and, where a census is kept, the sizes of
        the files still to convert (from their headers)."""
        try:
            n = 0
            for job in self.conv.jobs(inputs):
                n += 1
                if self.census is not None and self.conv.decide(job, self.key).action in ("convert", "replace"):
                    self._count_size(job)
        except Exception:  # noqa: BLE001  (the real walk reports problems)
            return
        finally:
            if self.census is not None:
                self.census.complete.set()
        self.progress.total = n

    def _count_size(self, job: Job) -> None:
        from .backends.base import padded_size

        size = probe_size(job.src)
        if size is None:
            return
        h, w = working_size(*size, self.opt.max_side)
        if not self._tiled(h, w):
            self.census.plan(padded_size(h, w))

    def _tiled(self, h: int, w: int) -> bool:
        return runs_in_tiles(h, w, self.opt.tile)

    # -- decode ------------------------------------------------------------------------------------
    def decode(self, job: Job) -> Work:
        return self.route(self.read(job))

    def read(self, job: Job) -> Work:
        """Reads one file at its working size; needs no backend (a Ray task runs it)."""
        opt, say = self.opt, self.conv.on_message
        try:
            img = read_source_image(job.src, metadata=opt.metadata == "keep", max_side=opt.max_side)
        except MediaError as e:
            raise DecodeFailed(str(e)) from None
        except CcvError:
            raise  # a usage or environment problem ends the command, never one file
        except Exception as e:  # noqa: BLE001  (a decoder bug on a strange file: that file fails)
            raise DecodeFailed(f"{job.src}: cannot decode ({type(e).__name__}: {e})") from None
        if img.note:
            say("note", f"{job.src}: {img.note}")
        if img.frames > 1:
            say("note", f"{job.src}: {img.frames_note()}")
        if img.format == "RAW" and opt.ext == "same" and not self._told_raw.is_set():
            self._told_raw.set()
            say("note", f"{job.src}: a camera RAW cannot be written back; --ext same writes "
                f"RAW files as 16-bit TIFF ({job.dst.name})")
        h, w = img.full_size or img.size  # a JPEG may come decoded smaller (draft): the output keeps this size
        wh, ww = working_size(h, w, opt.max_side)
        source = None if self.conv.look.raw else img.rgb
        img.rgb = resize_rgb(img.rgb, wh, ww)  # the last step to the working size, drafted or not
        return Work(job, img, (h, w), self._tiled(wh, ww), source=source)

    def route(self, work: Work) -> Work:
        """Which engine will run it, asked of the router (where the backend is open)."""
        wh, ww = work.image.size
        if work.tiled and not self.router.can_tile:
            raise DecodeFailed(f"{work.job.src}: {ww}x{wh} is too large to run whole on {self.router.main.name}; "
                               "tiles need the generator's .pth (--model FILE.pth or --to NAME); or use --max-side")
        # a size the engine was not built for runs elsewhere (the router decides): its own batches
        work.elsewhere = not work.tiled and self.router.runs_elsewhere(wh, ww)
        return work

    # -- batch and infer ---------------------------------------------------------------------------
    @staticmethod
    def shape_key(work: Work):
        """Images that can share a batch: same padded size, same engine; a tiled image is alone."""
        from .backends.base import padded_size

        return ("tile", id(work)) if work.tiled else (work.elsewhere, *padded_size(*work.image.size))

    def infer(self, items: list[Work]) -> list[Work]:
        try:
            if items[0].tiled:
                items[0].result = infer_tiled(self.router, items[0].image.rgb, self.opt.tile)
                return items
            out = infer_batch(self.router, [w.image.rgb for w in items])
        except (BackendError, RuntimeError, ValueError, MemoryError) as e:  # out of memory, a shape refused
            names = ", ".join(str(w.job.src) for w in items)
            raise InferenceFailed(f"{names}: inference failed ({first_line(e, 160)})") from None
        for w, o in zip(items, out):
            w.result = o
        return items

    # -- encode and sink ---------------------------------------------------------------------------
    def encode(self, work: Work) -> None:
        """Writes one output under a temporary name, recorded in the manifest, then renamed."""
        self.commit(work.job, self.write_temp(work))

    def write_temp(self, work: Work) -> Path:
        """Encodes one output into a temporary name beside it (removed again if that fails)."""
        opt, job = self.opt, work.job
        try:
            assert work.result is not None
            rgb = np.ascontiguousarray(work.result)
            if not opt.work_size:
                rgb = resize_rgb(rgb, *work.orig_size)
            if work.source is not None:
                rgb = apply_look(rgb, work.source, self.conv.look)
            img = replace(work.image, rgb=rgb)  # alpha, metadata, bit depth go along
            fmt = output_format(job.dst.suffix)
            remote = isinstance(job.dst, ObjectPath)  # encoded here, then uploaded under a temporary key
            tmp = scratch_file(job.dst.suffix) if remote else temporary_path(job.dst, suffix=job.dst.suffix)
            try:
                encode_image(img, tmp, fmt, opt.quality)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            if remote:
                return upload_temporary(tmp, job.dst)
        except (OSError, ValueError, MediaError) as e:
            raise WriteFailed(f"{job.dst}: cannot write ({first_line(e, 160)})") from None
        return tmp

    def commit(self, job: Job, tmp: Path) -> None:
        """The written temporary file becomes the output: recorded in the manifest first, so an
        output that exists is always recorded, then renamed. In an object store both happen with
        the next batch of records (``ObjectManifest``)."""
        beside = job.dst.parent.resolve() == job.src.parent.resolve()  # the link's folder, for a link
        m = self.conv.manifest(job.out_root)
        if isinstance(m, ObjectManifest):
            m.commit_later(job.rel, self.key, job.src, beside, tmp, job.dst, done=lambda: self._converted(job),
                           failed=lambda e: self.fail(job, f"{job.dst}: cannot write ({first_line(e, 160)})"))
            return
        try:
            try:
                m.add(job.rel, self.key, job.src, beside)
                publish(tmp, job.dst)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        except (OSError, ValueError) as e:
            raise WriteFailed(f"{job.dst}: cannot write ({first_line(e, 160)})") from None
        self._converted(job)

    def _converted(self, job: Job) -> None:
        with self._lock:
            self.progress.converted += 1
            self.progress.last = str(job.src)

    # -- reporting ---------------------------------------------------------------------------------
    def fail(self, job: Job, message: str) -> None:
        with self._lock:
            self.progress.failed += 1
            self.summary.failed.append((job.src, message))
            self.failures.setdefault(job.out_root, []).append((job.src, message))
        self.conv.on_message("failed", message)

    def tick(self, final: bool = False) -> None:
        for m in list(self.conv.manifests.values()):
            if isinstance(m, ObjectManifest):
                m.flush_if_due()
        p = self.progress
        p.elapsed_s = time.perf_counter() - self.t_start
        if self.stats is not None:
            s = self.stats
            p.rates = {"decode": s.decode.rate, "infer": s.infer.rate, "encode": s.encode.rate}
        self.conv.on_progress(p)

    def finish(self, interrupted: bool) -> Summary:
        summary = self.summary
        summary.converted, summary.skipped = self.progress.converted, self.progress.skipped
        summary.elapsed_s = time.perf_counter() - self.t_start
        summary.stats = self.stats
        summary.interrupted = interrupted
        summary.failures_files = self.conv.write_failures(summary.out_roots, self.failures, interrupted)
        return summary


def runs_in_tiles(h: int, w: int, tile: Optional[int]) -> bool:
    """Whether an image of this working size runs in tiles: ``tile`` (``--tile``) 0 never, N past N
    px on a side; by default past ``AUTO_TILE_PIXELS``."""
    if tile == 0:
        return False
    return max(h, w) > tile if tile else h * w > AUTO_TILE_PIXELS


def infer_one(router, rgb: np.ndarray, tile: Optional[int]) -> np.ndarray:
    """One image (uint8 H, W, 3 at its working size) through the router as ``ImageStages.infer``
    runs it: in tiles where ``runs_in_tiles`` says so, else whole (``infer_batch``)."""
    if runs_in_tiles(*rgb.shape[:2], tile):
        return infer_tiled(router, rgb, tile)
    return infer_batch(router, [rgb])[0]


def infer_batch(router, rgbs: list[np.ndarray]) -> list[np.ndarray]:
    """Images (uint8 H, W, 3) that share a padded size (``ImageStages.shape_key``), each padded to it,
    one batch through the router's engine for the first one's size, each output cropped back to its
    own H, W."""
    import torch

    from .backends.base import pad_rgb, padded_size

    h, w = rgbs[0].shape[:2]
    batch = np.stack([pad_rgb(rgb, *padded_size(h, w)) for rgb in rgbs])
    out = router.for_size(h, w).infer(torch.from_numpy(batch)).numpy()
    return [o[:rgb.shape[0], :rgb.shape[1]] for o, rgb in zip(out, rgbs)]


def infer_tiled(router, rgb: np.ndarray, tile: Optional[int]) -> np.ndarray:
    import torch

    x = torch.from_numpy(np.require(rgb, requirements="W"))[None]
    side = {"tile": tile} if tile else {}  # else the backend's (tiling.TileSpec)
    return router.for_tiles().infer_tiled(x, **side)[0].numpy()


def read_source_image(src, metadata: bool, max_side: Optional[int]) -> DecodedImage:
    """``read_image``; a source in an object store is fetched into a local file first, and its
    errors name the object, not that file."""
    if not isinstance(src, ObjectPath):
        return read_image(src, metadata=metadata, max_side=max_side)
    try:
        local = fetch(src)
    except FileNotFoundError:
        raise MediaError(f"{src}: no such object") from None
    except CcvError:
        raise
    except Exception as e:  # noqa: BLE001  (the store's own errors: permissions, network)
        raise MediaError(f"{src}: cannot read ({first_line(e, 120)})") from None
    try:
        return read_image(local, metadata=metadata, max_side=max_side)
    except MediaError as e:
        raise MediaError(str(e).replace(str(local), str(src))) from None
    except CcvError:
        raise
    except Exception as e:  # noqa: BLE001  (as read() says it, but naming the object, not the scratch file)
        raise MediaError(f"{src}: cannot decode ({type(e).__name__}: {str(e).replace(str(local), str(src))})") from None
    finally:
        local.unlink(missing_ok=True)


def remove_partials(folder) -> None:
    """Temporary files a killed run left behind (``.name.XXXX.part.jpg``, see ``atomic``)."""
    if isinstance(folder, ObjectPath):
        remove_matching(folder, _PARTIAL)
        return
    try:
        with os.scandir(folder) as it:
            stale = [e.path for e in it if _PARTIAL.match(e.name) and e.is_file()]
    except OSError:
        return
    for p in stale:
        try:
            os.unlink(p)
        except OSError:
            pass
