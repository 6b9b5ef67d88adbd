"""PyTorch backend: the reference engine, on CPU or CUDA."""
from __future__ import annotations

import contextlib
from typing import Callable, Union

import torch

from ..networks import ResnetGenerator
from .base import Backend, resolve_device

GeneratorLoader = Union[ResnetGenerator, Callable[[], ResnetGenerator]]


class TorchBackend(Backend):
    """Runs a ``ResnetGenerator`` eagerly.

    precision: 'fp32'; 'fp16' (CUDA: half weights, InstanceNorm in fp32); 'bf16' (autocast, CPU or
    CUDA; InstanceNorm stays in fp32). ``channels_last`` helps convolutions on both CPU and CUDA.
    """

    name = "torch"

    def __init__(self, generator: GeneratorLoader, device: str = "auto", precision: str = "fp32",
                 channels_last: bool = True):
        super().__init__()
        self._loader = generator
        self.device = resolve_device(device)
        if precision not in ("fp32", "fp16", "bf16"):
            raise ValueError(f"unknown precision {precision!r}")
        if precision == "fp16" and self.device.type != "cuda":
            raise ValueError("fp16 needs CUDA; use bf16 on the CPU")
        self.precision = precision
        self.channels_last = channels_last
        self.model: ResnetGenerator | None = None

    @property
    def input_dtype(self) -> torch.dtype:
        return torch.float16 if self.precision == "fp16" else torch.float32

    def describe(self) -> str:
        return f"PyTorch {self.precision} on {self.device}" + (" (channels_last)" if self.channels_last else "")

    def _open(self) -> None:
        model = self._loader if isinstance(self._loader, torch.nn.Module) else self._loader()
        model = model.to(self.device).eval().requires_grad_(False)
        if self.precision == "fp16":
            model = model.half()
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model

    def _close(self) -> None:
        self.model = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def infer_tiled(self, images: torch.Tensor, tile: int = 1024, overlap: int = 64,
                    stats_side: int = 768, margin: int = 64) -> torch.Tensor:
        """Like ``infer``, tile by tile with whole-image InstanceNorm statistics (see ``tiling``):
        for images too large to run whole. Same contract: uint8 NHWC in, uint8 NHWC out."""
        from ..tiling import TileSpec, generate_tiled
        from .base import pad_to_multiple, to_model_input, to_uint8_images

        if not self._is_open or self.model is None:
            raise RuntimeError("torch backend used before open()")
        tile = max(64, tile - tile % 4)
        spec = TileSpec(tile=tile, overlap=min(overlap, tile // 4 - (tile // 4) % 4), stats_side=stats_side, margin=margin)
        x, h, w = pad_to_multiple(to_model_input(images, self.device, self.input_dtype))
        with torch.inference_mode():
            y = generate_tiled(self.model, x, spec, self._run)
        return to_uint8_images(y[..., :h, :w]).cpu()

    @torch.inference_mode()
    def _run(self, x: torch.Tensor) -> torch.Tensor:
        assert self.model is not None
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            return self.model(x).float()
