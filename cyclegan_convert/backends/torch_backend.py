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

    @torch.inference_mode()
    def _run(self, x: torch.Tensor) -> torch.Tensor:
        assert self.model is not None
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            return self.model(x).float()
