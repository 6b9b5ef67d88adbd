"""`--stable`: less flicker by smoothing InstanceNorm statistics across the frames of a shot.

CycleGAN normalises every feature map by its own mean and variance, so small changes in a frame
shift the statistics of every layer and the whole frame's colours jump. Replacing them by an
exponential moving average over the previous frames of the same shot keeps colours steady; at a
scene cut the average restarts, so a new shot gets its own statistics at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from .networks import InstanceNorm, instance_stats


@dataclass(frozen=True)
class StableOptions:
    momentum: float = 0.9  # weight of the past in the average: 0 = off, 0.9 = about 10 frames of memory
    cut_threshold: float = 0.35  # histogram distance (0..1) between consecutive frames that counts as a cut

    def __post_init__(self) -> None:
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError("momentum must be in [0, 1)")


class SceneCutDetector:
    """A cut is a frame whose colour histogram differs a lot from the previous frame's. Histograms
    ignore where things are, so pans and zooms within a shot do not count as cuts."""

    BINS = 16

    def __init__(self, threshold: float = 0.35):
        self.threshold = threshold
        self._prev: Optional[np.ndarray] = None

    def histogram(self, rgb: np.ndarray) -> np.ndarray:
        step = max(1, min(rgb.shape[0], rgb.shape[1]) // 64)  # a thumbnail is plenty, and cheap
        small = rgb[::step, ::step].reshape(-1, 3) // (256 // self.BINS)
        hist = np.stack([np.bincount(small[:, c], minlength=self.BINS) for c in range(3)]).astype(np.float64)
        return hist / hist.sum(axis=1, keepdims=True)

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """Mean over channels of half the L1 distance between histograms: 0 same, 1 disjoint."""
        return float(np.abs(a - b).sum(axis=1).mean() / 2)

    def __call__(self, rgb: np.ndarray) -> bool:
        """True when ``rgb`` starts a new shot (the first frame does)."""
        h = self.histogram(rgb)
        cut = self._prev is None or self.distance(h, self._prev) > self.threshold
        self._prev = h
        return cut


class StatsSmoother:
    """Installs ``stats_hook`` on every InstanceNorm of a generator. Before each batch call
    ``begin(cuts)`` with one flag per frame, in frame order; frames of a batch are averaged in order."""

    def __init__(self, model: torch.nn.Module, options: StableOptions = StableOptions()):
        self.options = options
        self._norms = [m for m in model.modules() if isinstance(m, InstanceNorm)]
        if not self._norms:
            raise ValueError("the model has no InstanceNorm layers to stabilise")
        self._state: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._cuts: Sequence[bool] = ()

    def install(self) -> "StatsSmoother":
        for m in self._norms:
            m.stats_hook = self._hook
        return self

    def remove(self) -> None:
        for m in self._norms:
            m.stats_hook = None
        self._state.clear()

    def __enter__(self) -> "StatsSmoother":
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def begin(self, cuts: Sequence[bool]) -> None:
        self._cuts = list(cuts)

    def _hook(self, module: InstanceNorm, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, var = instance_stats(x)  # (N, C, 1, 1) each
        if len(self._cuts) != x.shape[0]:
            raise RuntimeError(f"StatsSmoother.begin() got {len(self._cuts)} flags for a batch of {x.shape[0]}")
        m = self.options.momentum
        state = self._state.get(id(module))
        means, variances = [], []
        for i, cut in enumerate(self._cuts):
            if state is None or cut:
                state = (mean[i], var[i])
            else:
                state = (m * state[0] + (1 - m) * mean[i], m * state[1] + (1 - m) * var[i])
            means.append(state[0])
            variances.append(state[1])
        self._state[id(module)] = state
        return torch.stack(means), torch.stack(variances)


def frame_change(frames: Sequence[np.ndarray]) -> float:
    """Mean absolute change between consecutive frames, in 8-bit levels."""
    diffs = [np.abs(a.astype(np.int16) - b.astype(np.int16)).mean() for a, b in zip(frames, frames[1:])]
    return float(np.mean(diffs)) if diffs else 0.0
