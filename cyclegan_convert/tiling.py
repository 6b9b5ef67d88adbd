"""Images too large to run whole: overlapping tiles, feathered blending, whole-image statistics.

A CycleGAN generator normalises every feature map by its own mean and variance (InstanceNorm).
Run tile by tile, each tile would get its own statistics and its own colours, and seams show.
So a first pass runs the generator on a downscaled copy of the whole image and records the
statistics of every InstanceNorm layer; every tile is then normalised with those
(``InstanceNorm.stats_hook``). Tiles start on multiples of 4 so the stride-2 sampling grid is the
whole image's, and each tile runs with a margin of context that is thrown away: by default the
generator's receptive radius, so every kept pixel is computed from the same inputs as in a
whole-image pass and the tiles meet without seams and without blending (an overlap, blended with
linear ramps, remains for smaller margins). A ``LatticeNotch`` reaches about 200 px: it runs once on
the assembled image (in bands), not on each tile, where the margin would cut it off.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .networks import InstanceNorm, LatticeNotch, ResizeConv, instance_stats

Stats = dict[int, tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class TileSpec:
    tile: int = 1024  # side of a tile, in pixels (multiple of 4)
    overlap: int = 0  # pixels shared by neighbouring tiles, blended (multiple of 4)
    stats_side: int = 768  # longest side of the downscaled whole-image pass that gives the statistics
    margin: Optional[int] = None  # context run around each tile and thrown away (the reflect padding
    #                   at a tile's edge is not the image); None: the generator's receptive radius

    def __post_init__(self) -> None:
        if self.tile < 64 or self.tile % 4:
            raise ValueError("tile must be a multiple of 4, at least 64")
        if self.overlap % 4 or not 0 <= self.overlap < self.tile // 2:
            raise ValueError("overlap must be a multiple of 4 and less than half the tile")
        if self.margin is not None and (self.margin % 4 or self.margin < 0):
            raise ValueError("margin must be a non-negative multiple of 4")


@contextlib.contextmanager
def _hooks(model: torch.nn.Module, hook) -> Iterator[None]:
    norms = [m for m in model.modules() if isinstance(m, InstanceNorm)]
    old = [m.stats_hook for m in norms]
    for m in norms:
        m.stats_hook = hook
    try:
        yield
    finally:
        for m, h in zip(norms, old):
            m.stats_hook = h


def record_stats(model: torch.nn.Module, x: torch.Tensor, run: Callable[[torch.Tensor], torch.Tensor]) -> Stats:
    """Runs ``run(x)`` once and returns every InstanceNorm layer's (mean, var), per image and channel."""
    stats: Stats = {}

    def hook(module: InstanceNorm, x: torch.Tensor):
        stats[id(module)] = instance_stats(x)
        return stats[id(module)]

    with _hooks(model, hook):
        run(x)
    return stats


def receptive_radius(model: nn.Module) -> int:
    """How far from an output pixel, in input pixels, the inputs it depends on reach (a multiple
    of 4), its LatticeNotch aside: each convolution adds its half kernel at the scale it runs at,
    each x2 resize one pixel of its input. 68 for ccv's compact generators (6 blocks), 88 for the
    original's 9 blocks (a gradient shows 62 for the first: the count is an upper bound)."""
    radius, scale = 0.0, 1.0  # scale: input pixels per pixel of the current layer
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            radius += (m.kernel_size[0] // 2) * m.dilation[0] * scale
            scale *= m.stride[0]
        elif isinstance(m, nn.ConvTranspose2d):
            radius += math.ceil((m.kernel_size[0] // 2) / m.stride[0]) * scale
            scale /= m.stride[0]
        elif isinstance(m, ResizeConv):  # its convolution follows in modules()
            radius += scale
            scale /= 2
    return 4 * math.ceil(radius / 4)


@contextlib.contextmanager
def _notches_left_out(model: nn.Module) -> Iterator[list[LatticeNotch]]:
    notches = [m for m in model.modules() if isinstance(m, LatticeNotch)]
    for m in notches:
        m.bypass = True
    try:
        yield notches
    finally:
        for m in notches:
            m.bypass = False


def notch_in_bands(notch: LatticeNotch, y: torch.Tensor, band: int = 1024) -> torch.Tensor:
    """``notch(y)`` on a whole image, computed in bands of rows with the filter's reach around each
    (the same result; a 48 MP image at once would take several GB)."""
    h, reach = y.shape[-2], notch.reach
    if h <= band + 2 * reach:
        return notch(y)
    out = torch.empty_like(y)
    for y0 in range(0, h, band):
        w0, w1 = max(0, y0 - reach), min(h, y0 + band + reach)  # starts stay on the 4-pixel lattice
        out[..., y0:y0 + band, :] = notch(y[..., w0:w1, :])[..., y0 - w0:y0 - w0 + min(band, h - y0), :]
    return out


def _layout(size: int, tile: int, overlap: int) -> tuple[int, list[int]]:
    """(tile length, starts) along one axis of ``size`` pixels (a multiple of 4): as few tiles as
    ``tile`` allows, shrunk to share the axis evenly. Fixed-size tiles with the last one pushed back
    computed up to twice the image (2448 px in tiles of 1024: 3 x 1152 px with margins); even ones
    cut that to about 1.5x."""
    if size <= tile:
        return size, [0]
    n = math.ceil((size - tile) / (tile - overlap)) + 1
    length = min(tile, 4 * math.ceil((size + (n - 1) * overlap) / n / 4))
    step = length - overlap
    return length, sorted({min(i * step, size - length) for i in range(n)})


def _ramp(length: int, start: int, size: int, overlap: int, device) -> torch.Tensor:
    """Blend weights along one axis: rising over the overlap where a neighbour precedes, falling
    where one follows, 1 at the image's own borders."""
    w = torch.ones(length, device=device)
    if overlap == 0:
        return w
    ramp = (torch.arange(overlap, device=device, dtype=torch.float32) + 0.5) / overlap
    if start > 0:
        w[:overlap] = ramp
    if start + length < size:
        w[-overlap:] = torch.minimum(w[-overlap:], ramp.flip(0))
    return w


def stats_input(x: torch.Tensor, stats_side: int) -> torch.Tensor:
    """The whole image, downscaled so its longest side is at most ``stats_side``, sides multiples of 4."""
    h, w = x.shape[-2:]
    scale = min(1.0, stats_side / max(h, w))
    sh, sw = max(4, round(h * scale / 4) * 4), max(4, round(w * scale / 4) * 4)
    if (sh, sw) == (h, w):
        return x
    # in fp32: the antialiased resize has no half-precision CPU kernels
    return F.interpolate(x.float(), size=(sh, sw), mode="bilinear", antialias=True, align_corners=False).to(x.dtype)


def generate_tiled(model: torch.nn.Module, x: torch.Tensor, spec: TileSpec,
                   run: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """The generator's output for ``x`` (1, 3, H, W), H and W multiples of 4, computed tile by tile.

    ``run`` calls the model (in the caller's dtype and memory format); ``model`` is the module
    whose InstanceNorm layers are hooked and whose LatticeNotch, if any, runs on the assembled image."""
    if x.shape[0] != 1:
        return torch.cat([generate_tiled(model, xi[None], spec, run) for xi in x])
    stats = record_stats(model, stats_input(x, spec.stats_side), run)
    margin = receptive_radius(model) if spec.margin is None else spec.margin

    def use_stats(module: InstanceNorm, x: torch.Tensor):
        return stats[id(module)]

    h, w = x.shape[-2:]
    out = torch.zeros((1, 3, h, w), device=x.device, dtype=torch.float32)
    weight = torch.zeros((1, 1, h, w), device=x.device, dtype=torch.float32)
    th, ys = _layout(h, spec.tile, spec.overlap)
    tw, xs = _layout(w, spec.tile, spec.overlap)
    with _hooks(model, use_stats), _notches_left_out(model) as notches:
        for y0 in ys:
            for x0 in xs:
                # run the tile with its context (clamped to the image: starts stay multiples of 4)
                wy0, wx0 = max(0, y0 - margin), max(0, x0 - margin)
                wy1, wx1 = min(h, y0 + th + margin), min(w, x0 + tw + margin)
                y = run(x[..., wy0:wy1, wx0:wx1]).float()[..., y0 - wy0:y0 - wy0 + th, x0 - wx0:x0 - wx0 + tw]
                wgt = _ramp(th, y0, h, spec.overlap, x.device)[:, None] * _ramp(tw, x0, w, spec.overlap, x.device)[None, :]
                out[..., y0:y0 + th, x0:x0 + tw] += y * wgt
                weight[..., y0:y0 + th, x0:x0 + tw] += wgt
    out /= weight
    for notch in notches:
        out = notch_in_bands(notch, out)
    return out
