"""The Python API behind `ccv convert`: ``Converter(ref, ConvertOptions()).run(["photos/"])``.

Jobs come from ``files`` (mirrored output tree), skips from ``manifest`` (``Converter.decide``), pixels
go through ``image_stages`` on the ``pipeline`` runner (decode workers, batched inference, encode
workers); every output is written under a temporary name and renamed when complete. Progress and
messages go to callbacks; nothing is drawn.
"""
from __future__ import annotations

import os
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

from .atomic import atomic_write_bytes
from .census import ShapeCensus
from .errors import UsageError, first_line
from .files import Job, Naming, iter_jobs, plan_roots
from .image_stages import ConvertProgress, ImageStages, Summary
from .look import asked_look, look_for, look_note
from .manifest import FAILURES_NAME, Manifest, open_manifest
from .manifest import settings_key as key_of_settings
from .object_store import ObjectPath, fresh_listings, location
from .pipeline import Pipeline, PipelineConfig
from .resolve import ModelRef

ON_EXISTS = ("skip", "overwrite")
METADATA = ("keep", "strip")


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
    strokes: Optional[float] = None  # look.Look.strokes; None: the model's recommendation
    highlights: Optional[float] = None  # look.Look.highlights; None: the model's recommendation
    edges: Optional[float] = None  # look.Look.edges; None: the model's recommendation

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
        look_for(None, *asked_look(self))  # and bad looks

    @property
    def backend_choice(self):
        from .backends.select import BackendChoice

        return BackendChoice.parse(self.backend, self.device, self.precision, self.compile)


@dataclass(frozen=True)
class PlannedJob:
    job: Job
    action: str  # convert, replace (made with other settings), skip (done), exists (not made by ccv), refuse
    note: str = ""


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
        self.manifests: dict[Path, Manifest] = {}
        self._input_dirs: list[Path] = []  # resolved folders the inputs are walked from (set by jobs)
        self.look = look_for(ref, *asked_look(options))

    def stop(self) -> None:
        """Finishes the files in flight, then ``run`` returns with ``interrupted`` set."""
        self._stop.set()

    # -- planning ----------------------------------------------------------------------------------
    def jobs(self, inputs: Sequence[str], ignored: Optional[Counter] = None) -> Iterator[Job]:
        """Every image file of the inputs with its output (the mirrored tree); others counted into ``ignored``."""
        roots = plan_roots(inputs, self.ref.target, self.opt.output)
        self._input_dirs = [r.base.resolve() for r in roots if r.kind != "file"]
        naming = Naming(self.opt.ext, self.opt.suffix or "")
        beside = Naming(self.opt.ext, self.opt.suffix if self.opt.suffix is not None else f"_{self.ref.target}")
        return iter_jobs(roots, naming, beside, ignored)

    def settings_key(self) -> str:
        """The model and the settings that change pixels, as the manifest records them."""
        from .weights import sha256_file

        model = (self.ref.entry.sha256 if self.ref.entry and self.ref.entry.sha256 else "") or sha256_file(self.ref.path)
        o = self.opt
        return key_of_settings(model=model, ext=o.ext, quality=o.quality, max_side=o.max_side, work_size=o.work_size,
                                tile=o.tile, metadata=o.metadata, **self.look.settings())

    def manifest(self, out_root: Path) -> Manifest:
        """The manifest of one output folder, opened once per run."""
        with self._lock:
            m = self.manifests.get(out_root)
            if m is None:
                m = self.manifests[out_root] = open_manifest(out_root)
            return m

    def decide(self, job: Job, key: str) -> PlannedJob:
        """What to do with one job: convert, replace, skip, keep what exists, or refuse (never an input)."""
        try:
            same = isinstance(job.dst, Path) and job.dst.exists() and os.path.samefile(job.src, job.dst)
        except (OSError, TypeError):  # TypeError: a source in a store and an output on disk
            same = False
        if same or job.dst.resolve() == job.src.resolve():
            return PlannedJob(job, "refuse", "the output would overwrite the input")
        note = "renamed: another input has the same output name" if job.renamed else ""
        if not (job.dst.exists() or job.dst.is_symlink()):
            return PlannedJob(job, "convert", note)
        m = self.manifest(job.out_root)
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
        key = self.settings_key()
        fresh_listings([*inputs, self.opt.output])
        return [self.decide(j, key) for j in self.jobs(inputs, ignored)]

    # -- the run -----------------------------------------------------------------------------------
    def run(self, inputs: Sequence[str]) -> Summary:
        """Converts every planned file: ``image_stages.ImageStages`` on the stage runner (``pipeline``), the
        backend router choosing the engine per batch."""
        from .backends.router import BackendRouter

        opt = self.opt
        fresh_listings([*inputs, opt.output])  # objects as they are now, not as this process last listed them
        list(plan_roots(inputs, self.ref.target, opt.output))  # usage errors before any work
        census = ShapeCensus()  # filled by the counting walk; tells the CPU which sizes to compile
        router = BackendRouter(self.ref, opt.backend_choice, main=self._backend, artifacts=export_artifacts(),
                               on_note=lambda text: self.on_message("note", text), census=census)
        stages = ImageStages(self, router, self.settings_key(), census)
        with router.open():
            stages.summary.backend = router.describe()
            self.on_message("backend", stages.summary.backend)
            if not self.look.raw:
                self.on_message("note", look_note(self.look, self.ref, asked_look(opt)))
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

    def write_failures(self, out_roots: list[Path], failures: dict[Path, list[tuple[Path, str]]],
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


def export_artifacts():
    """The artifact index with ``export`` behind it, so a backend that needs an ONNX or an engine
    can have it made on first use (the backends never import ``export`` themselves)."""
    from .backends.artifacts import ArtifactIndex

    try:
        from . import export
    except ImportError as e:
        return ArtifactIndex(why_not=f"the export module is not available ({e})")
    return ArtifactIndex(exporter=export)


def close_manifests(conv: Converter) -> None:
    """Closes every manifest of a run; one that fails (a store out of reach) is reported and the
    others still close."""
    for m in list(conv.manifests.values()):
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
