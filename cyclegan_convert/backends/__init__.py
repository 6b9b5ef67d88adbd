"""Inference backends behind one interface (see ``base.Backend``).

ONNX Runtime and TensorRT are imported only inside their own modules, so importing ccv never needs them.
"""
from .base import Backend, resolve_device
from .torch_backend import TorchBackend

__all__ = ["Backend", "TorchBackend", "resolve_device"]
