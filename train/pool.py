"""The original's ImagePool: discriminators also see generated images from earlier steps."""
from __future__ import annotations

import random
from typing import Any

import torch


class ImagePool:
    """Per image: while the pool is not full, store it and return it; once full, with probability
    0.5 return a stored image and put the new one in its place, otherwise return the new one.
    Size 0 disables the pool. Its random choices come from its own generator so that they can be
    saved and resumed exactly, and do not depend on anything else drawing random numbers."""

    def __init__(self, size: int, seed: int = 0):
        self.size = size
        self.images: list[torch.Tensor] = []
        self.rng = random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """``images``: N x C x H x W; returns the same shape, detached."""
        if self.size == 0:
            return images.detach()
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif self.rng.uniform(0, 1) > 0.5:
                i = self.rng.randint(0, self.size - 1)
                out.append(self.images[i].clone())
                self.images[i] = image
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, "images": [t.cpu() for t in self.images], "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.size = int(state["size"])
        self.images = [t.to(device) for t in state["images"]]
        rng = state["rng"]  # getstate() is (version, tuple, gauss); a checkpoint may turn tuples into lists
        self.rng.setstate((rng[0], tuple(rng[1]), rng[2]))
