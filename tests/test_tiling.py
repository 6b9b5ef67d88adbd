"""Tiles with whole-image InstanceNorm statistics match the whole-image output; per-tile ones do not.
Run stage by stage, each with its own reach as margin, they meet without seams or blending, and the
lattice notch, run once on the assembled image, gives what it gives on the whole."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan_convert.backends import TorchBackend
from cyclegan_convert.networks import LatticeNotch, ResnetGenerator, init_weights
from cyclegan_convert import tiling
from cyclegan_convert.tiling import TileSpec, _layout, generate_tiled, needs, notch_in_bands, zoom
from pixels import assert_same_pixels

from conftest import PHOTOS, psnr as _psnr


@pytest.fixture
def photo() -> torch.Tensor:
    img = Image.open(PHOTOS[0]).convert("RGB").resize((200, 152))
    return torch.from_numpy(np.asarray(img).copy())[None]


def test_tiles_cover_the_image_evenly():
    for size in (1, 16, 25, 250, 257, 612, 1008):
        for tile in (1, 16, 48, 192):
            length, s = _layout(size, tile)
            assert s[0] == 0 and s[-1] + length == size and length <= tile or size < tile
            assert all(0 < b - a <= length for a, b in zip(s, s[1:]))  # no gaps
            assert len(s) == -(-size // tile)  # as few as the size allows
    # 612 cells in tiles of at most 192 -> 4 of 153, evenly
    assert _layout(612, 192) == (153, [0, 153, 306, 459])
    assert _layout(257, 192) == (129, [0, 128])


@pytest.mark.parametrize("channels_last", [False, True])
def test_tiled_matches_whole_image_with_shared_stats(tiny_generator, photo, channels_last):
    with TorchBackend(tiny_generator, device="cpu", channels_last=channels_last) as be:
        whole = be.infer(photo)
        tiled = be.infer_tiled(photo, tile=64, stats_side=1024)  # stats of the full image
        small_stats = be.infer_tiled(photo, tile=64, stats_side=96)  # a downscaled pass
    assert tiled.shape == whole.shape == photo.shape
    assert_same_pixels(tiled, whole, "tiles with the whole image's statistics")
    p_small = _psnr(small_stats, whole)
    assert 25 < p_small < 50, p_small  # close, but not the same statistics

def test_per_tile_statistics_would_show_seams(tiny_generator, photo):
    """The reason for the stats hook: without it every tile gets its own colours."""
    x = photo.permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.inference_mode():
        whole = tiny_generator(x)
        hooked = generate_tiled(tiny_generator, x, TileSpec(64, stats_side=1024), tiny_generator)
        naive = torch.zeros_like(whole)
        (th, ys), (tw, xs) = _layout(x.shape[2] // 4, 16), _layout(x.shape[3] // 4, 16)  # grid cells
        th, tw, ys, xs = 4 * th, 4 * tw, [4 * v for v in ys], [4 * v for v in xs]
        for y0 in ys:
            for x0 in xs:
                naive[..., y0:y0 + th, x0:x0 + tw] = tiny_generator(x[..., y0:y0 + th, x0:x0 + tw])
    to8 = lambda t: ((t + 1) * 127.5).round().clamp(0, 255)  # noqa: E731
    assert _psnr(to8(hooked), to8(whole)) > _psnr(to8(naive), to8(whole)) + 8


@pytest.mark.parametrize("arch", [dict(ngf=4, n_blocks=6, upsample="resize"), dict(ngf=4, n_blocks=2),
                                  dict(ngf=4, n_blocks=2, upsample="bilinear", notch=(4, 8.0))])
def test_each_stage_needs_exactly_the_inputs_its_gradient_shows(arch):
    """A stage's margin comes from ``needs``: the input pixels its output pixels are computed from,
    checked here against the gradient of random output windows (fixed statistics)."""
    torch.manual_seed(0)
    g = init_weights(ResnetGenerator(**arch)).eval()
    for m in g.modules():  # fixed statistics: otherwise every pixel depends on the whole image
        if hasattr(m, "stats_hook"):
            m.stats_hook = lambda mod, x: (torch.zeros(1, x.shape[1], 1, 1), torch.ones(1, x.shape[1], 1, 1))
        if isinstance(m, LatticeNotch):
            m.bypass = True  # as tiling runs it: on the assembled image
        for name, child in m.named_children():
            if isinstance(child, torch.nn.ReLU):  # a ReLU that is off zeroes gradients at the window's edge
                setattr(m, name, torch.nn.Identity())
    stages = g.stages()
    assert len(stages) == arch["n_blocks"] + 2
    channels = 3
    for stage in stages:
        x = torch.randn(1, channels, 96, 96, requires_grad=True)
        y = stage(x)
        channels = y.shape[1]
        assert y.shape[-1] == 96 * zoom(stage)
        for lo, hi in ((40, 40), (41, 41), (36, 47), (37, 38)):
            lo, hi = int(lo * zoom(stage)), int((hi + 1) * zoom(stage)) - 1 if zoom(stage) >= 1 else int(hi * zoom(stage))
            x.grad = None
            y[0, :, lo:hi + 1, 20].sum().backward(retain_graph=True)
            rows = (x.grad[0].abs().sum((0, 2)) > 0).nonzero()
            assert (rows.min().item(), rows.max().item()) == needs(stage, lo, hi), (type(stage).__name__, lo, hi)


def test_tiles_are_the_whole_image_and_every_stage_needs_its_margin(photo, monkeypatch):
    """No overlap, no blending: each tile's kept pixels are the whole-image pass's (shared statistics),
    notch included, whatever the tile size; a stage run with one grid cell less margin is not."""
    torch.manual_seed(0)
    g = init_weights(ResnetGenerator(ngf=8, n_blocks=2, upsample="resize", notch=(4, 8.0))).eval()
    with TorchBackend(g, device="cpu", channels_last=False) as be:
        whole = be.infer(photo)
        for tile in (64, 112):
            assert_same_pixels(be.infer_tiled(photo, tile=tile, stats_side=1024), whole, f"tiles of {tile}")
        run_stage = tiling._stage_in_tiles
        for short in range(4):  # encoder, two blocks, decoder
            calls = iter(range(4))

            def one_short(stage, x, size, side, margin, fin, fout, cl, last):
                return run_stage(stage, x, size, side, margin - (next(calls) == short), fin, fout, cl, last)

            monkeypatch.setattr(tiling, "_stage_in_tiles", one_short)
            assert _psnr(be.infer_tiled(photo, tile=64, stats_side=1024), whole) < 50, short
        monkeypatch.setattr(tiling, "_stage_in_tiles", run_stage)


def test_the_notch_in_bands_is_the_notch_on_the_whole():
    notch = LatticeNotch(4, 32.0)
    y = torch.rand(1, 3, 1400, 96)
    assert torch.equal(notch_in_bands(notch, y, band=256), notch(y))
    notch.reach //= 4  # the mutation: too little context around each band (the Gaussian's tails
    #                    are small: at half the reach the bands are 4e-6 off)
    assert not torch.allclose(notch_in_bands(notch, y, band=256), notch(y), atol=1e-3)
