"""Export: verified ONNX (FP32, FP16) and TensorRT engines, made on demand and cached.

Python API (the CLI ``ccv export`` and the backend selector use it)::

    ensure_onnx(ref_or_entry, fp16) -> Path        # exported and verified once, then cached
    ensure_engine(ref_or_entry, profiles=None) -> Path   # needs TensorRT and a CUDA GPU
    tensorrt_available() -> (bool, reason)
    run_export(ref, ExportOptions(...), on_message) -> ExportReport   # what `ccv export` does

onnxruntime and tensorrt are imported only inside these modules and the two backends.
"""
from .pipeline import ExportOptions, ExportReport, ensure_engine, ensure_onnx, run_export
from .shapes import DEFAULT_PROFILE, Profile, Shape, make_profile, scan_sizes
from .tensorrt_build import tensorrt_available
from .verify import CheckRow, Verification

__all__ = [
    "CheckRow", "DEFAULT_PROFILE", "ExportOptions", "ExportReport", "Profile", "Shape", "Verification",
    "ensure_engine", "ensure_onnx", "make_profile", "run_export", "scan_sizes", "tensorrt_available",
]
