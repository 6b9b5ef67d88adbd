"""--colors, --strength, --strokes, --highlights and --edges: what each does to real photos, and how runs record them."""
from __future__ import annotations

import re

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan_convert.converter import ConvertOptions, Converter
from cyclegan_convert.errors import UsageError
from cyclegan_convert.look import Look, _chroma, apply_look, parse_colors
from cyclegan_convert.resolve import ModelRef, resolve_model
from cyclegan_convert.store import ModelEntry

from conftest import PHOTOS

LUMA = np.array([0.299, 0.587, 0.114])


def _photo(i=0, size=(160, 120)) -> np.ndarray:
    return np.asarray(Image.open(PHOTOS[i]).convert("RGB").resize(size, Image.Resampling.LANCZOS))


def _chroma_layout(rgb: np.ndarray, cells: int = 16) -> np.ndarray:
    """(cells, cells, 2) mean Cb, Cr per cell: the colour layout a viewer reads."""
    f = rgb.astype(np.float64)
    y = f @ LUMA
    cb, cr = (f[..., 2] - y) / 1.772, (f[..., 0] - y) / 1.402
    h, w = y.shape
    hs, ws = h - h % cells, w - w % cells
    out = [c[:hs, :ws].reshape(cells, hs // cells, cells, ws // cells).mean(axis=(1, 3)) for c in (cb, cr)]
    return np.stack(out, axis=-1)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _hue_scrambled(rgb: np.ndarray) -> np.ndarray:
    """What a colour-swapping model does: the same light, other hues (channels rotated, re-lit to
    the input's luma), plus a stroke-like texture."""
    rot = rgb[..., [2, 0, 1]].astype(np.float64)
    rot += (rgb.astype(np.float64) @ LUMA - rot @ LUMA)[..., None]
    rng = np.random.default_rng(0)
    rot += rng.normal(0, 6, rot.shape[:2])[..., None] * np.array([1.0, -0.5, 0.8])  # colour strokes
    return np.clip(rot + 0.5, 0, 255).astype(np.uint8)


def test_raw_look_is_the_output_itself():
    out = _hue_scrambled(_photo())
    assert apply_look(out, _photo(), Look()) is out
    assert Look().raw and Look().settings() == {}


def test_keep_restores_the_inputs_colour_layout_and_leaves_the_models_light():
    src = _photo(1)
    out = _hue_scrambled(src)
    kept = apply_look(out, src, Look(colors=1.0))
    before, after = _corr(_chroma_layout(out), _chroma_layout(src)), _corr(_chroma_layout(kept), _chroma_layout(src))
    assert before < 0.5 and after > 0.97, (before, after)
    # luma is the model's (up to clipping of saturated colours and rounding)
    diff = np.abs(kept.astype(float) @ LUMA - out.astype(float) @ LUMA)
    assert np.median(diff) <= 1.0 and np.mean(diff) < 2.0


def test_keep_leaves_the_models_colour_strokes_finer_than_the_layout(monkeypatch):
    """On a photo 8x COLOR_SIDE (a 12 MP photo: 4000 px against 512) the layout is kept and the
    model's colour texture finer than it stays (keep is a painting in the photo's colours, not a
    tinted photo)."""
    import cyclegan_convert.look as look

    monkeypatch.setattr(look, "COLOR_SIDE", 128)
    src = _photo(1, (1024, 768))
    out = _hue_scrambled(src)
    kept = apply_look(out, src, Look(colors=1.0))
    assert _corr(_chroma_layout(kept), _chroma_layout(src)) > 0.97
    def fine(rgb):  # chroma texture finer than the 8 px the layout is taken at
        return _chroma(rgb) - cv2.blur(_chroma(rgb), (8, 8))

    assert _corr(fine(kept), fine(out)) > 0.9 and abs(_corr(fine(kept), fine(src))) < 0.3  # measured 0.97, -0.11


def test_colors_fraction_goes_part_of_the_way():
    src = _photo(2)
    out = _hue_scrambled(src)
    dist = [np.abs(_chroma_layout(apply_look(out, src, Look(colors=f))) - _chroma_layout(src)).mean()
            for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert all(a > b for a, b in zip(dist, dist[1:])), dist  # monotone toward the input's colours
    assert abs(dist[2] - dist[0] / 2) < 0.1 * dist[0]  # halfway is halfway


def test_strength_moves_smoothly_from_the_input_to_the_output():
    src = _photo(3)
    out = _hue_scrambled(src)
    assert np.abs(apply_look(out, src, Look(strength=0.0)).astype(int) - src).max() <= 1
    d = [float(np.abs(apply_look(out, src, Look(strength=s)).astype(int) - src).mean()) for s in np.linspace(0, 1, 6)]
    steps = np.diff(d)
    assert (steps > 0).all() and steps.max() < 1.5 * steps.min(), d  # even steps, no jump


def test_the_input_may_be_smaller_than_the_output():
    """--max-side decodes a JPEG smaller: its colours are scaled to the output."""
    src = _photo(0, (320, 240))
    out = _hue_scrambled(src)
    small = src[::2, ::2].copy()
    kept = apply_look(out, small, Look(colors=1.0, strength=0.5))
    assert kept.shape == out.shape
    assert _corr(_chroma_layout(kept), _chroma_layout(src)) > 0.95
    # and the strokes' directions and luma weights (the photo scaled up): the same as from the full input
    big, half = _photo(0, (1024, 768)), _photo(0, (512, 384))
    grain = _hue_scrambled(big)
    a, b = apply_look(grain, big, Look(strokes=1.0)), apply_look(grain, half, Look(strokes=1.0))
    assert np.abs(a.astype(int) - b).mean() < 0.5  # measured 0.14; the strokes themselves change 3.4 on average


def _rings(side: int = 512, period: float = 24.0) -> np.ndarray:
    """Concentric grey rings: edges in every direction."""
    y, x = np.mgrid[:side, :side] - side / 2
    g = 128 + 100 * np.sin(2 * np.pi * np.hypot(x, y) / period)
    return np.repeat(np.clip(g + 0.5, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _ring_amplitude(rgb: np.ndarray, guide: np.ndarray) -> float:
    """How much of the rings' contrast ``rgb`` keeps (projection on the rings, 1 = all), away from the centre."""
    a, g = rgb[..., 0].astype(float) - 128, guide[..., 0].astype(float) - 128
    keep = np.hypot(*(np.mgrid[:g.shape[0], :g.shape[1]] - g.shape[0] / 2)) > 20
    return float((a * g)[keep].sum() / (g * g)[keep].sum())


def test_strokes_run_along_the_photos_edges_and_smooth_the_models_grain():
    """The model's output: the photo's rings plus grain. Strokes along the rings (directions from the
    photo) take most of the grain and keep the rings; the same strokes across them would blur them
    (at this reach, 6.4 px each way at 512 px, to about 0.7 of their contrast)."""
    guide = _rings()
    rng = np.random.default_rng(0)
    out = np.clip(guide + rng.normal(0, 20, guide.shape[:2])[..., None] + 0.5, 0, 255).astype(np.uint8)
    stroked = apply_look(out, guide, Look(strokes=2.5))
    grain = lambda rgb: float(np.std(rgb[..., 0].astype(float) - guide[..., 0]))  # noqa: E731
    assert grain(stroked) < 0.5 * grain(out), (grain(out), grain(stroked))
    assert _ring_amplitude(stroked, guide) > 0.93, _ring_amplitude(stroked, guide)
    flat = np.full((64, 96, 3), 77, np.uint8)
    assert np.array_equal(apply_look(flat, flat, Look(strokes=1.0)), flat)


def test_small_details_the_photo_draws_in_contrast_are_not_carried_away():
    """Dark 3 px dots (eyes, a clock's hands) on gentle stripes: each stroke sample counts by how
    close the photo's luma there is to the pixel's, so the dots keep their contrast (measured 0.98);
    weighted by distance alone, the strokes smear them to less than half (0.42)."""
    y, x = np.mgrid[:512, :512]
    dots = ((y % 24) < 3) & ((x % 24) < 3)
    g = np.where(dots, 0.0, 128 + 40 * np.sin(2 * np.pi * y / 32))
    guide = np.repeat(np.clip(g + 0.5, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    background = guide[..., 0][~dots].astype(float).mean()
    stroked = apply_look(guide, guide, Look(strokes=2.5))[..., 0].astype(float)
    assert (background - stroked[dots].mean()) / background > 0.9


def test_strokes_lie_horizontal_where_the_photo_is_nearly_flat_and_follow_it_elsewhere():
    """A clear sky (JPEG-like noise of a level or so): without a prior its directions are the
    noise's, and the strokes swirl; they lie flat. The rings still steer them where they are."""
    from cyclegan_convert.look import stroke_directions

    rng = np.random.default_rng(2)
    sky = np.clip(150 + rng.normal(0, 1.0, (384, 512))[..., None] + 0.5, 0, 255).astype(np.uint8).repeat(3, axis=2)
    tx, ty = stroke_directions(sky, (512, 384), 12.0)
    assert np.abs(tx).mean() > 0.97, np.abs(tx).mean()  # measured 0.99998; without the prior 0.62
    tx, ty = stroke_directions(_rings(), (512, 512), 12.0)
    yy, xx = np.mgrid[:512, :512] - 256.0
    r = np.hypot(xx, yy)
    along = np.abs(tx * -yy / np.maximum(r, 1) + ty * xx / np.maximum(r, 1))  # |cos| to the ring's tangent
    assert np.median(along[(r > 40) & (r < 220)]) > 0.95


def test_stroke_directions_are_half_the_doubled_angle():
    """``half_angle`` (the half-angle identities) gives (-sin, cos) of half of atan2(s2, c2), at any
    length of (c2, s2), on every side of the circle and on its axes."""
    from cyclegan_convert.look import half_angle

    rng = np.random.default_rng(0)
    c2 = np.concatenate([rng.normal(size=1000), [1, -1, 0, 0, -1]]).astype(np.float32)
    s2 = np.concatenate([rng.normal(size=1000), [0, 0, 1, -1, 1e-9]]).astype(np.float32)
    scale = rng.uniform(0.1, 10, size=c2.shape).astype(np.float32)
    tx, ty = half_angle(c2 * scale, s2 * scale)
    theta = 0.5 * np.arctan2(s2, c2)
    assert np.abs(tx + np.sin(theta)).max() < 1e-3 and np.abs(ty - np.cos(theta)).max() < 1e-3


def test_strokes_in_bands_of_rows_equal_the_whole_image_at_once(monkeypatch):
    import cyclegan_convert.look as look

    src = _photo(1, (640, 480))
    out = _hue_scrambled(src)
    banded = apply_look(out, src, Look(strokes=1.0))
    monkeypatch.setattr(look, "STROKE_BAND", 10**6)
    assert np.array_equal(banded, apply_look(out, src, Look(strokes=1.0)))


def test_the_photo_steers_the_strokes_not_the_models_own_pattern():
    """An output of vertical stripes (a model's streaks) over the photo's rings: strokes along the
    rings cross the stripes wherever the rings are not vertical and wash them out; strokes steered by
    the output itself would run along the stripes and keep them whole."""
    guide = _rings()
    x = np.arange(guide.shape[1])
    stripes = np.repeat((128 + 60 * np.sin(2 * np.pi * x / 8))[None, :, None], guide.shape[0], 0).repeat(3, 2)
    out = np.clip(stripes + 0.5, 0, 255).astype(np.uint8)
    kept = lambda rgb: float(((rgb[..., 0] - 128.0) * (out[..., 0] - 128.0)).sum() / ((out[..., 0] - 128.0) ** 2).sum())  # noqa: E731
    assert kept(apply_look(out, guide, Look(strokes=2.5))) < 0.6
    assert kept(apply_look(out, out, Look(strokes=2.5))) > 0.9  # the same output as its own guide


def test_strokes_start_above_the_size_the_model_was_trained_at(monkeypatch):
    """None at 256 px (the model's own grain has a painting's scale there); above it they reach
    STROKE_REACH of the side beyond 256 px: 1% of 1664 px = 16.6 px at 1920 px for strokes 1."""
    import cyclegan_convert.look as look

    small = _hue_scrambled(_photo(0, (256, 192)))
    assert np.array_equal(apply_look(small, _photo(0, (256, 192)), Look(strokes=1.0)), small)
    reaches = []
    monkeypatch.setattr(look, "brush_strokes", lambda image, guide, reach: reaches.append(reach) or image)
    for w, h in ((1920, 1080), (1080, 1920), (4272, 2848)):
        apply_look(np.zeros((h, w, 3), np.uint8), np.zeros((h // 4, w // 4, 3), np.uint8), Look(strokes=0.5))
    assert np.allclose(reaches, [8.32, 8.32, 20.08])


def test_strokes_are_part_of_the_look_settings_and_its_description():
    assert Look(strokes=1.0).settings() == {"colors": 0.0, "strength": 1.0, "strokes": 1.0}
    assert "strokes" not in Look(colors=0.5).settings()  # outputs made before strokes stay current
    assert Look(strokes=0.5).describe() == "colors model, strength 1, strokes 0.5" and not Look(strokes=0.5).raw
    assert Look.of(None, None, {"colors": 0.5, "strokes": 1.0}) == Look(0.5, 1.0, 1.0)
    assert Look.of(None, None, {"strokes": 1.0}, strokes=0.0) == Look()
    with pytest.raises(UsageError, match="--strokes"):
        Look.of(None, None, strokes=-1.0)


def _sunset(h=300, w=400):
    """A photo with a clipped sun (255 out to radius 40, a warm glow falling off beyond it, a textured
    land below) and what the model makes of it: the sun a flat, cool grey disc with a hard edge, the
    rest a hue-scrambled, textured version of the photo."""
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - 100, xx - 200)
    glow = np.clip(255 - 1.6 * np.maximum(r - 40, 0), 120, 255)
    photo = np.stack([glow, glow * 0.93, glow * 0.75], -1)
    photo[r <= 40] = 255
    photo[200:] = _photo(1, (w, h - 200)) * 0.75  # no highlights on the land
    photo = np.clip(photo + 0.5, 0, 255).astype(np.uint8)
    out = _hue_scrambled(photo)
    out[r <= 44] = (232, 238, 242)
    return photo, out, r


def test_highlights_keep_the_photos_light_where_it_is_nearly_white_and_nothing_else():
    photo, out, r = _sunset()
    got = apply_look(out, photo, Look(highlights=1.0)).astype(int)
    assert np.abs(got[r <= 30] - 255).max() <= 1  # the sun: the photo's white, not the model's grey disc
    far = r > 80  # where the photo is well below HIGHLIGHT_FROM (and the mask's blur does not reach)
    assert np.array_equal(got[far], out[far])
    half = apply_look(out, photo, Look(highlights=0.5)).astype(int)
    assert np.abs(half[r <= 30] - (out[r <= 30].astype(int) + 255) / 2).max() <= 1


def test_the_highlights_edge_is_soft_even_where_the_photo_clips_hard():
    """A lamp: 255 inside, 150 outside, no glow. The share kept falls over one pixel of the model's
    256 px image (sigma 400 / 256 px here), not in one step, so the kept light has no cut-out edge."""
    from cyclegan_convert.look import highlight_mask

    yy, xx = np.mgrid[0:300, 0:400]
    lamp = np.where((np.hypot(yy - 150, xx - 200) <= 50)[..., None], 255, 150).astype(np.uint8).repeat(3, axis=2)
    m = highlight_mask(lamp, (400, 300))
    assert m.shape == (300, 400) and m[150, 200] > 0.99 and m[150, 300] < 0.01
    assert np.abs(np.diff(m[150])).max() <= 1 / (np.sqrt(2 * np.pi) * 400 / 256) * 1.1  # a blurred step


def test_highlights_cost_nothing_without_highlights_and_agree_from_a_smaller_input():
    photo, out, r = _sunset()
    dark = (photo * 0.8).astype(np.uint8)  # nothing above 204
    assert apply_look(out, dark, Look(highlights=1.0)) is out or \
        np.array_equal(apply_look(out, dark, Look(highlights=1.0)), out)
    whole = apply_look(out, photo, Look(highlights=1.0)).astype(int)
    drafted = cv2.resize(photo, (200, 150), interpolation=cv2.INTER_AREA)  # --max-side's draft decode
    small = apply_look(out, drafted, Look(highlights=1.0)).astype(int)
    assert np.abs(small[r <= 30] - whole[r <= 30]).max() <= 3 and np.array_equal(small[r > 80], whole[r > 80])


def test_highlights_are_part_of_the_look_settings_and_its_description():
    assert Look(highlights=1.0).settings() == {"colors": 0.0, "strength": 1.0, "highlights": 1.0}
    assert "highlights" not in Look(colors=0.5, strokes=0.5).settings()  # outputs made before stay current
    assert Look(0.5, 1.0, 0.5, 1.0).describe() == "colors 0.5, strength 1, strokes 0.5, highlights 1"
    assert not Look(highlights=1.0).raw
    assert Look.of(None, None, {"colors": 0.5, "highlights": 1.0}) == Look(0.5, 1.0, 0.0, 1.0)
    assert Look.of(None, None, {"highlights": 1.0}, highlights=0.0) == Look()
    with pytest.raises(UsageError, match="--highlights"):
        Look.of(None, None, highlights=1.5)


def _outlined(w=512, h=256, edge=256):
    """A photo with one soft vertical edge at x = ``edge`` (an orange field, then a pale one, flat
    elsewhere) and what the model makes of it: the photo recoloured (an affine map of its luma per
    channel), a dark outline 2 px wide just left of the edge's ramp and a coloured fringe just right of
    it (a halo, as the model draws one: within one pixel of its 256 px image, 2 px here), and a
    stroke-like texture everywhere."""
    x = np.arange(w, dtype=np.float64)
    ramp = np.clip((x - edge + 2) / 4, 0, 1)  # a 4 px transition
    photo = (1 - ramp)[:, None] * np.array([200, 120, 40]) + ramp[:, None] * np.array([235, 225, 200])
    photo = np.clip(np.broadcast_to(photo, (h, w, 3)) + 0.5, 0, 255).astype(np.uint8)
    luma = photo.astype(np.float64) @ LUMA
    clean = luma[..., None] * np.array([0.9, 0.8, 0.6]) + np.array([20, 30, 60])
    ring = np.zeros((h, w, 3))
    ring[:, edge - 4:edge - 2] = (-60, -60, -40)
    ring[:, edge + 2:edge + 4] = (-40, 30, 60)
    texture = np.random.default_rng(1).normal(0, 6, (h, w))[..., None] * np.array([1.0, -0.5, 0.8])
    out = np.clip(clean + ring + texture + 0.5, 0, 255).astype(np.uint8)
    return photo, out, clean, ring


def test_edges_take_the_models_outline_off_the_photos_edge_and_keep_its_texture_elsewhere():
    from cyclegan_convert.look import photo_edges

    photo, out, clean, ring = _outlined()
    got = photo_edges(out, photo, 1.0).astype(np.float64)

    def outline(img: np.ndarray) -> float:
        """The sharpest line across the edge that the photo does not have: the difference from the clean
        recolouring, averaged down the rows (the texture averages out), less itself blurred over 4 px.
        The fit spreads an outline's darkness into the shade of its side; what it must take is the line."""
        res = (img - clean)[:, 236:276].mean(axis=0)
        return float(np.abs(res - cv2.GaussianBlur(res, (1, 0), sigmaX=1, sigmaY=4)).max())

    before, after = outline(out.astype(np.float64)), outline(got)
    assert after < 0.5 * before  # the outline and the fringe: the line halved at least (0.43 measured)
    far = np.zeros(out.shape[:2], bool)
    far[:, :200], far[:, 312:] = True, True  # the flat fields, beyond the fit's window and the mask's blur
    assert np.array_equal(got[far], out[far])  # the model's texture there, untouched
    for side in (slice(232, 250), slice(262, 280)):  # each side of the edge, off the outline: the model's colour
        assert np.abs(got[:, side].mean(axis=(0, 1)) - clean[:, side].mean(axis=(0, 1))).max() < 4
    half = outline(photo_edges(out, photo, 0.5).astype(np.float64))
    assert after + 0.3 * (before - after) < half < after + 0.7 * (before - after)


def test_edges_leave_an_output_that_follows_the_photo_as_it_was():
    """An output that is an affine function of the photo's luma per channel (a recolouring, no halo)
    comes back as it was, on a real photo's edges: the fit is exact there, and the maps enlarged from
    the fit's smaller size line up with the photo (a shift of one pixel fails)."""
    from cyclegan_convert.look import photo_edges

    photo = _photo(1, (1600, 1200))  # above EDGE_SIDE: the fit is made at 1024 x 768 and enlarged
    luma = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(np.float64)
    out = np.clip(luma[..., None] * np.array([0.7, 0.6, 0.5]) + np.array([40, 50, 70]) + 0.5, 0, 255).astype(np.uint8)
    got = photo_edges(out, photo, 1.0).astype(int)
    # a few levels at most, where the photo's contrast is near EDGE_EPS (the fit's slope shrinks there)
    assert np.abs(got - out).max() <= 8 and np.abs(got - out).mean() < 0.5  # measured 5 and 0.36
    shifted = photo_edges(out, np.roll(photo, 1, axis=1), 1.0).astype(int)
    assert np.abs(shifted - out).max() > 15  # what the bound above catches (measured 22)


def test_edges_leave_the_models_strokes_where_the_photo_is_all_edges():
    """Where the photo has contrast all around (foliage, bristles: here stripes 10 px apart over the
    whole image), the model's texture there is the painting: nothing is cleaned (EDGE_SPREAD)."""
    from cyclegan_convert.look import photo_edges

    x = np.arange(512)
    photo = np.broadcast_to((100 + 80 * (np.sin(2 * np.pi * x / 10) > 0))[None, :, None], (256, 512, 3))
    photo = np.ascontiguousarray(photo, dtype=np.uint8)
    texture = np.random.default_rng(2).normal(0, 8, (256, 512))[..., None] * np.array([1.0, -0.5, 0.8])
    out = np.clip(photo * 0.7 + 40 + texture + 0.5, 0, 255).astype(np.uint8)
    assert np.abs(photo_edges(out, photo, 1.0).astype(int) - out).mean() < 0.2
    lone = photo.copy()
    lone[:, :250], lone[:, 260:] = 100, 100  # one of the stripes alone: its two edges are cleaned
    lone_out = np.clip(lone * 0.7 + 40 + texture + 0.5, 0, 255).astype(np.uint8)
    assert np.abs(photo_edges(lone_out, lone, 1.0).astype(int) - lone_out)[:, 240:272].mean() > 1  # measured 1.9


def test_edges_from_a_smaller_input_agree_and_cost_nothing_on_a_flat_photo():
    from cyclegan_convert.look import photo_edges

    photo, out, clean, ring = _outlined()
    whole = photo_edges(out, photo, 1.0).astype(int)
    drafted = cv2.resize(photo, (256, 128), interpolation=cv2.INTER_AREA)  # --max-side's draft decode
    small = photo_edges(out, drafted, 1.0).astype(int)
    assert np.abs(small - whole).mean() < 1.0
    flat = np.full_like(photo, 128)
    assert photo_edges(out, flat, 1.0) is out


def test_edges_are_part_of_the_look_settings_and_its_description():
    assert Look(edges=1.0).settings() == {"colors": 0.0, "strength": 1.0, "edges": 1.0}
    assert "edges" not in Look(colors=0.5, strokes=0.5, highlights=1.0).settings()  # outputs made before stay current
    assert Look(0.5, 1.0, 0.5, 1.0, 1.0).describe() == "colors 0.5, strength 1, strokes 0.5, highlights 1, edges 1"
    assert not Look(edges=1.0).raw
    assert Look.of(None, None, {"colors": 0.5, "edges": 1.0}) == Look(0.5, 1.0, 0.0, 0.0, 1.0)
    assert Look.of(None, None, {"edges": 1.0}, edges=0.0) == Look()
    with pytest.raises(UsageError, match="--edges"):
        Look.of(None, None, edges=1.5)


@pytest.mark.parametrize("text, value", [("model", 0.0), ("keep", 1.0), ("0.3", 0.3), (" KEEP ", 1.0)])
def test_colors_words_and_fractions(text, value):
    assert parse_colors(text) == value


@pytest.mark.parametrize("colors, strength", [("blue", None), ("1.5", None), (None, -0.1), (None, 2.0)])
def test_bad_looks_are_usage_errors(colors, strength):
    with pytest.raises(UsageError, match="--colors|--strength"):
        Look.of(colors, strength)


def test_a_models_recommendation_is_the_default_and_the_user_overrides_each_part():
    card = {"colors": 0.5, "strength": 0.8}
    assert Look.of(None, None, card) == Look(0.5, 0.8)
    assert Look.of("model", None, card) == Look(0.0, 0.8)
    assert Look.of(None, 1.0, card) == Look(0.5, 1.0)
    assert Look.of(None, None, {}) == Look()  # pulled originals: raw output


@pytest.fixture
def model(tmp_path, tiny_generator):
    path = tmp_path / "m.pth"
    torch.save(tiny_generator.state_dict(), path)
    return path


def test_convert_applies_the_look_and_a_rerun_redoes_only_what_changed(tmp_path, model):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.fromarray(_photo(i, (64, 48))).save(src / f"{i}.png")
    ref = resolve_model(model=model)

    def run(out, **look):
        return Converter(ref, ConvertOptions(output=tmp_path / out, ext="png", **look)).run([str(src)])

    s = run("a")
    assert (s.converted, s.skipped) == (3, 0)
    raw = {i: np.asarray(Image.open(tmp_path / "a" / f"{i}.png")) for i in range(3)}
    assert (run("a", colors="model", strength=1.0).skipped) == 3  # the raw look, said explicitly: the same outputs
    s = run("a", colors="keep")
    assert (s.converted, s.skipped) == (3, 0)  # other settings: redone
    for i in range(3):
        kept, photo = np.asarray(Image.open(tmp_path / "a" / f"{i}.png")), _photo(i, (64, 48))
        assert _corr(_chroma_layout(kept, 8), _chroma_layout(photo, 8)) > \
            _corr(_chroma_layout(raw[i], 8), _chroma_layout(photo, 8)) + 0.2
    assert run("a", colors="keep").skipped == 3
    s = run("a", colors="keep", strength=0.0)
    assert s.converted == 3
    for i in range(3):
        assert np.abs(np.asarray(Image.open(tmp_path / "a" / f"{i}.png")).astype(int) - _photo(i, (64, 48))).max() <= 1


def test_a_store_models_recommended_look_is_used_and_said(tmp_path, model):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(_photo(0, (64, 48))).save(src / "0.png")
    entry = ModelEntry(target="monet", source="photo", origin="trained", arch="resnet_2blocks", ngf=8,
                       look={"colors": 1.0, "strength": 0.5})
    notes = []
    conv = Converter(ModelRef(model, "pytorch", entry), ConvertOptions(output=tmp_path / "out", ext="png"),
                     on_message=lambda kind, text: notes.append(text))
    assert conv.look == Look(1.0, 0.5)
    conv.run([str(src)])
    assert any(n.startswith("look: colors keep, strength 0.5 (the model's recommendation") for n in notes)
    got = np.asarray(Image.open(tmp_path / "out" / "0.png")).astype(int)
    plain = Converter(ModelRef(model, "pytorch", entry), ConvertOptions(output=tmp_path / "raw", ext="png",
                                                                         colors="model", strength=1.0))
    plain.run([str(src)])
    raw = np.asarray(Image.open(tmp_path / "raw" / "0.png")).astype(int)
    photo = _photo(0, (64, 48))
    assert abs(np.abs(got - photo).mean() - np.abs(raw - photo).mean() / 2) < 3  # strength 0.5: half way


def _cli_converter(tmp_path, model, photo: np.ndarray, name: str):
    """``run(*args)``: `ccv convert` of a folder holding ``photo`` as NAME.png with the generator file
    ``model`` into one output folder (so reruns skip or redo), -> (its output, the converted image)."""
    from typer.testing import CliRunner

    from cyclegan_convert.cli import app

    (tmp_path / "in").mkdir()
    Image.fromarray(photo).save(tmp_path / "in" / f"{name}.png")

    def run(*args):
        res = CliRunner().invoke(app, ["convert", str(tmp_path / "in"), "--model", str(model), "-o", str(tmp_path / "out"),
                                       *args], terminal_width=200)
        assert res.exit_code == 0, res.output
        return res.output, np.asarray(Image.open(tmp_path / "out" / f"{name}.png")).astype(int)

    return run


def test_convert_takes_highlights_from_the_command_line_and_redoes_outputs(tmp_path, model):
    """`ccv convert --highlights 1` reaches the look (the clipped sun comes out as the photo's white)
    and its settings key (the run with them redoes the file, a second run skips it)."""
    photo, _, r = _sunset()
    run = _cli_converter(tmp_path, model, photo, "sun")
    _, raw = run()
    assert np.abs(raw[r <= 30] - 255).max() > 20  # the tiny model does not keep white either
    said, kept = run("--highlights", "1")
    assert "highlights 1" in said and np.abs(kept[r <= 30] - 255).max() <= 1
    assert "recommendation" not in said  # a generator file recommends nothing: the rest is the raw output's
    assert np.array_equal(kept[r > 80], raw[r > 80])
    assert re.search(r"skipped\s*│\s*1\b", run("--highlights", "1")[0])


def test_convert_takes_edges_from_the_command_line_and_redoes_outputs(tmp_path, model):
    """`ccv convert --edges 1` reaches the look (the output changes along the photo's edge, not in its
    flat fields) and its settings key (the run with it redoes the file, a second run skips it)."""
    photo, _, _, _ = _outlined()
    run = _cli_converter(tmp_path, model, photo, "edge")
    _, raw = run()
    said, cleaned = run("--edges", "1")
    assert "edges 1" in said
    assert np.abs(cleaned[:, 248:264] - raw[:, 248:264]).max() > 5  # along the edge
    assert np.array_equal(cleaned[:, :150], raw[:, :150]) and np.array_equal(cleaned[:, 362:], raw[:, 362:])
    assert re.search(r"skipped\s*│\s*1\b", run("--edges", "1")[0])


def test_video_takes_the_look_too(tmp_path, model):
    """ccv video --strength 0 writes the input's frames back (up to the codec), --colors keep moves
    the frames' colour layout to the input's."""
    from typer.testing import CliRunner

    from cyclegan_convert.cli import app
    from pixels import psnr
    from videoclips import ClipSpec, make_clip, read_video

    clip = make_clip(tmp_path / "clip.mp4", ClipSpec(size=(96, 64), frames=4, pix_fmt="yuv444p"))
    src = read_video(clip)["frames"]
    outs = {}
    for name, args in {"raw": [], "input": ["--strength", "0"], "keep": ["--colors", "keep"]}.items():
        out = tmp_path / f"{name}.mp4"
        r = CliRunner().invoke(app, ["video", str(clip), "--model", str(model), "-o", str(out), "--crf", "0",
                                     "--pix-fmt", "yuv444p", "--colors", "model", "--strength", "1", *args],
                               terminal_width=200)
        assert r.exit_code == 0, r.output
        outs[name] = read_video(out)["frames"]
    for i, frame in enumerate(src):
        assert psnr(outs["input"][i], frame) >= 40 > psnr(outs["raw"][i], frame) + 10
        assert _corr(_chroma_layout(outs["keep"][i], 8), _chroma_layout(frame, 8)) > \
            _corr(_chroma_layout(outs["raw"][i], 8), _chroma_layout(frame, 8)) + 0.2
