"""What `ccv convert` and `ccv video` write, pixel by pixel, against a plain conversion written here.

The reference does only what the paper's test script does, in a few lines of its own (float tensor
in [-1, 1], reflect pad to a multiple of 4, the generator, crop, round): a fault in the shared
normalise/pad/crop code of ``backends/base.py``, in batching, orientation, alpha or the video
colour round trip shows up here as lost decibels, on real photos of odd sizes. The floors are per
format: what the format's own coding costs, measured, with a small margin.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from typer.testing import CliRunner

from cyclegan_convert.cli import app
from cyclegan_convert.imaging import ORIENTATION_TAG

from conftest import PHOTOS


def plain_convert(generator: torch.nn.Module, rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (H, W, 3), written from scratch."""
    x = torch.from_numpy(np.array(rgb, dtype=np.float32)).permute(2, 0, 1)[None] / 127.5 - 1.0
    h, w = x.shape[-2:]
    x = F.pad(x, (0, (-w) % 4, 0, (-h) % 4), mode="reflect")
    with torch.no_grad():
        y = generator(x)[0, :, :h, :w]
    return ((y + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


@pytest.fixture
def model(tmp_path, tiny_generator):
    path = tmp_path / "m.pth"
    torch.save(tiny_generator.state_dict(), path)
    return path


def _photo(i: int, w: int, h: int) -> Image.Image:
    return Image.open(PHOTOS[i % len(PHOTOS)]).convert("RGB").resize((w, h), Image.BICUBIC)


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
        # the same pixels through the same encoder: nothing but the codec's rounding may differ
        assert psnr(got, encoded(expected, (out / name).suffix, tmp_path)) >= 60.0, name
    # PNG, lossless: every pixel within one step of the reference
    with Image.open(out / "odd.png") as im:
        assert np.abs(np.array(im).astype(int) - plain_convert(tiny_generator, inputs["odd.png"])).max() <= 1


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
    assert psnr(got, plain_convert(tiny_generator, upright)) >= 99.0


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
    assert psnr(got[..., :3], plain_convert(tiny_generator, rgb)) >= 99.0


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
