"""Training data: folders as users have them (bad files, odd names, odd image modes)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan_convert.errors import DataError, UsageError
from cyclegan_convert.train.data import (UnpairedDataset, list_images, rank_positions, resolve_source,
                                         scan_domain)

from conftest import PAINTINGS, PHOTOS


def _uniform(mode: str, size=(40, 30), value=None) -> Image.Image:
    return Image.new(mode, size, value)


@pytest.fixture
def messy_domain(tmp_path) -> tuple[Path, dict[str, Path]]:
    """Good fixture photos under odd names and modes, plus broken files."""
    d = tmp_path / "my photos"
    (d / "sub dir" / "ünïcödé").mkdir(parents=True)
    files = {
        "space": d / "a photo with spaces.jpg",
        "unicode_upper": d / "sub dir" / "ünïcödé" / "Été à Giverny.JPG",
        "jpeg_upper": d / "IMG_0001.JPEG",
        "gray16": d / "gray16.PNG",
        "cmyk": d / "cmyk.jpg",
        "palette": d / "palette.png",
        "rgba": d / "rgba.png",
        "truncated": d / "truncated.jpg",
        "empty": d / "empty.jpg",
        "text": d / "notes.png",
    }
    shutil.copy(PHOTOS[0], files["space"])
    shutil.copy(PHOTOS[1], files["unicode_upper"])
    shutil.copy(PAINTINGS[0], files["jpeg_upper"])
    Image.fromarray(np.full((30, 40), 32768, dtype=np.uint16)).save(files["gray16"])  # 16-bit mid grey
    _uniform("CMYK", value=(0, 255, 255, 0)).save(files["cmyk"], quality=95)  # red in CMYK
    pal = _uniform("RGB", value=(0, 0, 255)).convert("P", palette=Image.ADAPTIVE)
    pal.save(files["palette"])
    _uniform("RGBA", value=(0, 255, 0, 128)).save(files["rgba"])
    data = PHOTOS[2].read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 3])
    files["empty"].write_bytes(b"")
    files["text"].write_text("not an image")
    (d / "readme.txt").write_text("ignored: not an image name")
    (d / ".hidden.jpg").write_bytes(PHOTOS[0].read_bytes())
    (d / "._resource.jpg").write_bytes(b"\0" * 10)  # macOS clutter
    return d, files


def test_listing_is_recursive_by_suffix_any_case(messy_domain):
    d, files = messy_domain
    assert set(list_images(d)) == set(files.values())


def test_listing_enters_symlinked_folders_once(tmp_path):
    """A domain assembled from links to folders elsewhere (another disk) is read through them; a link
    back up does not loop, and a hidden folder stays hidden."""
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / ".cache").mkdir(parents=True)
    shutil.copy(PHOTOS[0], elsewhere / "p0.jpg")
    shutil.copy(PHOTOS[1], elsewhere / ".cache" / "thumb.jpg")
    d = tmp_path / "trainB"
    d.mkdir()
    shutil.copy(PHOTOS[2], d / "own.jpg")
    (d / "flickr").symlink_to(elsewhere, target_is_directory=True)
    (d / "loop").symlink_to(d, target_is_directory=True)
    assert [p.relative_to(d).as_posix() for p in list_images(d)] == ["flickr/p0.jpg", "own.jpg"]


def test_unopenable_files_reported_once_and_skipped(messy_domain):
    d, files = messy_domain
    notes: list[str] = []
    good = scan_domain(d, "photo", notes.append)
    assert files["empty"] not in good and files["text"] not in good
    assert len(notes) == 2
    assert any(str(files["empty"]) in n and "empty file" in n for n in notes)
    assert any(str(files["text"]) in n and "not an image" in n for n in notes)
    assert files["truncated"] in good  # its header is fine: it fails only when decoded (see below)


def test_every_mode_becomes_correct_rgb(messy_domain):
    d, files = messy_domain
    names = ["gray16", "cmyk", "palette", "rgba"]
    ds = UnpairedDataset([files[n] for n in names], [files["space"]], load_size=32, crop_size=32, flip=False, seed=0)
    g = torch.Generator().manual_seed(0)
    got = {n: ds._load(ds.files_a, i, g, []) for i, n in enumerate(names)}
    for n, t in got.items():
        assert t.shape == (3, 32, 32) and t.dtype == torch.float32, n
    mean = {n: ((t.mean(dim=(1, 2)) + 1) * 127.5).round().tolist() for n, t in got.items()}
    assert mean["gray16"] == [128, 128, 128]  # 16-bit 32768 scaled, not clipped to white
    r, gr, b = mean["cmyk"]
    assert r > 200 and gr < 60 and b < 60
    assert mean["palette"] == [0, 0, 255]
    assert mean["rgba"] == [0, 255, 0]


def test_truncated_file_is_replaced_and_reported_by_the_item(messy_domain):
    d, files = messy_domain
    ds = UnpairedDataset([files["truncated"], files["space"]], [files["unicode_upper"]], 40, 32, True, seed=1)
    hits = [ds[(1, p)] for p in range(len(ds))]
    for a, b, bad in hits:
        assert a.shape == b.shape == (3, 32, 32) and torch.isfinite(a).all()
        assert -1 <= float(a.min()) and float(a.max()) <= 1
    reports = [bad for _, _, bad in hits if bad]
    assert reports and all(str(files["truncated"]) in r and "cannot decode" in r for r in reports)


def test_an_image_too_large_to_decode_is_skipped_and_reported(tmp_path, monkeypatch):
    from cyclegan_convert import decode_limits

    monkeypatch.setattr(decode_limits, "memory_budget", lambda: 40 * 30 * decode_limits.BYTES_PER_PIXEL)
    d = tmp_path / "a"
    d.mkdir()
    _uniform("RGB").save(d / "ok.png")
    _uniform("RGB", size=(80, 60)).save(d / "huge.png")  # 4800 px: over the budget
    said = []
    assert scan_domain(d, "A", said.append) == [d / "ok.png"]  # was a DecompressionBombError traceback
    assert len(said) == 1 and "huge.png" in said[0] and "too large" in said[0]


def test_domain_of_only_bad_files_is_an_error(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "x.jpg").write_bytes(b"")
    (d / "y.png").write_text("nope")
    with pytest.raises(DataError, match="none of the 2 images"):
        scan_domain(d, "A", lambda _: None)


def test_missing_or_empty_domains_are_errors(tmp_path):
    root = tmp_path / "horse2zebra"
    (root / "trainA").mkdir(parents=True)
    with pytest.raises(DataError, match="trainB"):
        resolve_source([root])
    (root / "trainB").mkdir()
    (root / "trainB" / "readme.txt").write_text("no images here")
    src = resolve_source([root])
    with pytest.raises(DataError, match="no images for domain zebra"):
        scan_domain(src.dir_b, "zebra", lambda _: None)
    with pytest.raises(DataError, match="no such folder"):
        resolve_source([tmp_path / "nope"])
    with pytest.raises(UsageError):
        resolve_source([root, root, root])


@pytest.mark.parametrize("folder,a,b", [("monet2photo", "monet", "photo"),
                                         ("summer2winter_yosemite", "summer", "winter_yosemite"),
                                         ("data2023", None, None), ("photos", None, None)])
def test_domain_names_from_dataroot(tmp_path, folder, a, b):
    root = tmp_path / folder
    (root / "trainA").mkdir(parents=True)
    (root / "trainB").mkdir()
    src = resolve_source([root])
    assert (src.a_name, src.b_name) == (a, b)
    assert src.dir_a == root / "trainA" and src.default_run_name == folder


def test_two_folders_name_the_domains(tmp_path):
    (tmp_path / "paintings").mkdir()
    (tmp_path / "my photos").mkdir()
    src = resolve_source([tmp_path / "paintings", tmp_path / "my photos"])
    assert (src.a_name, src.b_name) == ("paintings", "my photos")


def test_epoch_order_like_the_original():
    a, b = PAINTINGS[:2], PHOTOS[:4]  # |A| < |B|: an epoch is max(|A|, |B|) = 4 items
    ds = UnpairedDataset(a, b, 36, 32, True, seed=7)
    assert len(ds) == 4
    order = ds.order_a(1)
    assert sorted(order.tolist()) == [0, 1, 2, 3]  # a permutation of the epoch, then % |A|
    assert not torch.equal(ds.order_a(1), ds.order_a(2)) or not torch.equal(ds.order_a(2), ds.order_a(3))
    # reproducible item by item, whatever else was drawn before
    first = [ds[(1, p)] for p in range(4)]
    torch.manual_seed(123)
    again = [UnpairedDataset(a, b, 36, 32, True, seed=7)[(1, p)] for p in (3, 2, 1, 0)][::-1]
    for (a1, b1, _), (a2, b2, _) in zip(first, again):
        assert torch.equal(a1, a2) and torch.equal(b1, b2)
    # crops and flips differ between epochs
    assert any(not torch.equal(ds[(1, p)][0], ds[(2, p)][0]) for p in range(4))


def _roughness(x: torch.Tensor) -> float:
    return float((x[:, 1:] - x[:, :-1]).abs().mean() + (x[:, :, 1:] - x[:, :, :-1]).abs().mean())


def test_zoom_b_enlarges_only_b_and_only_when_asked():
    """--zoom-b: B crops come from the image enlarged 1x to ZOOM (log-uniform), so they are smoother
    (detail spread over more pixels, as in a photo converted at full size); A and runs without it
    see exactly the crops they always did; items stay reproducible."""
    a, b = PAINTINGS, PHOTOS  # 256 px, loaded at their own size: a zoom enlarges them, as in training
    plain = UnpairedDataset(a, b, 256, 64, True, seed=3)
    same = UnpairedDataset(a, b, 256, 64, True, seed=3, zoom_b=1.0)
    zoomed = UnpairedDataset(a, b, 256, 64, True, seed=3, zoom_b=4.0)
    keys = [(e, p) for e in range(1, 7) for p in range(len(plain))]
    rough, rough_zoomed = [], []
    for key in keys:
        a0, b0, _ = plain[key]
        a1, b1, _ = same[key]
        a4, b4, _ = zoomed[key]
        assert torch.equal(a0, a1) and torch.equal(b0, b1) and torch.equal(a0, a4)
        assert b4.shape == b0.shape
        again = zoomed[key][1]
        assert torch.equal(b4, again)
        rough.append(_roughness(b0))
        rough_zoomed.append(_roughness(b4))
    # the pixel-to-pixel change falls to 0.60 of the unzoomed crops' here (seeded: the same on every
    # CPU); up to 1.5x gives 0.72, up to 16x 0.35, no zoom 1.0
    ratio = np.mean(rough_zoomed) / np.mean(rough)
    assert 0.5 < ratio < 0.68, ratio
    assert sum(not torch.equal(plain[k][1], zoomed[k][1]) for k in keys) == len(keys)
    with pytest.raises(UsageError, match="--zoom-b"):
        UnpairedDataset(a, b, 72, 64, True, 0, zoom_b=0.5)


def test_crop_bigger_than_load_is_refused():
    with pytest.raises(UsageError, match="crop"):
        UnpairedDataset(PAINTINGS, PHOTOS, 32, 40, True, 0)


def test_rank_positions_cover_the_epoch_evenly():
    parts = [rank_positions(7, r, 3) for r in range(3)]
    assert [len(p) for p in parts] == [3, 3, 3]
    assert set(sum(parts, [])) == set(range(7))
    assert rank_positions(5, 0, 1) == [0, 1, 2, 3, 4]
