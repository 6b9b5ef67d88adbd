"""The photo-to-Monet model bundled in the package: found offline, converts the sample photos, and
a pulled original `style_monet` takes its place until removed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cyclegan_convert.cli import app
from cyclegan_convert.look import RAW_FLAGS
from cyclegan_convert.pretrained import BASE_URL_ENV
from cyclegan_convert.store import BUNDLED_ROOT, ModelStore
from cyclegan_convert.weights import load_generator, sha256_file

from pretrained_server import serving, tiny_generator_bytes

pytestmark = pytest.mark.bundled
SAMPLES = Path(__file__).resolve().parent.parent / "cyclegan_convert" / "samples"


def ccv(*args):
    return CliRunner().invoke(app, list(args), terminal_width=200)


def test_bundled_monet_is_a_checked_generator_with_its_card():
    entry = ModelStore().find("monet")
    assert entry.origin == "bundled" and entry.path.parent == BUNDLED_ROOT
    assert entry.sha256 == sha256_file(entry.weights)
    net = load_generator(entry.weights)
    assert (net.ngf, net.n_blocks, net.upsample, net.notch) == (32, 6, "resize", (4, 32.0))
    assert entry.arch == "resnet_6blocks_resize_notch"
    card = entry.card
    assert card["steps_total"] >= 12000 and card["quality"] and card["verdict"]
    assert card["config"]["crop_size"] == 256 and card["fine_tuned_from"]["config"]["crop_size"] == 128  # its lineage
    assert entry.look == {"colors": 0.5, "strength": 1.0, "strokes": 0.5, "highlights": 1.0}  # the recommended look, chosen by measuring
    assert entry.weights.stat().st_size < 10e6  # a few MB in the package


def test_convert_samples_offline_with_the_bundled_model(tmp_path, monkeypatch):
    monkeypatch.setenv("CCV_OFFLINE", "1")  # a download attempt would fail the command
    out = tmp_path / "out"
    r = ccv("convert", str(SAMPLES), "--to", "monet", "-o", str(out))
    assert r.exit_code == 0, r.output
    photos = sorted(SAMPLES.glob("*.jpg"))
    for photo in photos:
        a = np.asarray(Image.open(photo).convert("RGB"), dtype=np.float32)
        b = np.asarray(Image.open(out / photo.name).convert("RGB"), dtype=np.float32)
        assert a.shape == b.shape
        assert np.abs(a - b).mean() > 8  # restyled, not passed through
        # the content is kept: the output's luminance follows the photo's
        la, lb = a.mean(2).ravel(), b.mean(2).ravel()
        assert np.corrcoef(la, lb)[0, 1] > 0.5


def _sample_outputs(tmp_path, *args) -> dict[str, np.ndarray]:
    out = tmp_path / "out"
    r = ccv("convert", str(SAMPLES), "--to", "monet", "-o", str(out), "--ext", "png", *RAW_FLAGS.split(), *args)
    assert r.exit_code == 0, r.output
    return {p.name: np.asarray(Image.open(out / (p.stem + ".png")).convert("RGB")) for p in sorted(SAMPLES.glob("*.jpg"))}


def test_the_bundled_model_runs_as_its_weights_say_in_fp32(tmp_path):
    """ccv's fp32 path on the bundled model is the plain fp32 network, notch included, up to kernel
    rounding. What it catches, measured on the samples: the notch dropped (44-52 dB), channels
    swapped (18-27 dB)."""
    from pixels import assert_same_pixels

    from test_end_to_end import plain_convert

    net = load_generator(ModelStore().find("monet").weights).eval()
    got = _sample_outputs(tmp_path, "--backend", "torch", "--precision", "fp32")
    for photo in sorted(SAMPLES.glob("*.jpg")):
        rgb = np.asarray(Image.open(photo).convert("RGB"))
        assert_same_pixels(got[photo.name], plain_convert(net, rgb), photo.name)


def test_the_default_path_stays_close_to_fp32(tmp_path):
    """The default (bf16 on CPUs with native bf16, fp32 elsewhere) against the plain fp32 network:
    bf16 measured 44 dB; a broken bf16 path or a channel swap falls far below."""
    from pixels import psnr

    from test_end_to_end import plain_convert

    net = load_generator(ModelStore().find("monet").weights).eval()
    got = _sample_outputs(tmp_path)
    for photo in sorted(SAMPLES.glob("*.jpg")):
        rgb = np.asarray(Image.open(photo).convert("RGB"))
        assert psnr(got[photo.name], plain_convert(net, rgb)) >= 38.0, photo.name


def test_a_pulled_style_monet_shadows_the_bundled_model_until_removed(monkeypatch):
    with serving({"style_monet.pth": tiny_generator_bytes()}) as srv:
        monkeypatch.setenv(BASE_URL_ENV, srv.url)
        r = ccv("pull", "style_monet")
    assert r.exit_code == 0, r.output
    assert "in place of the model bundled" in r.output
    assert ModelStore().find("monet").origin == "pulled"
    assert ccv("models", "rm", "monet", "--yes").exit_code == 0
    assert ModelStore().find("monet").origin == "bundled"
    r = ccv("models", "rm", "monet", "--yes")
    assert r.exit_code == 2 and "bundled" in r.output
