"""The TensorRT side of engine building, kept thin: parse the ONNX into a strongly typed network,
add the optimization profiles, build with a persistent timing cache.

Strongly typed (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``): TensorRT keeps the ONNX's types,
so the FP16 ONNX runs in FP16 with its InstanceNorms in FP32. ``BuilderFlag.FP16`` is never set
(TensorRT 11 removed it; on 10.x it would let TensorRT pick FP16 for the norms). One code path for 10.x
and 11.x. Written against the documented Python API; it could not be run where it was written (no GPU).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..atomic import atomic_write_bytes
from ..backends.tensorrt_runtime import INSTALL_HINT, require_tensorrt, tensorrt_available, trt_logger  # noqa: F401
from ..errors import EngineBuildError
from .engine_cache import Platform
from .onnx_export import INPUT_NAME
from .shapes import Profile

WORKSPACE_BYTES = 4 << 30
_logger = trt_logger  # one logger per process, shared with the backend that runs the engines


class TensorRTLoader:
    """``engine_cache.EngineLoader`` with real TensorRT."""

    def __init__(self, device_index: int = 0):
        self.trt = require_tensorrt()
        self.device_index = device_index

    def platform(self) -> Platform:
        import torch

        major, minor = torch.cuda.get_device_capability(self.device_index)
        return Platform(self.trt.__version__, torch.cuda.get_device_name(self.device_index), f"{major}.{minor}")

    def build(self, onnx_path: Path, profiles: Sequence[Profile], timing_cache: Path) -> bytes:
        trt = self.trt
        logger = _logger(trt)
        builder = trt.Builder(logger)
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise EngineBuildError(f"{onnx_path}: TensorRT cannot parse it ({errors[:300]})")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        for p in profiles:
            profile = builder.create_optimization_profile()
            profile.set_shape(INPUT_NAME, p.min.nchw, p.opt.nchw, p.max.nchw)
            config.add_optimization_profile(profile)
        # The timing cache makes rebuilds (other profile, new TensorRT patch) take seconds, not minutes.
        cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
        config.set_timing_cache(cache, True)  # ignore_mismatch: a stale cache is ignored, not fatal
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise EngineBuildError(f"{onnx_path}: TensorRT could not build an engine for profile(s) "
                                   f"{', '.join(map(str, profiles))}; see the TensorRT messages above")
        atomic_write_bytes(timing_cache, bytes(memoryview(config.get_timing_cache().serialize())))
        return bytes(memoryview(serialized))

    def check_loads(self, data: bytes) -> None:
        runtime = self.trt.Runtime(_logger(self.trt))
        if runtime.deserialize_cuda_engine(data) is None:
            raise EngineBuildError("TensorRT could not deserialize it (built by another TensorRT version or for another GPU)")

    def backend(self, data: bytes):
        from ..backends.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(lambda: data, device=f"cuda:{self.device_index}")
