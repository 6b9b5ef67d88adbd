"""TensorRT backend: a serialized engine on one CUDA GPU, PyTorch CUDA tensors as its buffers.

The engine comes from a loader (a path, bytes, or a callable returning bytes), so nothing heavy
happens before ``open()``. Inputs are placed into one of the engine's optimization profiles: a batch
larger than the profile allows runs in chunks; ``accepts`` tells the converter which image sizes fit
(it runs the others on PyTorch), and a size outside every profile that still reaches ``_run`` is a
clear error that says how to rebuild, never a crash inside TensorRT.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, Union

import torch

from ..errors import BackendError, BackendUnavailableError, NotAGeneratorError, ShapeRefused, UsageError
from .base import Backend, resolve_device

EngineSource = Union[str, Path, bytes, Callable[[], bytes]]


@dataclass(frozen=True)
class ProfileRange:
    """Input shapes one optimization profile accepts, NCHW (min and max per dimension)."""

    min: tuple[int, int, int, int]
    max: tuple[int, int, int, int]

    def fits_image(self, h: int, w: int) -> bool:
        return self.min[2] <= h <= self.max[2] and self.min[3] <= w <= self.max[3]


def plan_profile(profiles: Sequence[ProfileRange], batch: int, h: int, w: int) -> tuple[int, int]:
    """(profile index, chunk size) for a (batch, 3, h, w) input.

    Prefers a profile that takes the whole batch, else the one with the largest batch for this image
    size (the input then runs in chunks). Raises ``ShapeRefused`` when no profile takes this size.
    """
    fitting = [(i, p) for i, p in enumerate(profiles) if p.fits_image(h, w)]
    if not fitting:
        have = ", ".join(f"{p.min[2]}x{p.min[3]} to {p.max[2]}x{p.max[3]}" for p in profiles)
        raise ShapeRefused(f"image size {h}x{w} (padded) is outside the TensorRT engine's profiles ({have}); rebuild "
                         f"with `ccv export --engine --max-shape 1x{max(h, 4)}x{max(w, 4)}` (or --for YOUR_FOLDER), "
                         "or use --backend onnxruntime or torch")
    for i, p in fitting:
        if p.min[0] <= batch <= p.max[0]:
            return i, batch
    i, p = max(fitting, key=lambda ip: ip[1].max[0])
    if batch < p.min[0]:
        raise ShapeRefused(f"batch {batch} is below the engine profile's minimum batch {p.min[0]}; use --batch-size {p.min[0]}")
    return i, p.max[0]


def _load_bytes(source: EngineSource) -> bytes:
    if isinstance(source, bytes):
        return source
    if callable(source):
        return source()
    path = Path(source)
    if not path.is_file():
        raise UsageError(f"{path}: no such TensorRT engine")
    return path.read_bytes()


class TensorRTBackend(Backend):
    """Runs a TensorRT engine built by ``ccv export --engine`` (FP32 input and output, FP16 inside)."""

    name = "tensorrt"

    def __init__(self, engine: EngineSource, device: str = "cuda"):
        super().__init__()
        self._source = engine
        self.requested = device
        self._runtime = self._engine = self._context = self._stream = None
        self._dtype = torch.float32
        self._profiles: list[ProfileRange] = []

    @property
    def input_dtype(self) -> torch.dtype:
        return self._dtype

    def describe(self) -> str:
        return f"TensorRT on {self.device}"

    def accepts(self, h: int, w: int) -> bool:
        return any(p.fits_image(h, w) for p in self._profiles)

    def _open(self) -> None:
        from .tensorrt_runtime import require_tensorrt, trt_logger

        trt = require_tensorrt()
        self.device = resolve_device(self.requested if self.requested != "auto" else "cuda")
        if self.device.type != "cuda":
            raise BackendUnavailableError("TensorRT runs on a CUDA GPU only; use --backend onnxruntime or torch on the CPU")
        torch.cuda.set_device(self.device)
        runtime = trt.Runtime(trt_logger(trt))
        engine = runtime.deserialize_cuda_engine(_load_bytes(self._source))
        if engine is None:
            raise BackendUnavailableError("the TensorRT engine does not load here (other TensorRT version or GPU, or "
                                          "a damaged file); `ccv export --engine` rebuilds it")
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise NotAGeneratorError(f"not a ccv generator engine: inputs {inputs}, outputs {outputs}")
        self._input, self._output = inputs[0], outputs[0]
        to_torch = {trt.float32: torch.float32, trt.float16: torch.float16}
        self._dtype = to_torch[engine.get_tensor_dtype(self._input)]
        self._out_dtype = to_torch[engine.get_tensor_dtype(self._output)]
        self._profiles = []
        for i in range(engine.num_optimization_profiles):
            lo, _opt, hi = engine.get_tensor_profile_shape(self._input, i)
            self._profiles.append(ProfileRange(tuple(lo), tuple(hi)))
        self._runtime, self._engine = runtime, engine  # the runtime must outlive its engine
        self._context = engine.create_execution_context()
        self._stream = torch.cuda.Stream(self.device)  # execute_async_v3 wants a non-default stream
        self._active_profile = 0

    def _close(self) -> None:
        if self._stream is not None:
            self._stream.synchronize()
        self._context = self._engine = self._runtime = self._stream = None  # context before engine
        torch.cuda.empty_cache()

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        ctx, stream = self._context, self._stream
        assert ctx is not None and stream is not None
        batch, _, h, w = x.shape
        index, chunk = plan_profile(self._profiles, batch, h, w)
        stream.wait_stream(torch.cuda.current_stream(self.device))  # x was made on the current stream
        outputs = []
        with torch.cuda.stream(stream):
            if index != self._active_profile:
                ctx.set_optimization_profile_async(index, stream.cuda_stream)
                self._active_profile = index
            for start in range(0, batch, chunk):
                xi = x[start:start + chunk].contiguous()
                if not ctx.set_input_shape(self._input, tuple(xi.shape)):
                    raise ShapeRefused(f"TensorRT refused input shape {tuple(xi.shape)} for profile {index}")
                y = torch.empty(tuple(ctx.get_tensor_shape(self._output)), dtype=self._out_dtype, device=self.device)
                ctx.set_tensor_address(self._input, xi.data_ptr())  # torch allocations are 256-byte aligned
                ctx.set_tensor_address(self._output, y.data_ptr())
                if not ctx.execute_async_v3(stream.cuda_stream):
                    raise BackendError(f"TensorRT failed to run a {tuple(xi.shape)} batch")
                outputs.append(y)
        stream.synchronize()  # inputs may be freed by the caller after this returns
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)
