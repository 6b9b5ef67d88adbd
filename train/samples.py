"""Sample grids: real, translated and reconstructed images in both directions, as one PNG."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cyclegan_convert.atomic import atomic_path

ROWS = (("real_A", "fake_B", "rec_A"), ("real_B", "fake_A", "rec_B"))


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """3 x H x W in [-1, 1] -> H x W x 3 uint8."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


def grid(images: dict[str, torch.Tensor], index: int = 0) -> Image.Image:
    """Row 1: A, G_A(A), G_B(G_A(A)); row 2: B, G_B(B), G_A(G_B(B))."""
    rows = [np.concatenate([to_uint8(images[k][index]) for k in row], axis=1) for row in ROWS]
    return Image.fromarray(np.concatenate(rows, axis=0), "RGB")


def save_grid(images: dict[str, torch.Tensor], path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        grid(images).save(tmp, format="PNG")
    return Path(path)
