"""Tiles with whole-image InstanceNorm statistics match the whole-image output; per-tile ones do not.
With the generator's receptive radius as margin they meet without seams or blending, and the lattice
notch, run once on the assembled image, gives what it gives on the whole."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan_convert.backends import TorchBackend
from cyclegan_convert.networks import LatticeNotch, ResnetGenerator, init_weights
from cyclegan_convert.tiling import TileSpec, _layout, generate_tiled, notch_in_bands, receptive_radius
from pixels import assert_same_pixels

from conftest import PHOTOS, psnr as _psnr


@pytest.fixture
def photo() -> torch.Tensor:
    img = Image.open(PHOTOS[0]).convert("RGB").resize((200, 152))
    return torch.from_numpy(np.asarray(img).copy())[None]


def test_tiles_cover_the_image_evenly_on_multiples_of_4():
    for size in (64, 100, 256, 1000, 1028, 2448, 4032):
        length, s = _layout(size, 64 if size <= 1000 else 1024, 16 if size <= 1000 else 64)
        overlap = 16 if size <= 1000 else 64
        assert s[0] == 0 and s[-1] + length == size and length <= max(64, size)
        assert all(v % 4 == 0 and length % 4 == 0 for v in s if size % 4 == 0)
        assert all(b - a <= length - overlap for a, b in zip(s, s[1:]))  # neighbours overlap enough
    # as few tiles as the size allows, shared evenly: 2448 px in tiles of at most 1024 -> 3 of 860
    assert _layout(2448, 1024, 64) == (860, [0, 796, 1588])
    assert _layout(1028, 1024, 64) == (548, [0, 480])


@pytest.mark.parametrize("channels_last", [False, True])
def test_tiled_matches_whole_image_with_shared_stats(tiny_generator, photo, channels_last):
    with TorchBackend(tiny_generator, device="cpu", channels_last=channels_last) as be:
        whole = be.infer(photo)
        tiled = be.infer_tiled(photo, tile=64, overlap=16, stats_side=1024, margin=32)  # stats of the full image
        small_stats = be.infer_tiled(photo, tile=64, overlap=16, stats_side=96, margin=32)  # a downscaled pass
    assert tiled.shape == whole.shape == photo.shape
    p_tiled, p_small = _psnr(tiled, whole), _psnr(small_stats, whole)
    assert p_tiled > 35, p_tiled
    assert p_small > 25, p_small


def test_per_tile_statistics_would_show_seams(tiny_generator, photo):
    """The reason for the stats hook: without it every tile gets its own colours."""
    x = photo.permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.inference_mode():
        whole = tiny_generator(x)
        hooked = generate_tiled(tiny_generator, x, TileSpec(64, 16, stats_side=1024, margin=32), tiny_generator)
        naive = torch.zeros_like(whole)
        (th, ys), (tw, xs) = _layout(x.shape[2], 64, 0), _layout(x.shape[3], 64, 0)
        for y0 in ys:
            for x0 in xs:
                naive[..., y0:y0 + th, x0:x0 + tw] = tiny_generator(x[..., y0:y0 + th, x0:x0 + tw])
    to8 = lambda t: ((t + 1) * 127.5).round().clamp(0, 255)  # noqa: E731
    assert _psnr(to8(hooked), to8(whole)) > _psnr(to8(naive), to8(whole)) + 8


@pytest.mark.parametrize("arch", [dict(ngf=4, n_blocks=6, upsample="resize"), dict(ngf=4, n_blocks=9),
                                  dict(ngf=4, n_blocks=2, upsample="bilinear")])
def test_the_receptive_radius_covers_every_input_an_output_pixel_depends_on(arch):
    torch.manual_seed(0)
    g = init_weights(ResnetGenerator(**arch)).eval()
    radius = receptive_radius(g)
    for m in g.modules():  # fixed statistics: otherwise every pixel depends on the whole image
        if hasattr(m, "stats_hook"):
            m.stats_hook = lambda mod, x: (torch.zeros(1, x.shape[1], 1, 1), torch.ones(1, x.shape[1], 1, 1))
    x = torch.randn(1, 3, 256, 256, requires_grad=True)
    g(x)[0, :, 128, 130].sum().backward()
    reach = (x.grad[0].abs().sum(0) > 0).nonzero() - torch.tensor([128, 130])
    assert radius % 4 == 0 and reach.abs().max().item() <= radius < reach.abs().max().item() + 12, (radius, reach.abs().max())


def test_tiles_with_the_receptive_radius_as_margin_are_the_whole_image(photo):
    """No overlap, no blending: each tile's kept pixels are the whole-image pass's (shared statistics),
    notch included; a margin one cell short of the radius is not."""
    torch.manual_seed(0)
    g = init_weights(ResnetGenerator(ngf=8, n_blocks=2, upsample="resize", notch=(4, 8.0))).eval()
    with TorchBackend(g, device="cpu", channels_last=False) as be:
        whole = be.infer(photo)
        tiled = be.infer_tiled(photo, tile=64, stats_side=1024)
        short = be.infer_tiled(photo, tile=64, stats_side=1024, margin=receptive_radius(g) - 24)
    assert_same_pixels(tiled, whole, "tiles with the default margin")
    assert _psnr(short, whole) < 50


def test_the_notch_in_bands_is_the_notch_on_the_whole():
    notch = LatticeNotch(4, 32.0)
    y = torch.rand(1, 3, 1400, 96)
    assert torch.equal(notch_in_bands(notch, y, band=256), notch(y))
    notch.reach //= 4  # the mutation: too little context around each band (the Gaussian's tails
    #                    are small: at half the reach the bands are 4e-6 off)
    assert not torch.allclose(notch_in_bands(notch, y, band=256), notch(y), atol=1e-3)
