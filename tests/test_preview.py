"""`ccv preview`: a few photos spread over the inputs, each model once, each look, one labelled sheet."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cyclegan_convert.cli import app
from cyclegan_convert.look import Look
from cyclegan_convert.preview import make_preview, pick_spread, variants_of
from cyclegan_convert.resolve import resolve_model

from conftest import PHOTOS, psnr


@pytest.fixture
def model(tmp_path, tiny_generator):
    path = tmp_path / "m.pth"
    torch.save(tiny_generator.state_dict(), path)
    return path


@pytest.fixture
def folder(tmp_path):
    """Twelve photos in two folders, one of them damaged."""
    src = tmp_path / "trip"
    for i in range(12):
        sub = src / ("day1" if i < 6 else "day2")
        sub.mkdir(parents=True, exist_ok=True)
        Image.open(PHOTOS[i % len(PHOTOS)]).convert("RGB").resize((120 + 4 * i, 90)).save(sub / f"{i:02d}.jpg")
    (src / "day2" / "07.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return src


def test_pick_spread_takes_the_beginning_middle_and_end():
    names = [f"IMG_{i:04d}.jpg" for i in range(100)]
    assert pick_spread(names[::-1], 4) == [names[12], names[37], names[62], names[87]]
    assert pick_spread(["b", "c", "a"], 8) == ["a", "b", "c"]


def test_sheet_has_every_photo_with_each_variant_labelled(tmp_path, folder, model):
    ref = resolve_model(model=model)
    variants = variants_of([ref], ["model", "keep"], [1.0, 0.5])
    assert [v.look for v in variants] == [Look(0, 1), Look(0, 0.5), Look(1, 1), Look(1, 0.5)]
    assert [v.look for v in variants_of([ref], ["model"], None, None, [1.0], [0.0, 1.0])] == \
        [Look(highlights=1.0), Look(highlights=1.0, edges=1.0)]  # every part of the look is a choice
    r = make_preview([str(folder)], variants, tmp_path / "out" / "sheet.html", count=4, side=64)
    page = (tmp_path / "out" / "sheet.html").read_text()
    assert [p.rsplit("/", 1)[-1] for p in r.photos] == ["01.jpg", "04.jpg", "07.jpg", "10.jpg"]  # spread over both days
    assert r.failed and r.failed[0][0].endswith("07.jpg") and "07.jpg" in r.failed[0][1]
    assert f"class=\"failed\">{r.failed[0][1]}" in page.replace("&#x27;", "'")
    for label in ("input", "raw output", "colors model, strength 0.5", "colors keep, strength 1",
                  "colors keep, strength 0.5"):
        assert f"<figcaption>{label}</figcaption>" in page
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == 3 * 5 * 2  # three readable photos, the input and four variants each, whole and a crop
    for rel in images:
        with Image.open(tmp_path / "out" / rel) as im:
            assert im.size == (64, 64) if rel.endswith("_crop.jpg") else max(im.size) == 64, (rel, im.size)
    assert page.count("(100%, centre)</figcaption>") == 3 * 5
    # the raw variant is the model's output; strength 0.5 half way to the input
    inp, raw, half = (np.asarray(Image.open(tmp_path / "out" / images[k])).astype(int) for k in (0, 1, 2))
    assert abs(np.abs(half - inp).mean() - np.abs(raw - inp).mean() / 2) < 4
    assert not list((tmp_path / "out").glob(".*part*"))  # nothing half written left


def _jpeg(rgb, path):
    Image.fromarray(rgb).save(path, quality=92)  # as the sheet stores its pictures
    return np.asarray(Image.open(path)).astype(int)


@pytest.mark.parametrize("max_side", [None, 200])
def test_the_sheet_shows_what_convert_writes(tmp_path, model, max_side):
    """The model's texture and the strokes depend on the size it runs at, so the sheet must come
    from the size `ccv convert` runs at, not from the sheet's: each picture is convert's output
    scaled to the view, or its centre at 100%. (Run at the sheet's size and scaled up, as the first
    preview did, the crop is 22 dB from convert's here, the view 25 dB: both fail; the same pixels are inf.)"""
    from cyclegan_convert.imaging import resize_rgb, working_size

    photo = tmp_path / "in" / "p.jpg"
    photo.parent.mkdir()
    Image.open(PHOTOS[1]).convert("RGB").resize((400, 300)).save(photo, quality=95)
    look = ["--colors", "0.5", "--strokes", "2"]
    side = ["--max-side", str(max_side)] if max_side else []
    r = CliRunner().invoke(app, ["convert", str(photo), "--model", str(model), "-o", str(tmp_path / "out"),
                                 "--ext", "png", *look, *side])
    assert r.exit_code == 0, r.output
    written = np.asarray(Image.open(tmp_path / "out" / "p.png").convert("RGB"))
    assert written.shape == (300, 400, 3)
    ref = resolve_model(model=model)
    make_preview([str(photo)], variants_of([ref], ["0.5"], None, [2.0]), tmp_path / "s.html", side=96,
                 max_side=max_side)
    view = np.asarray(Image.open(tmp_path / "s_files" / "000_01.jpg")).astype(int)
    crop = np.asarray(Image.open(tmp_path / "s_files" / "000_01_crop.jpg")).astype(int)
    assert psnr(view, _jpeg(resize_rgb(written, *working_size(300, 400, 96)), tmp_path / "v.jpg")) >= 45
    assert psnr(crop, _jpeg(np.ascontiguousarray(written[102:198, 152:248]), tmp_path / "c.jpg")) >= 45


def test_cli_writes_the_sheet_and_says_where(tmp_path, folder, model):
    r = CliRunner().invoke(app, ["preview", str(folder), "--model", str(model), "--colors", "model,keep",
                                 "-n", "3", "--side", "48", "-o", str(tmp_path / "p.html")], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert re.search(r"3 photos x 2 variants in [\d.]+ s: open .*p\.html", r.output)
    assert (tmp_path / "p_files").is_dir()
    bad = CliRunner().invoke(app, ["preview", str(folder), "--model", str(model), "-o", str(tmp_path / "p.png")])
    assert bad.exit_code == 2 and "HTML" in bad.output


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(not _chromium(), reason="no Chromium here (apt-get install chromium) to look at the sheet")
def test_the_sheet_shows_its_pictures_in_a_real_browser(tmp_path, folder, model):
    """Headless Chromium renders the page: the pictures are there (not broken-image boxes) and the
    labels are drawn as text under them."""
    ref = resolve_model(model=model)
    make_preview([str(folder)], variants_of([ref], ["model", "keep"], None), tmp_path / "sheet.html", count=2,
                 side=96)
    shot = tmp_path / "shot.png"
    subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=800,600", (tmp_path / "sheet.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    page = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    background = np.array([0x1d, 0x1d, 0x1f])
    # the first row's three pictures: non-background, varied pixels (a photo), side by side
    busy = (np.abs(page - background).sum(axis=2) > 30)
    cols = busy[100:300].mean(axis=0)
    runs = np.flatnonzero(np.diff((cols > 0.3).astype(int)))  # edges of the picture columns
    assert len(runs) >= 6, runs  # three pictures: three starts and three ends
    assert page[100:300].std() > 20  # photos, not blank boxes
