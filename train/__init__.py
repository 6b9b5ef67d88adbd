"""CycleGAN training, faithful to the original implementation (installed as ``cyclegan_convert.train``).

    from cyclegan_convert.train import CycleGAN, TrainConfig, RunOptions, train

``CycleGAN(config).train_step(real_A, real_B)`` is one iteration of the original; ``train`` is the
whole loop behind ``ccv train`` (see docs/train.md). Importing this package does not import torch
until one of these names is used.
"""
from __future__ import annotations

from typing import Any

__all__ = ["CycleGAN", "TrainConfig", "RunOptions", "train"]


def __getattr__(name: str) -> Any:
    if name == "CycleGAN":
        from .model import CycleGAN
        return CycleGAN
    if name in ("TrainConfig", "RunOptions"):
        from . import config
        return getattr(config, name)
    if name == "train":
        from .loop import train
        return train
    raise AttributeError(name)
