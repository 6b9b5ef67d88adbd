"""One interface in front of every inference engine (PyTorch, ONNX Runtime, TensorRT).

A backend runs a generator on batches of 8-bit RGB images and returns 8-bit RGB images of the same
size. The base class owns everything around the engine, so every backend treats images alike:
normalising to [-1, 1], reflect-padding to a multiple of 4 and cropping back, rounding to 8 bits.
Subclasses write only ``_open``, ``_run`` and ``_close``.
"""
from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from .device import DeviceSpec

MULTIPLE = 4  # two stride-2 downsamplings: sides must be multiples of 4
MIN_SIDE = 8  # the generator's 1/4-scale blocks reflect-pad by 1 and need 2 pixels a side


def padded_size(h: int, w: int) -> tuple[int, int]:
    """(H, W) rounded up to the model's multiple of 4, and to at least MIN_SIDE."""
    return max(MIN_SIDE, -(-h // MULTIPLE) * MULTIPLE), max(MIN_SIDE, -(-w // MULTIPLE) * MULTIPLE)


def pad_rgb(rgb: np.ndarray, h: int, w: int) -> np.ndarray:
    """Reflect-pads uint8 (..., H, W, 3) at the bottom and right to (h, w), as ``pad_to_multiple``
    does, so images of different sizes with the same padded size share a batch."""
    ph, pw = h - rgb.shape[-3], w - rgb.shape[-2]
    if not ph and not pw:
        return rgb
    mode = "reflect" if ph < rgb.shape[-3] and pw < rgb.shape[-2] else "edge"
    return np.pad(rgb, [(0, 0)] * (rgb.ndim - 3) + [(0, ph), (0, pw), (0, 0)], mode=mode)


def pad_to_multiple(x: torch.Tensor, multiple: int = MULTIPLE) -> tuple[torch.Tensor, int, int]:
    """Reflect-pads an NCHW tensor at the bottom and right to a multiple; returns it and (H, W)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        # reflect needs the pad to be smaller than the side; tiny images fall back to replicate
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w


def to_model_input(images: torch.Tensor, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 NHWC RGB -> float NCHW in [-1, 1] on ``device`` (the uint8 crosses the bus: 4x less)."""
    x = images.to(device, non_blocking=True).permute(0, 3, 1, 2)
    # scaled in fp32, then cast: scaling in fp16/bf16 would round twice
    return x.float().div_(127.5).sub_(1.0).to(dtype)


def to_uint8_images(y: torch.Tensor) -> torch.Tensor:
    """float NCHW in [-1, 1] -> uint8 NHWC, rounded to nearest."""
    return y.float().add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


class Backend(abc.ABC):
    """Runs a generator. Use as a context manager, or call ``open()`` and ``close()``.

    ``infer`` takes a uint8 tensor (N, H, W, 3) of RGB images on the CPU, any H and W, and returns
    a new uint8 tensor of the same shape on the CPU, owned by the caller.
    """

    name: ClassVar[str] = "backend"
    can_tile: ClassVar[bool] = False  # has ``infer_tiled`` (whole-image statistics for large images)

    def __init__(self) -> None:
        self._is_open = False
        self.device = torch.device("cpu")

    # -- lifecycle ---------------------------------------------------------------------------------
    def open(self) -> "Backend":
        if not self._is_open:
            self._open()
            self._is_open = True
        return self

    def close(self) -> None:
        if self._is_open:
            self._close()
            self._is_open = False

    def __enter__(self) -> "Backend":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inference ---------------------------------------------------------------------------------
    def infer(self, images: torch.Tensor) -> torch.Tensor:
        if not self._is_open:
            raise RuntimeError(f"{self.name} backend used before open()")
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise TypeError(f"expected uint8 images of shape (N, H, W, 3), got {images.dtype} {tuple(images.shape)}")
        x, h, w = pad_to_multiple(to_model_input(images, self.device, self.input_dtype))
        y = self._run(x)[..., :h, :w]
        return to_uint8_images(y).cpu()

    @property
    def input_dtype(self) -> torch.dtype:
        """The dtype ``_run`` wants its input in (fp16 for half-precision engines)."""
        return torch.float32

    def describe(self) -> str:
        """One line for the user: which engine, on which device, in which precision."""
        return f"{self.name} on {self.device}"

    def accepts(self, h: int, w: int) -> bool:
        """Whether an image padded to (h, w) can run here (after ``open``); engines with fixed
        shape ranges say no to the rest, and the caller runs those elsewhere."""
        return True

    # -- for subclasses ----------------------------------------------------------------------------
    def _open(self) -> None:
        """Loads the engine; heavy work happens here, not in ``__init__``."""

    def _close(self) -> None:
        """Frees the engine."""

    @abc.abstractmethod
    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """x: float NCHW in [-1, 1] on ``self.device``, sides multiples of 4 -> same-shape output."""

def resolve_device(device="auto") -> torch.device:
    """'auto' -> CUDA if present, else CPU. An explicit 'cuda' without a GPU is an error, never a
    silent CPU fallback (see ``DeviceSpec``)."""
    return DeviceSpec.parse(device).resolve()
