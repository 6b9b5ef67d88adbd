"""`--stable`'s flow-guided blending (cyclegan_convert/temporal.py) on real photos: a still scene's
flicker goes, a moving object leaves no trail, a cut starts afresh.

The per-frame "model" here is the input's colours turned round plus independent noise per frame:
the texture flicker a per-frame CycleGAN adds, with an exact flicker-free answer to compare with.
"""
from __future__ import annotations

import functools
import numpy as np
import pytest
from PIL import Image

from cyclegan_convert.stabilize import SceneCutDetector
from cyclegan_convert.temporal import FlowAnalyzer, OutputBlender, TemporalOptions, stabilise, warping_errors
from videoclips import PHOTOS

W, H = 192, 128


@functools.lru_cache(maxsize=None)
def _photo(path) -> Image.Image:
    return Image.open(path).convert("RGB")  # 256x256


def _crop(photo, x: float, y: float, size=(W, H), zoom: float = 1.0) -> np.ndarray:
    """A window of a real photo (output px per photo px: ``zoom``) moved by (x, y) output px: a
    camera that moves."""
    img = _photo(photo)
    cw, ch = size[0] / zoom, size[1] / zoom
    x0, y0 = img.width / 2 - cw / 2 + x / zoom, img.height / 2 - ch / 2 + y / zoom
    return np.array(img.resize(size, Image.BICUBIC, box=(x0, y0, x0 + cw, y0 + ch)))


def _style(rgb: np.ndarray) -> np.ndarray:
    """A deterministic 'translation': colours turned round, as a model's would be."""
    return np.ascontiguousarray(rgb[..., ::-1] // 2 + 64)


def _per_frame(frames, noise: float = 12.0, seed: int = 0) -> list[np.ndarray]:
    """The style plus fresh noise each frame: what per-frame conversion does to a still scene."""
    rng = np.random.default_rng(seed)
    return [np.clip(_style(f) + rng.normal(0, noise, f.shape), 0, 255).astype(np.uint8) for f in frames]


def test_still_scene_flicker_goes():
    # a handheld camera on a still scene: sub-pixel and one-pixel shifts
    shifts = [(0.4 * np.sin(i), 0.3 * np.cos(1.3 * i)) for i in range(16)]
    frames = [_crop(PHOTOS[0], x, y) for x, y in shifts]
    per_frame = _per_frame(frames)
    stable = stabilise(frames, per_frame)
    e_in, e_pf, e_st = warping_errors(frames, [frames, per_frame, stable]).mean(1)
    assert e_pf > 10 * e_in  # the flicker the test models
    assert e_st < e_pf / 8  # most of it gone
    # and the picture is the model's: the blend converges to the flicker-free style, not elsewhere
    assert np.abs(stable[-1].astype(float) - _style(frames[-1])).mean() < 6


def test_a_moving_object_leaves_no_trail():
    background = _crop(PHOTOS[0], 0, 0)
    thing = _crop(PHOTOS[1], 0, 0, size=(40, 40), zoom=0.5)  # a real object, not a flat patch
    frames, where = [], []
    for i in range(14):
        f = background.copy()
        x = 10 + 8 * i  # 8 px a frame to the right
        f[40:80, x:x + 40] = thing
        frames.append(f)
        where.append(x)
    per_frame = _per_frame(frames, noise=6.0)
    stable = stabilise(frames, per_frame)
    for i in range(6, 14):
        # the background the object uncovered in the last 3 frames, and in the last one: it must
        # show the background as well as the per-frame output does, not what passed over it
        # (without the reliability checks these reach 11 and 18 levels, growing every frame)
        for left in (slice(where[i - 3], where[i]), slice(where[i - 1], where[i])):
            clean = _style(frames[i])[40:80, left].astype(float)
            trail = np.abs(stable[i][40:80, left].astype(float) - clean).mean()
            noise = np.abs(per_frame[i][40:80, left].astype(float) - clean).mean()  # about 4.8
            assert np.abs(_style(frames[i - 3])[40:80, left].astype(float) - clean).mean() > 20  # a visible object
            assert trail < noise + 1.5, f"frame {i}: a trail of {trail:.1f} levels where the object was"
        # and on the object itself, the picture is the object (it moves with its flow, no smear)
        on = (slice(44, 76), slice(where[i] + 4, where[i] + 36))
        assert np.abs(stable[i][on].astype(float) - _style(frames[i])[on]).mean() < 6, f"frame {i}: the object is smeared"


def test_a_cut_starts_afresh():
    a = [_crop(PHOTOS[0], 0.3 * i, 0) for i in range(5)]
    b = [_crop(PHOTOS[2], 0.3 * i, 0) for i in range(5)]
    frames = a + b
    detect = SceneCutDetector()
    cuts = [detect(f) for f in frames]
    assert cuts.index(True, 1) == 5
    per_frame = _per_frame(frames)
    stable = stabilise(frames, per_frame, cuts)
    assert np.array_equal(stable[0], per_frame[0]) and np.array_equal(stable[5], per_frame[5])
    assert not np.array_equal(stable[6], per_frame[6])  # and the new shot is blended from there on


def test_a_cut_the_histograms_miss_is_found_by_the_flow():
    # two shots of one photo (same colours, so the same histograms), far apart in it
    frames = [_crop(PHOTOS[0], -30, -50)] * 3 + [_crop(PHOTOS[0], 30, 50)] * 3
    detect = SceneCutDetector()
    analyze = FlowAnalyzer()
    motions = [analyze(f, detect(f)) for f in frames]
    assert motions[0] is None and motions[3] is None
    assert all(m is not None for m in motions[1:3] + motions[4:])


def test_strength_zero_is_the_per_frame_output():
    frames = [_crop(PHOTOS[0], 0.5 * i, 0) for i in range(4)]
    per_frame = _per_frame(frames)
    out = stabilise(frames, per_frame, options=TemporalOptions(strength=0.0))
    assert all(np.array_equal(a, b) for a, b in zip(out, per_frame))


def test_blending_at_the_working_size_follows_a_smaller_flow():
    """The flow runs at ``flow_side``; the blend at the frame's size with the flow upsampled."""
    frames = [_crop(PHOTOS[0], 2.0 * i, 0, size=(320, 192), zoom=1.5) for i in range(6)]
    per_frame = _per_frame(frames)
    small = stabilise(frames, per_frame, options=TemporalOptions(flow_side=128))
    e_pf, e_st = warping_errors(frames, [per_frame, small]).mean(1)
    assert e_st < e_pf / 3


def test_options_are_checked():
    with pytest.raises(ValueError):
        TemporalOptions(strength=1.0)
    with pytest.raises(ValueError):
        TemporalOptions(preset="slow")
    blend = OutputBlender()
    first = np.zeros((8, 8, 3), np.uint8)
    assert blend(None, first) is first
