"""Choosing a backend for a model: ``make_backend(ref, backend="auto", device="auto")``.

What ``auto`` picks, from measurements (benchmarks/convert_backends.py, benchmarks/RESULTS.md):
- a CUDA GPU: TensorRT (FP16 engine, built and validated on first use) when it is installed, else
  PyTorch FP16 with channels_last;
- the CPU: PyTorch, channels_last. bf16 (fp32 stem, InstanceNorm statistics accumulated in fp32;
  44.2 dB or better against fp32 on real photos) where the CPU has native bf16 (AVX512-BF16 or AMX):
  2.57-2.79x the original's fp32 loop end to end on 200 photos (benchmarks/convert_speed.py); on CPUs
  without it bf16 is emulated and was 5-7x slower than fp32 (convert_backends.py), so fp32 it is.
  (ONNX Runtime fp32 used to be picked there when an ONNX was cached, at 1.07-1.45x PyTorch's NCHW
  fp32; PyTorch channels_last measured 1.54x against its 1.51x with AVX-512 and 1.12x with PyTorch
  limited to AVX2, in benchmarks/cpu_compile.py: no reason left to prefer it.) With native bf16 and a ``ShapeCensus`` of the job (``ccv
  convert``), ``torch.compile`` for the image sizes common enough to pay for their compile
  (``compile_plan``); ``compile=True`` compiles every size, ``False`` none.
- TensorRT refusing a size (outside its profile) or failing to build: PyTorch on the same GPU, with a note.
An exported ``.onnx`` or ``.engine`` given as ``--model`` runs on its own engine. Exports made on
first use come from the ``ArtifactIndex`` the caller hands in (this package never imports ``export``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

import torch

from ..errors import BackendUnavailableError, UsageError, first_line
from ..census import ShapeCensus
from ..resolve import ModelRef
from .artifacts import ArtifactIndex
from .base import Backend
from .compile_plan import CompilePlan
from .device import DeviceSpec
from .tensorrt_runtime import tensorrt_available
from .torch_backend import TorchBackend

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


@dataclass(frozen=True)
class BackendChoice:
    """--backend, --device, --precision and --compile, checked once (before any work, so --dry-run
    catches typos too); what depends on the model is checked in ``make_backend``."""

    backend: str = "auto"
    device: DeviceSpec = DeviceSpec()
    precision: str = "auto"
    compile: Optional[bool] = None  # None: where it pays (see compile_plan)

    @classmethod
    def parse(cls, backend: str = "auto", device: Union[str, DeviceSpec] = "auto", precision: str = "auto",
              compile: Optional[bool] = None) -> "BackendChoice":
        if backend not in BACKENDS:
            raise UsageError(f"unknown --backend {backend!r}: use {', '.join(BACKENDS)}")
        if precision not in PRECISIONS:
            raise UsageError(f"unknown --precision {precision!r}: use {', '.join(PRECISIONS)}")
        if compile and backend not in ("auto", "torch"):
            raise UsageError(f"--compile runs a PyTorch generator; it does not go with --backend {backend}")
        return cls(backend, DeviceSpec.parse(device), precision, compile)


def cpu_has_native_bf16() -> bool:
    """True where oneDNN runs bf16 natively (AVX512-BF16, AMX); elsewhere bf16 is emulated and slow."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_name() -> str:
    """The CPU's model name with its family and model numbers, for cards and benchmark tables
    (Linux: /proc/cpuinfo). Virtual machines often report a bare "AMD EPYC": the numbers tell the
    generations apart (family 25 is Zen 3/4, 26 is Zen 5), and they differ twofold in speed."""
    try:
        return cpu_name_from(Path("/proc/cpuinfo").read_text())
    except (OSError, ValueError):
        pass
    import platform

    return platform.processor() or platform.machine()


def cpu_name_from(cpuinfo: str) -> str:
    """``cpu_name`` from the text of /proc/cpuinfo (its first processor); ValueError without a model name."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            break  # the first processor's block ends
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    if "model name" not in fields:
        raise ValueError("no model name")
    name = fields["model name"]
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def auto_precision(device: torch.device) -> str:
    if device.type == "cuda":
        return "fp16"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def _torch(ref: ModelRef, dev: torch.device, precision: str, compile: Optional[bool] = False,
           on_message: Callable[[str], None] = lambda s: None, census: Optional[ShapeCensus] = None
           ) -> TorchBackend:
    from ..weights import load_generator

    prec = auto_precision(dev) if precision == "auto" else precision
    if prec == "fp16" and dev.type != "cuda":
        raise UsageError("--precision fp16 needs a CUDA GPU; on the CPU use fp32 or bf16")
    # channels_last on every device (TorchBackend's default). CUDA: faster convolutions. CPU: with
    # InstanceNorm through group_norm's channels_last kernel (networks.InstanceNorm), 256 px bf16 1.5x,
    # fp32 1.1-1.5x (AVX-512), 1.12x (PyTorch limited to AVX2) the NCHW path (benchmarks/cpu_compile.py,
    # RESULTS.md); before that the copies instance_norm made of channels_last inputs cost 0.89x
    return TorchBackend(lambda: load_generator(ref.path), device=str(dev), precision=prec,
                        compile=_compile_choice(compile, dev, prec, census, on_message), on_note=on_message)


def _compile_choice(compile: Optional[bool], dev: torch.device, precision: str, census: Optional[ShapeCensus],
                    on_message: Callable[[str], None]) -> "bool | CompilePlan":
    """--compile / --no-compile as given; unsaid: a plan where compiling measured worth it (native
    bf16 on the CPU) and the job's sizes are known, else eager."""
    if compile is not None:
        return compile
    if census is None or dev.type != "cpu" or precision != "bf16" or not cpu_has_native_bf16():
        return False
    return CompilePlan(census, precision, on_note=on_message)


def _onnxruntime(path, device: str) -> Backend:
    from .onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend(path, device=device)


def _tensorrt(source, device: str) -> Backend:
    from .tensorrt_backend import TensorRTBackend

    return TensorRTBackend(source, device=device if device != "auto" else "cuda")


def make_backend(ref: ModelRef, backend: str = "auto", device: Union[str, DeviceSpec] = "auto", *,
                 precision: str = "auto", compile: Optional[bool] = None,
                 on_message: Callable[[str], None] = lambda s: None,
                 artifacts: Optional[ArtifactIndex] = None, census: Optional[ShapeCensus] = None) -> Backend:
    """An unopened backend for ``ref``. Explicit choices that cannot run here are errors, never a
    silent fallback; 'auto' picks the fastest that is available for the device. ``compile`` asks
    for PyTorch with ``torch.compile`` (None: where the job's ``census`` says it pays).
    ``on_message`` hears about first-use exports and engine builds (minutes), which happen in
    ``open()``; ``artifacts`` makes them (without one, a model that needs an export says so)."""
    choice = BackendChoice.parse(backend, device, precision, compile)
    spec = choice.device
    device = str(spec)
    artifacts = artifacts or ArtifactIndex()
    dev = spec.resolve()  # an explicit cuda without a GPU fails here
    if compile and (ref.kind != "pytorch" or backend not in ("auto", "torch")):
        what = f"--backend {backend}" if backend not in ("auto", "torch") else f"{ref.path.name} ({ref.kind})"
        raise UsageError(f"--compile runs a PyTorch generator; it does not go with {what}")

    if ref.kind == "onnx":
        if backend not in ("auto", "onnxruntime"):
            raise UsageError(f"{ref.path.name} is an ONNX file: use --backend onnxruntime (or auto)")
        return _onnxruntime(ref.path, device)
    if ref.kind == "tensorrt":
        if backend not in ("auto", "tensorrt"):
            raise UsageError(f"{ref.path.name} is a TensorRT engine: use --backend tensorrt (or auto)")
        return _tensorrt(ref.path, device)

    # a PyTorch generator
    if compile or backend == "torch":
        return _torch(ref, dev, precision, compile=compile, on_message=on_message, census=census)
    if backend == "onnxruntime":
        fp16 = dev.type == "cuda" and precision in ("auto", "fp16")
        return _onnxruntime(artifacts.onnx(ref, fp16, on_message), device)
    if backend == "tensorrt" or (backend == "auto" and dev.type == "cuda"):
        ok, reason = tensorrt_available()
        if ok:
            return _tensorrt(artifacts.engine_bytes(ref, on_message), str(dev))
        if backend == "tensorrt":
            raise BackendUnavailableError(reason)
    return _torch(ref, dev, precision, compile=compile, on_message=on_message, census=census)


def open_with_fallback(backend: Backend, ref: ModelRef, requested: str, device: Union[str, DeviceSpec] = "auto", *,
                       precision: str = "auto", on_note: Callable[[str], None] = lambda s: None) -> Backend:
    """Opens ``backend``. When 'auto' chose TensorRT and its engine cannot be built, validated or
    loaded here, says why in one note and opens PyTorch on the same device instead (an explicit
    ``--backend tensorrt`` stays an error)."""
    try:
        return backend.open()
    except Exception as e:  # noqa: BLE001  (TensorRT fails in many types; PyTorch is the reference anyway)
        if requested != "auto" or backend.name != "tensorrt" or ref.kind != "pytorch":
            raise
        fallback = _torch(ref, DeviceSpec.parse(device).resolve(), precision)
        on_note(f"TensorRT cannot run this model here ({first_line(e)}); using {fallback.describe()} instead")
        return fallback.open()


