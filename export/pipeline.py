"""What ``ccv export`` does, step by step, as a library: FP32 ONNX, FP16 ONNX, TensorRT engine.

Every step runs only when its file is missing or stale, writes to a temporary name, verifies, and
renames: a file under its final name has passed its checks.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

from ..atomic import atomic_path, ensure_writable_folder
from ..backends.base import Backend
from ..errors import BackendUnavailableError, EngineBuildError, NotAGeneratorError, UsageError
from ..networks import ResnetGenerator
from ..resolve import ModelRef
from ..store import ModelEntry
from ..weights import load_generator
from .artifacts import ONNX_NAMES, make_readable, Source, exports_dir_for, is_current, source_of
from .engine_cache import EngineLoader, ensure_engine_file
from .onnx_export import INPUT_CONVENTION, OPSET, export_onnx
from .shapes import DEFAULT_PROFILE, Profile, Shape
from .tensorrt_build import tensorrt_available
from .verify import DEFAULT_SHAPES, MIN_PSNR_DB, Verification, compare, sample_images, verify_onnx

Message = Callable[[str], None]


class VerificationFailed(EngineBuildError):
    """An exported file failed its numerical checks; it was not kept. ``verification`` has the rows."""

    def __init__(self, verification: Verification):
        super().__init__(verification.failure() + "; the file was not kept")
        self.verification = verification


@dataclass(frozen=True)
class ExportOptions:
    fp16: bool = True  # FP16 ONNX too (the FP32 one is always made: it is the reference format)
    out: Optional[Path] = None  # instead of the model's folder in the store
    engine: Optional[bool] = None  # None: build if TensorRT and CUDA are there; True: required; False: skip
    profiles: tuple[Profile, ...] = (DEFAULT_PROFILE,)
    force: bool = False  # re-export even if the cached files are current
    shapes: tuple[Shape, ...] = DEFAULT_SHAPES  # verification shapes
    fp32_max_abs: Optional[float] = None  # None: 1e-4
    images: tuple[Path, ...] = ()  # verification images; default: ccv's bundled sample photos


@dataclass
class ExportReport:
    exports_dir: Path
    files: dict[str, Path] = field(default_factory=dict)  # "fp32", "fp16", "engine"
    verifications: list[Verification] = field(default_factory=list)  # of files made in this run
    reused: list[Path] = field(default_factory=list)  # current files from an earlier run
    engine_note: str = ""  # why there is no engine, when there is none
    seconds: dict[str, float] = field(default_factory=dict)


def onnx_metadata(source: Source, generator: ResnetGenerator, fp16: bool) -> dict[str, str]:
    import onnx
    import torch

    try:
        ccv_version = importlib_metadata.version("cyclegan-convert")
    except importlib_metadata.PackageNotFoundError:
        ccv_version = "unknown"
    entry = source.entry
    return {
        "ccv.name": source.name,
        "ccv.source_domain": entry.source if entry else "",
        "ccv.target_domain": entry.target if entry else "",
        "ccv.input": INPUT_CONVENTION,
        "ccv.output": "RGB, NCHW float32, values in [-1, 1], same size as the input"
                      + (" (the lattice notch after the tanh may step slightly outside: clamp)" if generator.notch
                         else ""),
        "ccv.precision": "fp16 (InstanceNorm in fp32; float32 input and output)" if fp16 else "fp32",
        "ccv.arch": f"resnet_{generator.n_blocks}blocks ngf {generator.ngf}"
                    + (f", lattice notch sigma {generator.notch[1]:g}" if generator.notch else ""),
        "ccv.weights_sha256": source.sha256,
        "ccv.versions": f"ccv {ccv_version}, torch {torch.__version__}, onnx {onnx.__version__}, opset {OPSET}",
    }


def export_verified(source: Source, generator: ResnetGenerator, fp16: bool, target: Path, *,
                    images=None, shapes: Sequence[Shape] = DEFAULT_SHAPES, max_abs: Optional[float] = None
                    ) -> Verification:
    """Exports to a temporary name, verifies, renames to ``target``; raises VerificationFailed otherwise."""
    with atomic_path(target, suffix=".onnx") as tmp:
        export_onnx(generator, tmp, fp16=fp16, metadata=onnx_metadata(source, generator, fp16))
        v = verify_onnx(tmp, generator, fp16=fp16, images=images, shapes=shapes, max_abs=max_abs)
        v.path = target
        if not v.ok:
            raise VerificationFailed(v)
        make_readable(tmp)
    return v


def _ensure_onnx(source: Source, generator: Optional[ResnetGenerator], fp16: bool, exports_dir: Path, *,
                 force: bool = False, images=None, shapes=DEFAULT_SHAPES, max_abs=None,
                 on_message: Message = lambda s: None) -> tuple[Path, Optional[Verification]]:
    target = exports_dir / ONNX_NAMES[fp16]
    if not force and is_current(target, source):
        return target, None
    on_message(f"exporting {'FP16' if fp16 else 'FP32'} ONNX of {source.name} to {target}")
    generator = generator if generator is not None else load_rgb_generator(source)
    return target, export_verified(source, generator, fp16, target, images=images, shapes=shapes, max_abs=max_abs)


def ensure_onnx(ref_or_entry: Union[ModelRef, ModelEntry], fp16: bool, *, out: Optional[Path] = None,
                force: bool = False, on_message: Message = lambda s: None) -> Path:
    """The verified ONNX of a generator, exported on first use and cached (store folder or cache folder).

    An ONNX ``ModelRef`` is returned as it is. Raises VerificationFailed if the export fails its checks.
    """
    if isinstance(ref_or_entry, ModelRef) and ref_or_entry.kind == "onnx":
        return ref_or_entry.path
    source = source_of(ref_or_entry)
    path, _ = _ensure_onnx(source, None, fp16, exports_dir_for(source, out), force=force, on_message=on_message)
    return path


def validate_engine(backend: Backend, generator: ResnetGenerator, images, profiles: Sequence[Profile]) -> None:
    """A new engine against PyTorch FP32 at each profile's min and opt shapes: finite, PSNR >= 40 dB."""
    shapes = list(dict.fromkeys(s for p in profiles for s in (p.min, p.opt)))
    with backend:
        reference = generator.to(backend.device)
        rows = compare(lambda x: backend._run(x.to(backend.device, backend.input_dtype)), reference, images, shapes,
                       max_abs=None, min_psnr=MIN_PSNR_DB)
    bad = [r for r in rows if not r.ok]
    if bad:
        details = "; ".join(f"{r.shape}: PSNR {r.psnr_db:.1f} dB{'' if r.finite else ', NaN/Inf in the output'}"
                            for r in bad)
        raise EngineBuildError(f"the new TensorRT engine does not match PyTorch FP32 (needs finite output and PSNR >= "
                               f"{MIN_PSNR_DB:g} dB): {details}; it was not cached")


def ensure_engine(ref_or_entry: Union[ModelRef, ModelEntry], profiles: Optional[Sequence[Profile]] = None, *,
                  out: Optional[Path] = None, force: bool = False, on_message: Message = lambda s: None,
                  loader: Optional[EngineLoader] = None, images=None) -> Path:
    """The TensorRT engine of a generator (FP16 ONNX inside), built, validated and cached on first use.

    Raises BackendUnavailableError (one line: what to install) without TensorRT or a CUDA GPU.
    """
    if loader is None:
        ok, reason = tensorrt_available()
        if not ok:
            raise BackendUnavailableError(reason)
        from .tensorrt_build import TensorRTLoader

        loader = TensorRTLoader()
    source = source_of(ref_or_entry)
    exports_dir = exports_dir_for(source, out)
    generator = load_rgb_generator(source)
    onnx_path, _ = _ensure_onnx(source, generator, True, exports_dir, on_message=on_message)
    profiles = tuple(profiles or (DEFAULT_PROFILE,))
    imgs = images or sample_images()
    return ensure_engine_file(onnx_path, "fp16", profiles, exports_dir, loader,
                              lambda backend: validate_engine(backend, generator, imgs, profiles),
                              on_message=on_message, force=force)


def load_rgb_generator(source: Source) -> ResnetGenerator:
    """The generator to export: ccv's ONNX files take and give RGB (3 channels), as ``ccv import`` requires."""
    generator = load_generator(source.weights)
    first, last = generator.model[1], generator.model[-2]
    if first.in_channels != 3 or last.out_channels != 3:
        raise NotAGeneratorError(f"{source.weights}: generator maps {first.in_channels} to {last.out_channels} "
                                 "channels; ccv exports RGB generators (3 to 3)")
    return generator


def _check_writable_folder(folder: Path, what: str) -> None:
    """Before minutes of exporting: the folder exists or can be made (not a file, not read-only)."""
    try:
        ensure_writable_folder(folder)
    except OSError as e:
        raise UsageError(f"{what} {folder}: cannot be a folder ({e.strerror or e})") from None


def run_export(ref: ModelRef, opts: ExportOptions = ExportOptions(), on_message: Message = lambda s: None,
               loader: Optional[EngineLoader] = None) -> ExportReport:
    """FP32 ONNX, FP16 ONNX (``opts.fp16``), then the engine if TensorRT and CUDA are there (or required)."""
    if opts.engine and not opts.fp16:
        raise UsageError("the TensorRT engine is built from the FP16 ONNX: drop --fp32 to build it")
    trt_ok, trt_reason = (True, "") if loader is not None else tensorrt_available()
    if opts.engine and not trt_ok:  # fail before exporting anything: the user asked for an engine
        raise BackendUnavailableError(f"--engine: {trt_reason}")
    source = source_of(ref)
    exports_dir = exports_dir_for(source, opts.out)
    _check_writable_folder(exports_dir, "--out" if opts.out is not None else "the export folder")
    report = ExportReport(exports_dir)
    generator = load_rgb_generator(source)
    images = sample_images(opts.images) if opts.images else sample_images()
    for fp16 in ([False, True] if opts.fp16 else [False]):
        start = time.perf_counter()
        path, verification = _ensure_onnx(source, generator, fp16, exports_dir, force=opts.force, images=images,
                                          shapes=opts.shapes, max_abs=opts.fp32_max_abs, on_message=on_message)
        key = "fp16" if fp16 else "fp32"
        report.files[key] = path
        report.seconds[key] = time.perf_counter() - start
        if verification is None:
            report.reused.append(path)
        else:
            report.verifications.append(verification)
    if opts.engine is False:
        report.engine_note = "TensorRT engine: skipped (--no-engine)"
    elif not opts.fp16:
        report.engine_note = "TensorRT engine: skipped (it is built from the FP16 ONNX; run without --fp32)"
    elif not trt_ok:
        report.engine_note = f"TensorRT engine: skipped, {trt_reason}"
    else:
        start = time.perf_counter()
        report.files["engine"] = ensure_engine(ref, opts.profiles, out=opts.out, force=opts.force,
                                               on_message=on_message, loader=loader, images=images)
        report.seconds["engine"] = time.perf_counter() - start
    return report
