"""Tiles with whole-image InstanceNorm statistics match the whole-image output; per-tile ones do not."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan_convert.backends import TorchBackend
from cyclegan_convert.tiling import TileSpec, _layout, generate_tiled

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
