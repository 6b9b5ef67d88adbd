"""Images too large to run whole: whole-image statistics, then the generator stage by stage in tiles.

A CycleGAN generator normalises every feature map by its own mean and variance (InstanceNorm).
Run tile by tile, each tile would get its own statistics and its own colours, and seams show.
So a first pass runs the generator on a downscaled copy of the whole image and records the
statistics of every InstanceNorm layer; every tile is then normalised with those
(``InstanceNorm.stats_hook``).

With the statistics fixed, every layer is local, and the generator runs in stages
(``ResnetGenerator.stages``: the encoder, each residual block, the decoder), each over the whole
image in tiles with a margin of context as wide as that stage's reach, thrown away; between stages
the whole feature map is kept. So every kept pixel is computed from the same inputs as in a
whole-image pass: tiles meet without seams or blending, the same bits whatever the tile size. A
margin per stage costs 1.05x the image's multiply-adds where one margin for the whole network (its
receptive radius, 68 px for ccv's compact generators) cost 1.3x, and small tiles keep a layer's
input and output in the CPU's cache (a 12 MP photo 20.0 -> 15.1 s, AMD EPYC, 2 cores, same bits). Tiles lie on
the generator's 4-pixel grid, so strided layers sample the whole image's grid. A ``LatticeNotch``
reaches about 200 px: it runs once on the assembled image (in bands), not on each tile.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .networks import InstanceNorm, LatticeNotch, ResizeConv, ResnetBlock, instance_stats

Stats = dict[int, tuple[torch.Tensor, torch.Tensor]]


GRID = 4  # the generator's pixel grid: two stride-2 layers; tiles start on it


@dataclass(frozen=True)
class TileSpec:
    tile: int = 768  # side of the residual blocks' tiles, in image pixels (multiple of 4); the stages
    #                  with a full-resolution side take half: their feature maps are 4 to 16x larger
    stats_side: int = 768  # longest side of the downscaled whole-image pass that gives the statistics

    def __post_init__(self) -> None:
        if self.tile < 64 or self.tile % 4:
            raise ValueError("tile must be a multiple of 4, at least 64")


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


def needs(module: nn.Module, lo: int, hi: int) -> tuple[int, int]:
    """The input pixels [lo', hi'] (along one axis) that output pixels [lo, hi] of ``module`` are
    computed from, away from the image's borders (there the layers' own padding is the image's).
    Exact, layer by layer: the tests compare it with gradients. LatticeNotch counts as nothing: tiling
    runs it on the assembled image."""
    if isinstance(module, nn.Sequential):
        for m in reversed(module):
            lo, hi = needs(m, lo, hi)
        return lo, hi
    if isinstance(module, ResnetBlock):  # x + conv_block(x): the block's reach covers the skip
        return needs(module.conv_block, lo, hi)
    if isinstance(module, nn.Conv2d):
        (k,), (s,), (p,), (d,) = module.kernel_size[:1], module.stride[:1], module.padding[:1], module.dilation[:1]
        return lo * s - p, hi * s - p + d * (k - 1)
    if isinstance(module, nn.ConvTranspose2d):  # output o = i * s - p + j, j < k
        (k,), (s,), (p,) = module.kernel_size[:1], module.stride[:1], module.padding[:1]
        return -((k - 1 - lo - p) // s), (hi + p) // s
    if isinstance(module, ResizeConv):
        lo, hi = needs(getattr(module, module.conv_name), lo, hi)
        if module.mode == "nearest":
            return lo // 2, hi // 2
        return math.floor((lo + 0.5) / 2 - 0.5), math.floor((hi + 0.5) / 2 - 0.5) + 1  # bilinear, half-pixel centres
    if isinstance(module, nn.ReflectionPad2d):
        return lo - module.padding[0], hi - module.padding[0]
    if isinstance(module, LatticeNotch) or not any(True for _ in module.parameters()):
        return lo, hi  # pixelwise: norms, activations, casts
    raise TypeError(f"tiling does not know how far {type(module).__name__} reaches")


def zoom(stage: nn.Module) -> float:
    """Output pixels per input pixel of ``stage``: strided convolutions divide, x2 upsamplings multiply."""
    z = 1.0
    for m in stage.modules():
        if isinstance(m, nn.Conv2d):
            z /= m.stride[0]
        elif isinstance(m, (nn.ConvTranspose2d, ResizeConv)):
            z *= 2 if isinstance(m, ResizeConv) else m.stride[0]
    return z


def stage_margin(stage: nn.Module, fin: int, fout: int) -> int:
    """Grid cells of context a tile of ``stage`` needs on each side, its input having ``fin`` pixels
    per cell and its output ``fout``."""
    q = 8  # any cell away from the border: the layers are the same everywhere
    lo, hi = needs(stage, q * fout, (q + 1) * fout - 1)
    return max(q - lo // fin, hi // fin - q)


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


NOTCH_BAND_PIXELS = 16_000_000  # a band of this many pixels takes about 1.1 GB in the notch


def notch_in_bands(notch: LatticeNotch, y: torch.Tensor, band: Optional[int] = None) -> torch.Tensor:
    """``notch(y)`` on a whole image, computed in bands of rows with the filter's reach around each
    (the same result; a 48 MP image at once would take several GB). ``band``: rows, by default as
    many as ``NOTCH_BAND_PIXELS`` allows: each band recomputes its reach (208 rows) on both sides,
    so a 12 MP photo in one piece took 1.16 s against 1.45 s in bands of 1024 rows."""
    h, reach = y.shape[-2], notch.reach
    if band is None:
        band = max(256, NOTCH_BAND_PIXELS // y.shape[-1] // 4 * 4)
    if h <= band + 2 * reach:
        return notch(y)
    out = torch.empty_like(y)
    for y0 in range(0, h, band):
        w0, w1 = max(0, y0 - reach), min(h, y0 + band + reach)  # starts stay on the 4-pixel lattice
        out[..., y0:y0 + band, :] = notch(y[..., w0:w1, :])[..., y0 - w0:y0 - w0 + min(band, h - y0), :]
    return out


def _layout(size: int, tile: int) -> tuple[int, list[int]]:
    """(tile length, starts) along one axis of ``size`` cells: as few tiles as ``tile`` allows,
    shrunk to share the axis evenly (the last pushed back where the division is not even)."""
    n = math.ceil(size / tile)
    length = math.ceil(size / n)
    return length, sorted({min(i * length, size - length) for i in range(n)})


def stats_input(x: torch.Tensor, stats_side: int) -> torch.Tensor:
    """The whole image, downscaled so its longest side is at most ``stats_side``, sides multiples of 4."""
    h, w = x.shape[-2:]
    scale = min(1.0, stats_side / max(h, w))
    sh, sw = max(4, round(h * scale / 4) * 4), max(4, round(w * scale / 4) * 4)
    if (sh, sw) == (h, w):
        return x
    # in fp32: the antialiased resize has no half-precision CPU kernels
    return F.interpolate(x.float(), size=(sh, sw), mode="bilinear", antialias=True, align_corners=False).to(x.dtype)


def generate_tiled(model: nn.Module, x: torch.Tensor, spec: TileSpec, run: Callable[[torch.Tensor], torch.Tensor],
                   channels_last: bool = False) -> torch.Tensor:
    """The generator's output for ``x`` (1, 3, H, W), H and W multiples of 4, computed in tiles.

    ``model`` has ``stages()`` (a ``ResnetGenerator`` or ``HalfPrecisionGenerator``); its InstanceNorm
    layers are hooked and its LatticeNotch, if any, runs on the assembled image. ``run`` calls the
    model for the statistics pass (in the caller's dtype and memory format); ``channels_last``: the
    memory format the tiles run in."""
    if x.shape[0] != 1:
        return torch.cat([generate_tiled(model, xi[None], spec, run, channels_last) for xi in x])
    size = (x.shape[-2] // GRID, x.shape[-1] // GRID)  # in cells of the grid
    y = x
    with _notches_left_out(model) as notches:  # the statistics pass's output is not used
        stats = record_stats(model, stats_input(x, spec.stats_side), run)

        def use_stats(module: InstanceNorm, x: torch.Tensor):
            return stats[id(module)]

        with _hooks(model, use_stats):
            stages = model.stages()
            for i, stage in enumerate(stages):
                fin = y.shape[-2] // size[0]  # pixels per cell of the stage's input, then its output
                fout = round(fin * zoom(stage))
                side = max(1, spec.tile // GRID // (2 if max(fin, fout) == GRID else 1))
                y = _stage_in_tiles(stage, y, size, side, stage_margin(stage, fin, fout), fin, fout, channels_last,
                                    last=i == len(stages) - 1)
    out = y.float()
    for notch in notches:
        out = notch_in_bands(notch, out)
    return out


def _stage_in_tiles(stage: nn.Module, x: torch.Tensor, size: tuple[int, int], side: int, margin: int,
                    fin: int, fout: int, channels_last: bool, last: bool) -> torch.Tensor:
    """``stage(x)`` in tiles of ``side`` grid cells, each run with ``margin`` cells of context
    (clamped to the image: at its borders the layers' own padding is the whole image's). ``fin``,
    ``fout``: pixels per cell of the stage's input and output. The last stage (the decoder) runs
    NCHW: its output is the image, NCHW for the notch, and it was no faster on channels_last tiles
    (4.4-4.7 against 4.7-5.4 s for a 12 MP photo)."""
    (th, ys), (tw, xs) = _layout(size[0], side), _layout(size[1], side)
    nhwc = channels_last and not last
    out = None
    for y0 in ys:
        for x0 in xs:
            wy0, wx0 = max(0, y0 - margin), max(0, x0 - margin)
            wy1, wx1 = min(size[0], y0 + th + margin), min(size[1], x0 + tw + margin)
            tile = x[..., wy0 * fin:wy1 * fin, wx0 * fin:wx1 * fin]
            if nhwc:
                tile = tile.contiguous(memory_format=torch.channels_last)
            y = stage(tile)
            if out is None:
                out = torch.empty((1, y.shape[1], size[0] * fout, size[1] * fout), dtype=y.dtype, device=y.device,
                                  memory_format=torch.channels_last if nhwc else torch.contiguous_format)
            out[..., y0 * fout:(y0 + th) * fout, x0 * fout:(x0 + tw) * fout] = \
                y[..., (y0 - wy0) * fout:(y0 - wy0 + th) * fout, (x0 - wx0) * fout:(x0 - wx0 + tw) * fout]
    return out
