"""The Python API behind `ccv convert`: ``Converter(ref, ConvertOptions()).run(["photos/"])``.

Jobs come from ``files`` (mirrored output tree), skips from ``manifest``, pixels go through
``pipeline`` (decode workers, batched inference, encode workers); every output is written under a
temporary name and renamed when complete. Progress and messages go to callbacks; nothing is drawn.
"""
from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

from .atomic import atomic_write_bytes, publish, temporary_path
from .errors import BackendError, CcvError, DecodeFailed, InferenceFailed, MediaError, UsageError, WriteFailed, first_line
from .files import Job, Naming, iter_jobs, plan_roots
from .census import ShapeCensus, probe_size
from .imaging import DecodedImage, encode_image, output_format, read_image, resize_rgb, working_size
from .look import Look, apply_look, look_for, look_note
from .manifest import FAILURES_NAME, Manifest, ObjectManifest, open_manifest, settings_key
from .object_store import ObjectPath, fetch, fresh_listings, location, remove_matching, scratch_file, upload_temporary
from .pipeline import Pipeline, PipelineConfig, PipelineStats
from .resolve import ModelRef

ON_EXISTS = ("skip", "overwrite")
METADATA = ("keep", "strip")
AUTO_TILE_PIXELS = 2048 * 2048  # larger images run in tiles (about 4 GB of activations at fp32)
_PARTIAL = re.compile(r"^\..+\.[^.]+\.part(\.[^.]+)?$")  # atomic.atomic_path's temporary names


@dataclass(frozen=True)
class ConvertOptions:
    output: Optional[Path] = None  # None: a sibling folder <input>_<target>/ (files: beside themselves); or an ObjectPath
    ext: str = "same"  # same, jpg, png, webp, avif, heic (same: a camera RAW becomes a 16-bit TIFF)
    quality: Optional[int] = None  # JPEG/WebP/AVIF/HEIC quality; None: 95 (JPEG), 90 (WebP), 85 (AVIF, HEIC)
    suffix: Optional[str] = None  # added to output names; None: "" in a mirrored tree, "_<target>" beside the input
    on_exists: str = "skip"  # skip (outputs made with the same model and settings) or overwrite
    max_side: Optional[int] = None  # run the generator with the longest side at most this
    work_size: bool = False  # write at the working size instead of scaling back to the original
    tile: Optional[int] = None  # None: tile automatically when an image is too large; 0: never
    metadata: str = "keep"  # keep (EXIF with orientation reset, ICC) or strip
    dry_run: bool = False
    jobs: int = 2  # decode workers, and as many encode workers
    batch_size: int = 0  # 0: 4 on a GPU, 1 on the CPU (batches do not speed up the CPU)
    backend: str = "auto"  # auto, tensorrt, onnxruntime, torch
    device: str = "auto"  # auto, cpu, cuda
    precision: str = "auto"  # PyTorch backend: auto, fp32, bf16 (CPU), fp16 (CUDA)
    compile: Optional[bool] = None  # torch.compile: None where it pays (CPU with native bf16), True every size, False never
    colors: Optional[str] = None  # look.parse_colors: model, keep or a fraction; None: the model's recommendation
    strength: Optional[float] = None  # look.Look.strength; None: the model's recommendation

    def __post_init__(self) -> None:
        if self.output is not None:
            object.__setattr__(self, "output", location(self.output))  # "s3://bucket/out" too
        Naming(self.ext, self.suffix or "")  # checks --ext and --suffix before any work
        if self.on_exists not in ON_EXISTS:
            raise UsageError(f"unknown --on-exists {self.on_exists!r}: use skip or overwrite")
        if self.metadata not in METADATA:
            raise UsageError(f"unknown --metadata {self.metadata!r}: use keep or strip")
        if self.quality is not None and not 1 <= self.quality <= 100:
            raise UsageError("--quality must be between 1 and 100")
        if self.max_side is not None and self.max_side < 16:
            raise UsageError("--max-side must be at least 16")
        if self.tile is not None and self.tile != 0 and (self.tile < 64 or self.tile % 4):
            raise UsageError("--tile must be 0 (never) or a multiple of 4, at least 64")
        if self.jobs < 1:
            raise UsageError("--jobs must be at least 1")
        self.backend_choice  # checked here, so --dry-run catches typos too
        Look.of(self.colors, self.strength)  # and bad looks

    @property
    def backend_choice(self):
        from .backends.select import BackendChoice

        return BackendChoice.parse(self.backend, self.device, self.precision, self.compile)


@dataclass(frozen=True)
class PlannedJob:
    job: Job
    action: str  # convert, replace (made with other settings), skip (done), exists (not made by ccv), refuse
    note: str = ""


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
class _Work:
    """An image on its way through the pipeline."""

    job: Job
    image: DecodedImage  # rgb at the working size
    orig_size: tuple[int, int]  # (H, W) of the upright source
    tiled: bool
    elsewhere: bool = False  # the main engine refuses this size (a TensorRT shape profile): the router's PyTorch runs it
    result: Optional[np.ndarray] = None
    source: Optional[np.ndarray] = None  # the input as decoded (before the working size), when the look needs it


class Converter:
    """Converts image files with one model. ``on_progress(ConvertProgress)`` is called from the calling
    thread; ``on_message(kind, text)`` (kinds: backend, failed, note) from any thread."""

    def __init__(self, ref: ModelRef, options: ConvertOptions = ConvertOptions(),
                 on_progress: Optional[Callable[[ConvertProgress], None]] = None,
                 on_message: Optional[Callable[[str, str], None]] = None, backend=None):
        self.ref = ref
        self.opt = options
        self.on_progress = on_progress or (lambda p: None)
        self.on_message = on_message or (lambda kind, text: None)
        self._backend = backend  # an unopened Backend to use instead of make_backend (tests, benchmarks)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._manifests: dict[Path, Manifest] = {}
        self._input_dirs: list[Path] = []  # resolved folders the inputs are walked from (set by _jobs)
        self.look = look_for(ref, options.colors, options.strength)

    def stop(self) -> None:
        """Finishes the files in flight, then ``run`` returns with ``interrupted`` set."""
        self._stop.set()

    # -- planning ----------------------------------------------------------------------------------
    def _jobs(self, inputs: Sequence[str], ignored: Optional[Counter] = None) -> Iterator[Job]:
        roots = plan_roots(inputs, self.ref.target, self.opt.output)
        self._input_dirs = [r.base.resolve() for r in roots if r.kind != "file"]
        naming = Naming(self.opt.ext, self.opt.suffix or "")
        beside = Naming(self.opt.ext, self.opt.suffix if self.opt.suffix is not None else f"_{self.ref.target}")
        return iter_jobs(roots, naming, beside, ignored)

    def _settings_key(self) -> str:
        from .weights import sha256_file

        model = (self.ref.entry.sha256 if self.ref.entry and self.ref.entry.sha256 else "") or sha256_file(self.ref.path)
        o = self.opt
        return settings_key(model=model, ext=o.ext, quality=o.quality, max_side=o.max_side, work_size=o.work_size,
                            tile=o.tile, metadata=o.metadata, **self.look.settings())

    def _manifest(self, out_root: Path) -> Manifest:
        with self._lock:
            m = self._manifests.get(out_root)
            if m is None:
                m = self._manifests[out_root] = open_manifest(out_root)
            return m

    def _decide(self, job: Job, key: str) -> PlannedJob:
        try:
            same = isinstance(job.dst, Path) and job.dst.exists() and os.path.samefile(job.src, job.dst)
        except (OSError, TypeError):  # TypeError: a source in a store and an output on disk
            same = False
        if same or job.dst.resolve() == job.src.resolve():
            return PlannedJob(job, "refuse", "the output would overwrite the input")
        note = "renamed: another input has the same output name" if job.renamed else ""
        if not (job.dst.exists() or job.dst.is_symlink()):
            return PlannedJob(job, "convert", note)
        m = self._manifest(job.out_root)
        if self.opt.on_exists == "overwrite":
            if m.get(job.rel) is None and self._inside_input(job.dst):
                # -o pointing into the input tree, at a folder holding photos: never replace those
                return PlannedJob(job, "refuse", "the output would overwrite a file in the input folder that ccv "
                                  "did not make; choose another -o")
            return PlannedJob(job, "replace", "exists, --on-exists overwrite")
        if m.is_done(job.rel, key, job.src):
            return PlannedJob(job, "skip", "done with the same model and settings")
        record = m.get(job.rel)
        if record is not None and record.src != str(job.src.resolve()) and _exists(record.src):
            # two source trees converted into one -o: the other tree's output is not ours to redo
            return PlannedJob(job, "exists", f"exists, made by ccv from {record.src}; "
                                             "--on-exists overwrite replaces it")
        if record is not None:
            return PlannedJob(job, "replace", "made with another model, other settings or an older source")
        return PlannedJob(job, "exists", "exists and was not made by ccv; --on-exists overwrite replaces it")

    def _inside_input(self, path: Path) -> bool:
        p = path.resolve()
        return any(d in p.parents for d in self._input_dirs)

    def plan(self, inputs: Sequence[str], ignored: Optional[Counter] = None) -> list[PlannedJob]:
        """What ``run`` would do with each file (``--dry-run``); writes nothing. Files that are not
        images are counted into ``ignored`` by suffix."""
        key = self._settings_key()
        fresh_listings([*inputs, self.opt.output])
        return [self._decide(j, key) for j in self._jobs(inputs, ignored)]

    # -- the run -----------------------------------------------------------------------------------
    def run(self, inputs: Sequence[str]) -> Summary:
        """Converts every planned file: ``_ImageStages`` on the stage runner (``pipeline``), the
        backend router choosing the engine per batch."""
        from .backends.router import BackendRouter

        opt = self.opt
        fresh_listings([*inputs, opt.output])  # objects as they are now, not as this process last listed them
        list(plan_roots(inputs, self.ref.target, opt.output))  # usage errors before any work
        census = ShapeCensus()  # filled by the counting walk; tells the CPU which sizes to compile
        router = BackendRouter(self.ref, opt.backend_choice, main=self._backend, artifacts=export_artifacts(),
                               on_note=lambda text: self.on_message("note", text), census=census)
        stages = _ImageStages(self, router, self._settings_key(), census)
        with router.open():
            stages.summary.backend = router.describe()
            self.on_message("backend", stages.summary.backend)
            if not self.look.raw:
                self.on_message("note", look_note(self.look, opt.colors, opt.strength))
            config = PipelineConfig(opt.jobs, opt.jobs, opt.batch_size or router.default_batch)
            runner = Pipeline(config, stages.decode, stages.infer, stages.encode, stages.shape_key,
                              on_failed=stages.fail, job_of=lambda work: work.job, on_tick=stages.tick, stop=self._stop)
            stages.stats = runner.stats
            threading.Thread(target=stages.count_total, args=(inputs,), name="ccv-count", daemon=True).start()
            try:
                runner.run(stages.source(inputs))
            finally:
                close_manifests(self)  # an object store's last batch of outputs is published here
        stages.tick(final=True)
        return stages.finish(runner.interrupted)

    def _write_failures(self, out_roots: list[Path], failures: dict[Path, list[tuple[Path, str]]],
                        interrupted: bool) -> list[Path]:
        """One ``ccv-failures.txt`` per output folder that had failures; a stale one from an earlier
        run is removed when this run went through without failures there. An output folder that
        cannot be written (the likely reason for the failures) gets a note, not a traceback."""
        written = []
        for root in out_roots:
            path = root / FAILURES_NAME
            items = failures.get(root)
            try:
                if items:
                    text = "".join(f"{src}\t{msg}\n" for src, msg in items)
                    if isinstance(path, ObjectPath):
                        path.write_bytes(text.encode("utf-8"))  # one upload: never seen half-written
                    else:
                        atomic_write_bytes(path, text.encode("utf-8"))
                    written.append(path)
                elif not interrupted and path.is_file():
                    path.unlink()
            except OSError as e:
                self.on_message("note", f"{path}: cannot write the list of failures ({e.strerror or e})")
        return written


class _ImageStages:
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
        self._seen_dirs: set[Path] = set()
        self._told_raw = threading.Event()

    # -- source ------------------------------------------------------------------------------------
    def source(self, inputs: Sequence[str]) -> Iterator[Job]:
        """The jobs to convert; skips and refusals are counted here, never reach the workers."""
        conv = self.conv
        for job in conv._jobs(inputs, self.summary.ignored):
            if job.out_root not in self.summary.out_roots:
                self.summary.out_roots.append(job.out_root)
            if job.dst.parent not in self._seen_dirs:
                self._seen_dirs.add(job.dst.parent)
                _remove_partials(job.dst.parent)
            try:
                p = conv._decide(job, self.key)
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
            for job in self.conv._jobs(inputs):
                n += 1
                if self.census is not None and self.conv._decide(job, self.key).action in ("convert", "replace"):
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
        """Whether an image of this working size runs in tiles."""
        if self.opt.tile == 0:
            return False
        return max(h, w) > self.opt.tile if self.opt.tile else h * w > AUTO_TILE_PIXELS

    # -- decode ------------------------------------------------------------------------------------
    def decode(self, job: Job) -> _Work:
        return self.route(self.read(job))

    def read(self, job: Job) -> _Work:
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
        return _Work(job, img, (h, w), self._tiled(wh, ww), source=source)

    def route(self, work: _Work) -> _Work:
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
    def shape_key(work: _Work):
        """Images that can share a batch: same padded size, same engine; a tiled image is alone."""
        from .backends.base import padded_size

        return ("tile", id(work)) if work.tiled else (work.elsewhere, *padded_size(*work.image.size))

    def infer(self, items: list[_Work]) -> list[_Work]:
        import torch

        from .backends.base import pad_rgb, padded_size

        try:
            if items[0].tiled:
                x = torch.from_numpy(np.require(items[0].image.rgb, requirements="W"))[None]
                side = {"tile": self.opt.tile} if self.opt.tile else {}  # else the backend's (tiling.TileSpec)
                items[0].result = self.router.for_tiles().infer_tiled(x, **side)[0].numpy()
                return items
            ph, pw = padded_size(*items[0].image.size)
            batch = np.stack([pad_rgb(w.image.rgb, ph, pw) for w in items])
            out = self.router.for_size(*items[0].image.size).infer(torch.from_numpy(batch)).numpy()
        except (BackendError, RuntimeError, ValueError, MemoryError) as e:  # out of memory, a shape refused
            names = ", ".join(str(w.job.src) for w in items)
            raise InferenceFailed(f"{names}: inference failed ({first_line(e, 160)})") from None
        for w, o in zip(items, out):
            h, ww = w.image.size
            w.result = o[:h, :ww]
        return items

    # -- encode and sink ---------------------------------------------------------------------------
    def encode(self, work: _Work) -> None:
        """Writes one output under a temporary name, recorded in the manifest, then renamed."""
        self.commit(work.job, self.write_temp(work))

    def write_temp(self, work: _Work) -> Path:
        """Encodes one output into a temporary name beside it (removed again if that fails)."""
        opt, job = self.opt, work.job
        try:
            rgb = work.result
            assert rgb is not None
            if not opt.work_size and rgb.shape[:2] != work.orig_size:
                rgb = resize_rgb(np.ascontiguousarray(rgb), *work.orig_size)
            if work.source is not None:
                rgb = apply_look(np.ascontiguousarray(rgb), work.source, self.conv.look)
            img = replace(work.image, rgb=np.ascontiguousarray(rgb))  # alpha, metadata, bit depth go along
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
        m = self.conv._manifest(job.out_root)
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
        for m in list(self.conv._manifests.values()):
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
        summary.failures_files = self.conv._write_failures(summary.out_roots, self.failures, interrupted)
        return summary


def export_artifacts():
    """The artifact index with ``export`` behind it, so a backend that needs an ONNX or an engine
    can have it made on first use (the backends never import ``export`` themselves)."""
    from .backends.artifacts import ArtifactIndex

    try:
        from . import export
    except ImportError as e:
        return ArtifactIndex(why_not=f"the export module is not available ({e})")
    return ArtifactIndex(exporter=export)


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


def close_manifests(conv: Converter) -> None:
    """Closes every manifest of a run; one that fails (a store out of reach) is reported and the
    others still close."""
    for m in list(conv._manifests.values()):
        try:
            m.close()
        except Exception as e:  # noqa: BLE001
            conv.on_message("note", f"{m.path}: cannot finish the manifest ({first_line(e, 160)}); "
                            "the next run reads what was recorded")


def _exists(path: str) -> bool:
    try:
        return location(path).exists()
    except Exception:  # noqa: BLE001  (a store out of reach: treated as gone)
        return False


def _remove_partials(folder) -> None:
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
