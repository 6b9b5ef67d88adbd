"""Whether TensorRT can run here, and the one logger it wants: shared by the TensorRT backend and
engine building (``export``), so the backend needs nothing from ``export``."""
from __future__ import annotations

import functools

from ..errors import BackendUnavailableError, first_line

INSTALL_HINT = "pip install 'cyclegan-convert[tensorrt]' and a CUDA GPU with a CUDA build of PyTorch"


def tensorrt_available() -> tuple[bool, str]:
    """(True, 'TensorRT 10.x on <GPU>') or (False, one line saying what is missing and how to get it)."""
    try:
        import tensorrt as trt
    except ImportError:
        return False, f"TensorRT is not installed: {INSTALL_HINT}"
    except Exception as e:  # a broken install (missing libnvinfer) raises OSError and the like
        return False, f"TensorRT does not import ({first_line(e, 100)}): reinstall it, {INSTALL_HINT}"
    import torch

    if not torch.cuda.is_available():
        return False, f"TensorRT {trt.__version__} is installed but no CUDA GPU is visible to PyTorch: {INSTALL_HINT}"
    return True, f"TensorRT {trt.__version__} on {torch.cuda.get_device_name()}"


def require_tensorrt():
    ok, reason = tensorrt_available()
    if not ok:
        raise BackendUnavailableError(reason)
    import tensorrt as trt

    return trt


@functools.lru_cache(maxsize=None)
def trt_logger(trt):
    """One logger per process: TensorRT warns when builders and runtimes get different ones."""
    return trt.Logger(trt.Logger.WARNING)
