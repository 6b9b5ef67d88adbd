"""What `ccv convert` and `ccv video` write, pixel by pixel, against a plain conversion written here.

The reference does only what the paper's test script does, in a few lines of its own (float tensor
in [-1, 1], reflect pad to a multiple of 4, the generator, crop, round): a fault in the shared
normalise/pad/crop code of ``backends/base.py``, in batching, orientation, alpha or the video
colour round trip shows up here as lost decibels, on real photos of odd sizes. The floors are per
format: what the format's own coding costs, measured, with a small margin. Where the pixels must be
the reference's, they are compared up to kernel rounding (``pixels.assert_same_pixels``), which
differs between CPUs; ``test_the_bounds_catch_real_defects`` shows that the defects these tests
are for still fail them.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, JpegImagePlugin
from typer.testing import CliRunner

from cyclegan_convert.cli import app
from cyclegan_convert.imaging import ORIENTATION_TAG

from conftest import PHOTOS
from pixels import assert_same_pixels, psnr, rounding_apart


def plain_convert(generator: torch.nn.Module, rgb: np.ndarray, pad_at: str = "end") -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (H, W, 3), written from scratch. ``pad_at="start"`` pads (and
    crops) at the top and left instead: a defect, for ``test_the_bounds_catch_real_defects``."""
    x = torch.from_numpy(np.array(rgb, dtype=np.float32)).permute(2, 0, 1)[None] / 127.5 - 1.0
    h, w = x.shape[-2:]
    ph, pw = (-h) % 4, (-w) % 4
    pad = (0, pw, 0, ph) if pad_at == "end" else (pw, 0, ph, 0)
    x = F.pad(x, pad, mode="reflect")
    with torch.no_grad():
        y = generator(x)[0]
    y = y[:, :h, :w] if pad_at == "end" else y[:, ph:, pw:]
    return ((y + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


@pytest.fixture
def model(tmp_path, tiny_generator):
    path = tmp_path / "m.pth"
    torch.save(tiny_generator.state_dict(), path)
    return path


def _photo(i: int, w: int, h: int) -> Image.Image:
    """A fixture photo at an odd size, untagged: one fixture is tagged ProPhoto RGB, which ccv
    converts to sRGB first (``colour_profiles``; tested in test_imaging), and the plain conversion
    here is the original's, which reads the file's numbers as they are."""
    img = Image.open(PHOTOS[i % len(PHOTOS)]).convert("RGB").resize((w, h), Image.BICUBIC)
    img.info.pop("icc_profile", None)
    return img


def _convert(*args) -> None:
    r = CliRunner().invoke(app, ["convert", *map(str, args)], terminal_width=200)
    assert r.exit_code == 0, r.output


# (name, odd size W x H, how it is saved, PSNR floor of the written file against the reference).
# The floors are the output format's own loss on this generator's noisy output (measured: PNG
# identical, JPEG q95 35.8 dB, WebP q90 21.4 dB); the reference encoded the same way must match.
IMAGES = [
    ("odd.png", (61, 45), {}, 99.0),
    ("odd.jpg", (77, 53), {"quality": 92}, 34.5),
    ("odd.webp", (50, 71), {"quality": 90}, 20.5),
    ("wide.png", (130, 9), {}, 99.0),  # one side just above the model's minimum
]
ENCODED_AS = {".png": ("PNG", {}), ".jpg": ("JPEG", {"quality": 95, "subsampling": 0}),
              ".webp": ("WEBP", {"quality": 90, "method": 4})}  # ccv's documented defaults


def encoded(rgb: np.ndarray, suffix: str, tmp_path) -> np.ndarray:
    """``rgb`` through the same codec and settings ccv uses for ``suffix``, decoded again."""
    fmt, kw = ENCODED_AS[suffix]
    path = tmp_path / f"reference{suffix}"
    Image.fromarray(rgb).save(path, format=fmt, **kw)
    with Image.open(path) as im:
        return np.array(im.convert("RGB"))


def test_convert_writes_what_a_plain_conversion_computes(tmp_path, model, tiny_generator):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    inputs = {}
    for i, (name, (w, h), save, _floor) in enumerate(IMAGES):
        _photo(i, w, h).save(src / name, **save)
        with Image.open(src / name) as im:
            inputs[name] = np.array(im.convert("RGB"))  # what the file holds after its own coding
    _convert(src, "--model", model, "-o", out, "--backend", "torch", "--precision", "fp32")
    for name, (w, h), _save, floor in IMAGES:
        with Image.open(out / name) as im:
            got = np.array(im.convert("RGB"))
        assert got.shape == (h, w, 3)
        expected = plain_convert(tiny_generator, inputs[name])
        assert psnr(got, expected) >= floor, name
        suffix = (out / name).suffix
        if suffix == ".png":  # lossless: the reference's pixels, up to kernel rounding
            assert_same_pixels(got, expected, name)
        else:  # the same pixels through the same encoder: the codec amplifies one-step differences
            assert psnr(got, encoded(expected, suffix, tmp_path)) >= LOSSY_SAME_CODEC_DB[suffix], name
        if suffix == ".jpg":  # ccv's JPEG settings, read from the file: q95 tables, 4:4:4
            with Image.open(out / name) as im, Image.open(tmp_path / "reference.jpg") as ref:
                assert im.quantization == ref.quantization, name
                assert JpegImagePlugin.get_sampling(im) == 0, name


# A lossy encoder turns a few one-step differences of its input into many small ones: the same
# pixels up to kernel rounding (2% of values one step off, the worst the rounding bound allows)
# re-encoded measured 41.4 dB (WebP q90) and 44.8 dB (JPEG q95) against the reference's encoding;
# the encoder one setting off measured far less: WebP q80 32.0, q95 36.8; JPEG q90 28.3, 4:2:0 21.4.
LOSSY_SAME_CODEC_DB = {".jpg": 40.0, ".webp": 38.5}


def _mutations(generator, rgb):
    """The defects the end-to-end tests are there to catch, each as the output it would write."""
    h, w = rgb.shape[:2]
    yield "padding at the top and left", plain_convert(generator, rgb, pad_at="start")
    yield "channels swapped (BGR)", plain_convert(generator, rgb[..., ::-1].copy())[..., ::-1]
    yield "crop one pixel off", plain_convert(generator, np.pad(rgb, ((1, 0), (1, 0), (0, 0)), mode="edge"))[:h, :w]
    yield "orientation not applied (the model saw it upside down)", \
        np.rot90(plain_convert(generator, np.rot90(rgb, 2).copy()), 2)
    if h != w:  # the model saw it sideways; the output turned upright
        yield "orientation not applied (sideways)", np.rot90(plain_convert(generator, np.rot90(rgb, 1).copy()), -1)


@pytest.mark.parametrize("size", [(61, 45), (67, 42), (50, 71)])  # each needs padding
def test_the_bounds_catch_real_defects(tiny_generator, size):
    """The rounding bound lets rounding through and fails every defect, on the tests' own sizes."""
    rgb = np.array(_photo(1, *size))
    expected = plain_convert(tiny_generator, rgb)
    rng = np.random.default_rng(0)
    rounded = expected.astype(int) + rng.choice([-1, 0, 1], expected.shape, p=[0.01, 0.98, 0.01])
    assert rounding_apart(rounded.clip(0, 255), expected)
    for what, wrong in _mutations(tiny_generator, rgb):
        assert wrong.shape == expected.shape, what
        assert not rounding_apart(wrong, expected), (what, psnr(wrong, expected))
        assert psnr(wrong, expected) < 45, (what, psnr(wrong, expected))  # far below, not at the edge


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied_before_the_model(tmp_path, model, tiny_generator, orientation):
    """A phone's portrait photo is stored sideways with a tag: the model must see it upright (its
    padding goes at the bottom and right of the upright image), and the output is stored upright."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    _photo(orientation, 67, 42).save(src / "phone.png", exif=exif)
    with Image.open(src / "phone.png") as im:
        upright = np.array(ImageOps.exif_transpose(im).convert("RGB"))
    _convert(src, "--model", model, "-o", out, "--backend", "torch", "--precision", "fp32")
    with Image.open(out / "phone.png") as im:
        assert im.getexif().get(ORIENTATION_TAG, 1) == 1
        got = np.array(im.convert("RGB"))
    assert got.shape == upright.shape
    assert_same_pixels(got, plain_convert(tiny_generator, upright), f"orientation {orientation}")


def _pad_at_start(rgb, h, w):  # backends.base.pad_rgb with the padding on the wrong side
    ph, pw = h - rgb.shape[-3], w - rgb.shape[-2]
    return np.pad(rgb, [(0, 0)] * (rgb.ndim - 3) + [(ph, 0), (pw, 0), (0, 0)], mode="reflect")


def test_ccv_with_a_padding_or_orientation_defect_fails_these_comparisons(tmp_path, model, tiny_generator,
                                                                           monkeypatch):
    """The same comparisons against ccv itself with a defect put in: padding at the top and left,
    and EXIF orientation ignored (upside down: same shape, other pixels)."""
    import cyclegan_convert.backends.base as base
    import cyclegan_convert.imaging as imaging

    src = tmp_path / "in"
    src.mkdir()
    _photo(0, 61, 45).save(src / "odd.png")
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 3
    _photo(3, 68, 44).save(src / "phone.png", exif=exif)  # a multiple of 4: no padding, only orientation
    with Image.open(src / "phone.png") as im:
        upright = np.array(ImageOps.exif_transpose(im).convert("RGB"))
    expected = {"odd.png": plain_convert(tiny_generator, np.array(Image.open(src / "odd.png"))),
                "phone.png": plain_convert(tiny_generator, upright)}
    _convert(src, "--model", model, "-o", tmp_path / "right", "--backend", "torch", "--precision", "fp32")
    with monkeypatch.context() as m:
        m.setattr(base, "pad_rgb", _pad_at_start)
        m.setattr(imaging.ImageOps, "exif_transpose", lambda im, **kw: im.copy())
        _convert(src, "--model", model, "-o", tmp_path / "wrong", "--backend", "torch", "--precision", "fp32")
    for name, want in expected.items():
        assert rounding_apart(np.array(Image.open(tmp_path / "right" / name).convert("RGB")), want), name
        wrong = np.array(Image.open(tmp_path / "wrong" / name).convert("RGB"))
        assert not rounding_apart(wrong, want) and psnr(wrong, want) < 30, (name, psnr(wrong, want))


def test_alpha_is_kept_and_colour_converted_underneath(tmp_path, model, tiny_generator):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    rgb = np.array(_photo(1, 45, 38))
    alpha = np.tile(np.linspace(0, 255, 45).astype(np.uint8), (38, 1))
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(src / "cutout.png")
    _convert(src, "--model", model, "-o", out, "--backend", "torch", "--precision", "fp32")
    with Image.open(out / "cutout.png") as im:
        assert im.mode == "RGBA"
        got = np.array(im)
    assert np.array_equal(got[..., 3], alpha)
    assert_same_pixels(got[..., :3], plain_convert(tiny_generator, rgb), "under alpha")


def test_default_backend_stays_close_to_the_plain_conversion(tmp_path, model, tiny_generator):
    """``--backend auto`` (bf16 on CPUs with native bf16, fp32 elsewhere), batches of several
    sizes: within the precision's floor of the fp32 reference on every image."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    sizes = [(64, 48), (63, 47), (64, 48), (33, 90), (62, 46)]  # two share a padded size with the first
    for i, (w, h) in enumerate(sizes):
        _photo(i, w, h).save(src / f"{i}.png")
    _convert(src, "--model", model, "-o", out, "--batch-size", "3")
    for i, (w, h) in enumerate(sizes):
        rgb = np.array(Image.open(src / f"{i}.png"))
        with Image.open(out / f"{i}.png") as im:
            assert psnr(np.array(im), plain_convert(tiny_generator, rgb)) >= 50.0, i  # measured 52.3-53.0


# -- video -------------------------------------------------------------------------------------------
def _video_case(tmp_path, model, tiny_generator, spec, *args):
    from videoclips import make_clip, read_video

    clip = make_clip(tmp_path / "clip.mp4", spec)
    out = tmp_path / "out.mp4"
    r = CliRunner().invoke(app, ["video", str(clip), "--model", str(model), "-o", str(out), "--backend", "torch",
                                 *args], terminal_width=200)
    assert r.exit_code == 0, r.output
    src, dst = read_video(clip), read_video(out)
    assert dst["times"] == src["times"]
    assert dst["audio"] == src["audio"]  # audio packets copied byte for byte, never through the model
    return [psnr(o, plain_convert(tiny_generator, i)) for i, o in zip(src["frames"], dst["frames"], strict=True)]


def test_video_frames_match_a_plain_conversion_of_the_decoded_frames(tmp_path, model, tiny_generator):
    """A 4:4:4 clip to a near-lossless output (crf 0, 4:4:4): what is left is the rounding of two
    YUV <-> RGB conversions (measured 49.2-49.4 dB; a frame shifted by one pixel or a wrong matrix
    loses far more)."""
    from videoclips import ClipSpec

    scores = _video_case(tmp_path, model, tiny_generator, ClipSpec(size=(142, 78), frames=6, pix_fmt="yuv444p"),
                         "--crf", "0", "--pix-fmt", "yuv444p")
    assert min(scores) >= 48.0, scores


def test_video_default_encoding_stays_close(tmp_path, model, tiny_generator):
    """The default output (x264 crf 18, the source's 4:2:0): the encoder's loss on this generator's
    noisy output (measured 20.5-20.9 dB), nothing more."""
    from videoclips import ClipSpec

    scores = _video_case(tmp_path, model, tiny_generator, ClipSpec(size=(142, 78), frames=6))
    assert min(scores) >= 20.0, scores
