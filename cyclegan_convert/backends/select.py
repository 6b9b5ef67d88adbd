"""Choosing and opening a backend for a model: ``open_backend(ref, backend="auto", device="auto")``."""
from __future__ import annotations

from ..errors import UsageError
from ..resolve import ModelRef
from .base import Backend, resolve_device
from .torch_backend import TorchBackend

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")


def make_backend(ref: ModelRef, backend: str = "auto", device: str = "auto") -> Backend:
    """An unopened backend for ``ref``. 'auto' picks the fastest that is available for the device."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}: use {', '.join(BACKENDS)}")
    dev = resolve_device(device)
    if ref.kind == "pytorch" and backend in ("auto", "torch"):
        from ..weights import load_generator

        return TorchBackend(lambda: load_generator(ref.path), device=str(dev))
    raise UsageError(f"backend {backend!r} for a {ref.kind} model is not available yet")
