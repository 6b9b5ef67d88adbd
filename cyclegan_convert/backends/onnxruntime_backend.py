"""ONNX Runtime backend: an exported generator (``ccv export``) on the CPU or, with onnxruntime-gpu, CUDA.

onnxruntime and onnxruntime-gpu are alternative packages (extras ``cpu`` and ``gpu``); installing
both breaks both. onnxruntime-gpu falls back to the CPU silently when CUDA cannot start, so the
providers of the session are checked: with ``device="cuda"`` a fallback is an error.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import torch

from ..errors import BackendError, BackendUnavailableError, NotAGeneratorError, UsageError, first_line
from .base import Backend
from .device import DeviceSpec

_ORT_DTYPES = {"tensor(float)": torch.float32, "tensor(float16)": torch.float16}
_INSTALL_HINT = "pip install 'cyclegan-convert[cpu]' (or [gpu] for onnxruntime-gpu, never both)"


def _import_ort():
    try:
        import onnxruntime as ort
    except ImportError:
        raise BackendUnavailableError(f"ONNX Runtime is not installed: {_INSTALL_HINT}") from None
    return ort


def session_options(threads: Optional[int] = None):
    ort = _import_ort()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only: ORT's warnings about unused initializers are noise
    if threads:
        opts.intra_op_num_threads = threads
    return opts


def cpu_session(path: Union[str, Path], threads: Optional[int] = None):
    """A CPU-only InferenceSession (verification uses it whatever the installed build)."""
    ort = _import_ort()
    return ort.InferenceSession(str(path), sess_options=session_options(threads), providers=["CPUExecutionProvider"])


class OnnxRuntimeBackend(Backend):
    """Runs an ONNX generator. device: 'auto' (CUDA when onnxruntime-gpu and a GPU are there, else CPU),
    'cpu', or 'cuda' (an error if ONNX Runtime cannot use CUDA)."""

    name = "onnxruntime"

    def __init__(self, onnx_path: Union[str, Path], device: str = "auto", threads: Optional[int] = None):
        super().__init__()
        self.onnx_path = Path(onnx_path)
        self.requested = str(DeviceSpec.parse(device))
        self.threads = threads
        self._session = None
        self._dtype = torch.float32

    @property
    def input_dtype(self) -> torch.dtype:
        return self._dtype

    def describe(self) -> str:
        return f"ONNX Runtime on {self.device} ({self.onnx_path.name})"

    def _providers(self, ort) -> list:
        available = ort.get_available_providers()
        want_cuda = self.requested.startswith("cuda") or (
            self.requested == "auto" and "CUDAExecutionProvider" in available and torch.cuda.is_available())
        if not want_cuda:
            return ["CPUExecutionProvider"]
        if "CUDAExecutionProvider" not in available:
            raise BackendUnavailableError(
                "--device cuda with --backend onnxruntime needs onnxruntime-gpu: pip uninstall onnxruntime && "
                "pip install 'cyclegan-convert[gpu]'")
        index = int(self.requested.split(":")[1]) if ":" in self.requested else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]

    def _open(self) -> None:
        ort = _import_ort()
        if not self.onnx_path.is_file():
            raise UsageError(f"{self.onnx_path}: no such ONNX file")
        providers = self._providers(ort)
        try:
            session = ort.InferenceSession(str(self.onnx_path), sess_options=session_options(self.threads),
                                           providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types for bad files
            raise UsageError(f"{self.onnx_path}: ONNX Runtime cannot load it ({first_line(e, 160)})") from None
        on_cuda = session.get_providers()[0] == "CUDAExecutionProvider"
        if self.requested.startswith("cuda") and not on_cuda:
            raise BackendUnavailableError(
                f"ONNX Runtime could not start CUDA for {self.onnx_path.name} (providers: "
                f"{', '.join(session.get_providers())}); check the CUDA and cuDNN libraries onnxruntime-gpu needs, "
                "or use --device cpu")
        self.device = torch.device(self.requested if self.requested.startswith("cuda") else "cuda") if on_cuda \
            else torch.device("cpu")
        inp, out = session.get_inputs()[0], session.get_outputs()[0]
        if inp.type not in _ORT_DTYPES:
            raise NotAGeneratorError(f"{self.onnx_path}: input type {inp.type} is not a float image tensor")
        self._dtype = _ORT_DTYPES[inp.type]
        self._out_dtype = _ORT_DTYPES.get(out.type, torch.float32)
        self._input_name, self._output_name = inp.name, out.name
        self._session = session

    def _close(self) -> None:
        self._session = None

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        try:
            return self._run_session(x)
        except Exception as e:  # ORT's own exception types (out of memory, a shape it refuses): one
            # BackendError, so callers fail that image instead of the whole run
            raise BackendError(f"ONNX Runtime: {first_line(e)}") from None

    def _run_session(self, x: torch.Tensor) -> torch.Tensor:
        assert self._session is not None
        x = x.contiguous()
        if self.device.type == "cpu":
            return torch.from_numpy(self._session.run([self._output_name], {self._input_name: x.numpy()})[0])
        # CUDA: bind the torch tensors directly, no host round trip
        y = torch.empty(x.shape, dtype=self._out_dtype, device=x.device)
        binding = self._session.io_binding()
        np_type = {torch.float32: "float32", torch.float16: "float16"}
        import numpy as np

        binding.bind_input(self._input_name, "cuda", x.device.index or 0, getattr(np, np_type[x.dtype]),
                           tuple(x.shape), x.data_ptr())
        binding.bind_output(self._output_name, "cuda", y.device.index or 0, getattr(np, np_type[y.dtype]),
                            tuple(y.shape), y.data_ptr())
        torch.cuda.current_stream(x.device).synchronize()  # ORT runs on its own stream
        self._session.run_with_iobinding(binding)
        return y
