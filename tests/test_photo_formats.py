"""HEIC/HEIF, AVIF and camera RAW, in and out: files written here with pillow-heif, Pillow and (for a
DNG: a Bayer mosaic with DNG tags) tifffile, read back for pixels, orientation and metadata, and
converted end to end with a tiny generator."""
from __future__ import annotations

import functools
import io
import platform
import re
import struct
import sys

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms
from typer.testing import CliRunner

from cyclegan_convert import camera_raw, formats
from cyclegan_convert.cli import app
from cyclegan_convert.converter import ConvertOptions, Converter
from cyclegan_convert.errors import MediaError, UsageError
from cyclegan_convert.export.shapes import scan_sizes
from cyclegan_convert.files import Naming
from cyclegan_convert.imaging import ORIENTATION_TAG, DecodedImage, encode_image, read_image, read_rgb
from cyclegan_convert.resolve import resolve_model
from cyclegan_convert.train.data import UnpairedDataset, list_images, scan_domain

import tifffile  # the test extra's: it writes the DNG files

from conftest import PHOTOS

# pillow-heif and rawpy are dependencies wherever pyproject.toml's markers install them (the machines
# with wheels): there a failed import is a broken install and fails here. Elsewhere ccv runs without
# them (test_without_the_packages_... shows how), and these tests cannot run.
if platform.machine() in ("x86_64", "AMD64", "aarch64", "arm64"):
    import pillow_heif
    import rawpy
else:
    pillow_heif = pytest.importorskip("pillow_heif", reason=f"no pillow-heif wheel for {platform.machine()}")
    rawpy = pytest.importorskip("rawpy", reason=f"no rawpy wheel for {platform.machine()}")
pillow_heif.register_heif_opener()  # the tests write HEIC files before ccv has read any

# pyproject.toml allows a Pillow without AVIF (older than 11.3, or built without libavif): only the
# cases that read or write AVIF wait for it; HEIC and RAW are tested all the same.
needs_avif = pytest.mark.skipif(formats.avif_problem() is not None, reason=formats.avif_problem() or "")

RED, BLUE, GREEN, GREY = (200, 30, 30), (30, 50, 200), (50, 180, 50), (128, 128, 128)
MAKE, MODEL, ARTIST = 0x010F, 0x0110, 0x013B
EXIF_IFD, ISO, DATE_TAKEN, MAKER_NOTE, COLOR_SPACE = 0x8769, 0x8827, 0x9003, 0x927C, 0xA001
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="4"/></rdf:RDF></x:xmpmeta>')


def scene(w=96, h=64) -> np.ndarray:
    """Red left half, blue right half, a green band along the top, a grey patch in the blue half:
    where each lands after a rotation says which way the image was turned."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2] = RED
    a[:, w // 2:] = BLUE
    a[: h // 4] = GREEN
    a[h // 2:, 3 * w // 4:] = GREY
    return a


def upright_cw(a: np.ndarray) -> np.ndarray:
    """What a viewer shows for pixels stored with EXIF orientation 6 (turned 90 degrees clockwise)."""
    return np.rot90(a, -1)


def region_means(a: np.ndarray) -> dict[str, np.ndarray]:
    """Mean colour well inside each region of ``upright_cw(scene())``: (H=w, W=h) of the scene."""
    h, w = a.shape[:2]
    return {"red": a[h // 8: 3 * h // 8, w // 8: w // 2].reshape(-1, 3).mean(0),
            "blue": a[int(h * 0.55): int(h * 0.7), w // 8: int(w * 0.6)].reshape(-1, 3).mean(0),
            "green": a[h // 8: 7 * h // 8, w - w // 8:].reshape(-1, 3).mean(0),
            "grey": a[h - h // 8:, w // 3: w // 2 - 2].reshape(-1, 3).mean(0)}


@functools.lru_cache(maxsize=1)
def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def camera_exif(orientation: int) -> bytes:
    ex = Image.Exif()
    ex[ORIENTATION_TAG] = orientation
    ex[MAKE], ex[MODEL] = "Apple", "iPhone 15"
    ex[EXIF_IFD] = {ISO: 250, DATE_TAKEN: "2024:05:06 07:08:09"}
    return ex.tobytes()


def exif_dict(data: bytes) -> tuple[dict, dict]:
    ex = Image.Exif()
    ex.load(data)
    return dict(ex), ex.get_ifd(EXIF_IFD)


def write_phone_photo(path, fmt: str, orientation: int = 6, **save) -> None:
    """A photo as a phone stores it: pixels sideways, the turn in the container (HEIF irot/imir, written
    by libheif and libavif from the EXIF orientation), EXIF, an ICC profile and XMP."""
    Image.fromarray(scene()).save(path, format=fmt, exif=camera_exif(orientation), icc_profile=srgb_icc(),
                                  xmp=XMP, quality=save.pop("quality", 95), **save)


# -- a DNG from a Bayer mosaic ------------------------------------------------------------------------

def _srgb_to_linear(a: np.ndarray) -> np.ndarray:
    a = a / 255.0
    return np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)


_XYZ_TO_SRGB = [3.2404542, -1.5371385, -0.4985314, -0.9692660, 1.8760108, 0.0415560,
                0.0556434, -0.2040259, 1.0572252]


def write_dng(path, rgb: np.ndarray, orientation: int = 1, neutral=(1.0, 1.0, 1.0), makernote: int = 0) -> None:
    """A DNG whose camera sees linear sRGB primaries (ColorMatrix1 = XYZ -> linear sRGB) through a
    white balance of ``neutral`` (a channel with 0.5 records half the light: the camera's as-shot
    white balance must undo it), mosaicked RGGB in 12 bits. IFD0 holds the make, model, artist and
    orientation; an EXIF IFD (ISO, date taken, colour space 'uncalibrated', and a MakerNote of
    ``makernote`` bytes) is appended by hand, since tifffile writes no EXIF IFDs."""
    white = 4095
    cam = _srgb_to_linear(rgb.astype(np.float64)) * np.asarray(neutral)
    h, w = rgb.shape[:2]
    bayer = np.empty((h, w), np.uint16)
    q = lambda v: np.round(v * white).astype(np.uint16)  # noqa: E731
    bayer[0::2, 0::2], bayer[0::2, 1::2] = q(cam[0::2, 0::2, 0]), q(cam[0::2, 1::2, 1])
    bayer[1::2, 0::2], bayer[1::2, 1::2] = q(cam[1::2, 0::2, 1]), q(cam[1::2, 1::2, 2])

    def rationals(values):
        return [x for v in values for x in (int(round(v * 1_000_000)), 1_000_000)]

    def tags(exif_at: int):
        return [(50706, "B", 4, (1, 4, 0, 0), True), (50707, "B", 4, (1, 1, 0, 0), True),
                (50708, "s", 0, "ccv test camera", True), (33421, "H", 2, (2, 2), True),
                (33422, "B", 4, (0, 1, 1, 2), True), (50714, "H", 1, 0, True), (50717, "H", 1, white, True),
                (50721, 10, 9, rationals(_XYZ_TO_SRGB), True), (50778, "H", 1, 21, True),
                (50728, 5, 3, rationals(neutral), True), (MAKE, "s", 0, "TestMake", True),
                (MODEL, "s", 0, "TestModel", True), (ARTIST, "s", 0, "A. Photographer", True),
                (ORIENTATION_TAG, "H", 1, orientation, True), (EXIF_IFD + 1, "I", 1, exif_at, True)]

    def write(exif_at: int) -> int:
        # tifffile refuses to write tag 34665 (the EXIF IFD pointer): write it as 34666, then rename
        # it in place (no tag sits between them, so the directory stays sorted)
        tifffile.imwrite(path, bayer, photometric=32803, extratags=tags(exif_at), metadata=None, byteorder="<")
        data = path.read_bytes()
        entry = struct.pack("<HHI", EXIF_IFD + 1, 4, 1)
        assert data.count(entry) == 1
        path.write_bytes(data.replace(entry, struct.pack("<HHI", EXIF_IFD, 4, 1)))
        return len(data)

    size = write(0)
    at = size + size % 2
    assert write(at) == size  # the same layout: only the pointer's value changed
    date = b"2023:02:03 04:05:06\0"
    entries = [(ISO, 3, 1, struct.pack("<HH", 400, 0)), (DATE_TAKEN, 2, len(date), None)]
    if makernote:
        entries.append((MAKER_NOTE, 7, makernote, None))
    entries.append((COLOR_SPACE, 3, 1, struct.pack("<HH", 0xFFFF, 0)))
    blobs = {DATE_TAKEN: date, MAKER_NOTE: b"Nikon\0" + bytes(makernote - 6) if makernote else b""}
    data_at = at + 2 + 12 * len(entries) + 4
    ifd, extra = struct.pack("<H", len(entries)), b""
    for tag, typ, count, inline in entries:
        if inline is None:
            inline = struct.pack("<I", data_at + len(extra))
            extra += blobs[tag]
        ifd += struct.pack("<HHI", tag, typ, count) + inline
    with open(path, "ab") as f:
        f.write(b"\0" * (at - size) + ifd + struct.pack("<I", 0) + extra)


# -- reading ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, name", [("HEIF", "IMG_0001.HEIC"), pytest.param("AVIF", "photo.avif", marks=needs_avif)])
def test_heic_and_avif_read_upright_with_exif_icc_and_xmp(tmp_path, fmt, name):
    p = tmp_path / name
    write_phone_photo(p, fmt)
    img = read_image(p)
    want = upright_cw(scene())
    assert img.size == want.shape[:2] == (96, 64)  # turned: the stored 96x64 is shown 64 wide
    got, ref = region_means(img.rgb), region_means(want)
    for region in ref:  # lossy codecs: each region within a few levels of its colour
        assert np.abs(got[region] - ref[region]).max() < 8, (region, got[region], ref[region])
    ifd0, sub = exif_dict(img.exif)
    assert ifd0[ORIENTATION_TAG] == 1 and ifd0[MAKE] == "Apple" and ifd0[MODEL] == "iPhone 15"
    assert sub[ISO] == 250 and sub[DATE_TAKEN] == "2024:05:06 07:08:09"
    assert img.icc == srgb_icc()
    assert img.xmp is not None and b'xmp:Rating="4"' in img.xmp
    assert np.array_equal(np.asarray(read_rgb(p)), img.rgb)  # training reads the same pixels

    out = tmp_path / "out.jpg"  # carried like a JPEG's
    encode_image(img, out, "JPEG")
    with Image.open(out) as o:
        assert o.size == (64, 96) and o.info["icc_profile"] == srgb_icc()
        assert o.getexif()[MAKE] == "Apple" and o.getexif()[ORIENTATION_TAG] == 1


def test_multi_image_heic_reads_the_primary_image_and_says_so(tmp_path):
    p = tmp_path / "burst.heic"
    first, primary, third = (Image.new("RGB", size, c) for size, c in (((32, 24), RED), ((40, 20), BLUE), ((16, 16), GREEN)))
    first.save(p, save_all=True, append_images=[primary, third], primary_index=1, quality=90)
    img = read_image(p)
    assert img.size == (20, 40) and np.abs(img.rgb.reshape(-1, 3).mean(0) - BLUE).max() < 8
    assert img.frames == 3 and img.frames_note() == "3 images in one HEIF file; only the primary image is converted"
    assert "only the first" in DecodedImage(img.rgb, frames=2, format="WEBP").frames_note()


def test_dng_developed_upright_with_the_camera_white_balance_and_its_exif(tmp_path):
    p = tmp_path / "DSC_0001.DNG"
    write_dng(p, scene(), orientation=6, neutral=(0.5, 1.0, 0.8), makernote=70_000)
    with rawpy.imread(str(p)) as raw:  # LibRaw itself takes it for a DNG with this white balance
        assert raw.sizes.flip == 6 and raw.color_desc == b"RGBG"
        assert np.allclose(raw.camera_whitebalance[:3], [2.0, 1.0, 1.25], rtol=1e-3)
    img = read_image(p)
    assert img.format == "RAW" and img.bits == 16 and img.rgb.dtype == np.uint8
    assert img.size == (96, 64)  # orientation 6 applied
    got = region_means(img.rgb)
    # LibRaw brightens (1% of pixels may clip), so compare hues, not levels
    assert got["red"][0] > 3 * got["red"][1:].max()
    assert got["blue"][2] > 2 * got["blue"][:2].max()
    assert got["green"][1] > 2 * max(got["green"][0], got["green"][2])
    # grey stays grey only with the camera's white balance (red recorded at half, blue at 0.8)
    assert np.ptp(got["grey"]) < 0.06 * got["grey"].mean(), got["grey"]

    ifd0, sub = exif_dict(img.exif)
    assert (ifd0[MAKE], ifd0[MODEL], ifd0[ARTIST], ifd0[ORIENTATION_TAG]) == ("TestMake", "TestModel", "A. Photographer", 1)
    assert 50706 not in ifd0 and 0x0111 not in ifd0  # DNG version, raw strip offsets: not the output's
    assert sub[ISO] == 400 and sub[DATE_TAKEN] == "2023:02:03 04:05:06"
    assert MAKER_NOTE not in sub and sub[COLOR_SPACE] == 1  # 70 KB of offsets into the RAW; developed to sRGB
    assert read_image(p, metadata=False).exif is None

    out = tmp_path / "o.jpg"  # the 70 KB MakerNote would not fit a JPEG's EXIF segment
    encode_image(img, out, "JPEG")
    with Image.open(out) as o:
        assert o.getexif()[MAKE] == "TestMake" and o.getexif().get_ifd(EXIF_IFD)[ISO] == 400


def test_raw_written_as_16_bit_tiff_with_its_exif(tmp_path):
    p = tmp_path / "a.dng"
    write_dng(p, scene(), orientation=6)
    img = read_image(p)
    out = tmp_path / "a.tif"
    encode_image(img, out, "TIFF")
    back = tifffile.imread(out)  # another reader than ours
    assert back.dtype == np.uint16 and back.shape == (96, 64, 3)
    assert np.array_equal(back, img.rgb.astype(np.uint16) * 257)
    with Image.open(out) as o:  # and Pillow: 48-bit RGB read down to 8 bits
        assert np.array_equal(np.asarray(o.convert("RGB")), img.rgb)
        assert o.getexif()[MAKE] == "TestMake" and o.getexif()[ORIENTATION_TAG] == 1
        assert o.getexif().get_ifd(EXIF_IFD)[ISO] == 400


def test_training_reads_raw_at_half_size_when_it_is_shrunk_anyway(tmp_path):
    p = tmp_path / "a.dng"
    write_dng(p, scene(192, 128), orientation=6)
    assert read_rgb(p).size == (128, 192)
    assert read_rgb(p, min_side=64).size == (64, 96)  # half of 128x192, still at least 64
    assert read_rgb(p, min_side=65).size == (128, 192)  # half would be too small


# -- writing ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, suffix", [pytest.param("AVIF", ".avif", marks=needs_avif), ("HEIF", ".heic")])
def test_avif_and_heic_outputs_keep_alpha_exif_icc_xmp_and_quality(tmp_path, fmt, suffix):
    alpha = np.tile(np.linspace(0, 255, 96).astype(np.uint8), (64, 1))
    img = DecodedImage(scene(), alpha=alpha, exif=camera_exif(1), icc=srgb_icc(), xmp=XMP)
    sizes = {}
    for q in (30, 95):
        out = tmp_path / f"q{q}{suffix}"
        encode_image(img, out, fmt, quality=q)
        sizes[q] = out.stat().st_size
    with Image.open(tmp_path / f"q95{suffix}") as o:  # Pillow (pillow-heif for HEIC) opens it
        assert o.format == fmt and o.mode == "RGBA" and o.size == (96, 64)
        assert np.abs(np.asarray(o)[..., 3].astype(int) - alpha).max() <= 3
        assert o.getexif()[MAKE] == "Apple" and o.info["icc_profile"] == srgb_icc()
        assert b'xmp:Rating="4"' in o.info["xmp"]
    assert sizes[30] < sizes[95]  # --quality reaches the encoder


@pytest.mark.parametrize("fmt, suffix, codec", [pytest.param("AVIF", ".avif", "av1", marks=needs_avif),
                                                ("HEIF", ".heic", "hevc")])
def test_avif_and_heic_outputs_open_in_another_decoder(tmp_path, fmt, suffix, codec):
    """Files that open elsewhere: FFmpeg (through PyAV, a ccv dependency) has its own HEIF/AVIF
    demuxer and its own AV1 (dav1d) and HEVC decoders, none of them libavif's or libheif's."""
    import av

    if av.library_versions["libavformat"] < (61, 7):  # FFmpeg 7.1 first read HEIF image items
        pytest.skip("this PyAV's FFmpeg is older than 7.1")
    out = tmp_path / f"o{suffix}"
    encode_image(DecodedImage(scene(), exif=camera_exif(1)), out, fmt, quality=92)
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        assert codec in stream.codec_context.codec.name
        frame = next(c.decode(stream)).to_ndarray(format="rgb24")
    assert frame.shape == (64, 96, 3)
    assert np.abs(frame.astype(int) - scene()).mean() < 3


# -- damaged files and missing packages ---------------------------------------------------------------

@pytest.mark.parametrize("fmt, reason", [("HEIF", r"truncated \(its boxes claim [\d,]+ bytes, the file has [\d,]+\)"),
                                         pytest.param("AVIF", r"truncated \(its boxes claim", marks=needs_avif),
                                         ("RAW", "cannot decode the RAW data")])
def test_damaged_heic_avif_and_raw_files_raise_one_line_naming_the_file(tmp_path, fmt, reason):
    ok = tmp_path / {"HEIF": "ok.heic", "AVIF": "ok.avif", "RAW": "ok.dng"}[fmt]
    if fmt == "RAW":
        write_dng(ok, scene())
    else:
        write_phone_photo(ok, fmt)
    data = ok.read_bytes()
    (tmp_path / f"cut_{ok.name}").write_bytes(data[: len(data) // 2])
    misnamed = ((f"cut_{ok.stem}.jpg", reason),) if fmt != "RAW" else ()  # the content decides, not the name
    (tmp_path / f"cut_{ok.stem}.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.cr2").write_text("not a raw file at all " * 10)
    (tmp_path / "empty.nef").write_bytes(b"")
    for name, reason in misnamed + ((f"cut_{ok.name}", reason), ("text.cr2", "not a RAW file"),
                         ("empty.nef", "empty file"), ("missing.arw", "no such file")):
        with pytest.raises(MediaError, match=reason) as e:
            read_image(tmp_path / name)
        assert str(e.value).startswith(str(tmp_path / name)) and "\n" not in str(e.value)


@pytest.fixture
def without_heif_and_rawpy(monkeypatch):
    """As on a platform without wheels for them: importing either fails."""
    monkeypatch.setitem(sys.modules, "pillow_heif", None)
    monkeypatch.setitem(sys.modules, "rawpy", None)
    monkeypatch.setattr(formats, "_missing", {})


@pytest.fixture
def model(tmp_path, tiny_generator):
    path = tmp_path / "m.pth"
    torch.save(tiny_generator.state_dict(), path)
    return path


def test_without_the_packages_their_files_fail_alone_and_say_what_to_install(tmp_path, model, without_heif_and_rawpy):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(scene()).save(src / "a.jpg")
    (src / "b.heic").write_bytes(b"\0\0\0\x18ftypheic" + bytes(40))
    (src / "c.dng").write_bytes(b"II*\0" + bytes(40))
    with pytest.raises(MediaError, match=r"b\.heic: cannot read HEIC/HEIF: the pillow-heif package is not installed \(pip install pillow-heif\)"):
        read_image(src / "b.heic")
    with pytest.raises(MediaError, match=r"c\.dng: cannot read camera RAW: the rawpy package is not installed"):
        read_image(src / "c.dng")
    with pytest.raises(UsageError, match="--ext heic: the pillow-heif package is not installed"):
        Naming("heic")
    s = Converter(resolve_model(model=model), ConvertOptions(output=tmp_path / "out")).run([str(src)])
    assert s.converted == 1 and (tmp_path / "out" / "a.jpg").is_file()
    assert sorted(p.name for p, _ in s.failed) == ["b.heic", "c.dng"]
    assert all(("pillow-heif" in m) if p.suffix == ".heic" else ("rawpy" in m) for p, m in s.failed)


# -- end to end: ccv convert, ccv train's data, ccv export --for --------------------------------------

def _ccv(*args):
    return CliRunner().invoke(app, ["convert", *map(str, args)], terminal_width=200)


@pytest.fixture
def camera_folder(tmp_path):
    """A memory card: an iPhone folder (HEIC, AVIF) and a RAW folder (two DNGs)."""
    if formats.avif_problem():
        pytest.skip(formats.avif_problem())
    src = tmp_path / "card"
    (src / "iphone").mkdir(parents=True)
    (src / "raw").mkdir()
    write_phone_photo(src / "iphone" / "IMG_0001.HEIC", "HEIF")
    write_phone_photo(src / "iphone" / "IMG_0002.avif", "AVIF")
    write_dng(src / "raw" / "DSC_0001.DNG", scene(), orientation=6)
    write_dng(src / "raw" / "DSC_0002.dng", scene(), orientation=1)
    return src


def test_convert_heic_avif_and_dng_folders_keeping_orientation_and_metadata(camera_folder, model, tmp_path):
    before = {p: p.read_bytes() for p in camera_folder.rglob("*") if p.is_file()}
    r = _ccv(camera_folder, "--model", model, "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if not p.name.startswith(".")) == [
        "iphone", "iphone/IMG_0001.HEIC", "iphone/IMG_0002.avif", "raw", "raw/DSC_0001.tif", "raw/DSC_0002.tif"]
    notes = re.findall(r"a camera RAW cannot be written back", r.output)
    assert len(notes) == 1 and "16-bit TIFF" in r.output  # said once for two RAW files
    for rel, fmt in (("iphone/IMG_0001.HEIC", "HEIF"), ("iphone/IMG_0002.avif", "AVIF")):
        with Image.open(out / rel) as o:
            assert o.format == fmt and o.size == (64, 96)  # upright
            assert o.getexif()[MAKE] == "Apple" and o.getexif().get(ORIENTATION_TAG, 1) == 1
            assert o.info["icc_profile"] == srgb_icc()
    for name, size in (("DSC_0001.tif", (96, 64, 3)), ("DSC_0002.tif", (64, 96, 3))):
        t = tifffile.imread(out / "raw" / name)
        assert t.dtype == np.uint16 and t.shape == size and not (t % 257).any()
        with Image.open(out / "raw" / name) as o:
            assert o.getexif()[MODEL] == "TestModel" and o.getexif().get_ifd(EXIF_IFD)[ISO] == 400
    assert {p: p.read_bytes() for p in camera_folder.rglob("*") if p.is_file()} == before  # inputs untouched

    r = _ccv(camera_folder, "--model", model, "-o", tmp_path / "avif", "--ext", "avif", "--quality", "70")
    assert r.exit_code == 0, r.output
    outs = sorted((tmp_path / "avif").rglob("*.avif"))
    assert [p.name for p in outs] == ["IMG_0001.avif", "IMG_0002.avif", "DSC_0001.avif", "DSC_0002.avif"]
    for p in outs:
        with Image.open(p) as o:
            o.load()
            assert o.format == "AVIF" and o.getexif()[MAKE] in ("Apple", "TestMake")
            assert o.size == ((64, 96) if p.stem != "DSC_0002" else (96, 64))
    assert "cannot be written back" not in r.output  # --ext avif: nothing to say about RAW


def test_a_damaged_heic_fails_alone_in_a_convert_run(camera_folder, model, tmp_path):
    data = (camera_folder / "iphone" / "IMG_0001.HEIC").read_bytes()
    (camera_folder / "iphone" / "IMG_0003.HEIC").write_bytes(data[: len(data) // 3])
    r = _ccv(camera_folder, "--model", model, "-o", tmp_path / "out", "--ext", "jpg")
    assert r.exit_code == 1
    assert "IMG_0003.HEIC: truncated (its boxes claim" in r.output
    assert len(list((tmp_path / "out").rglob("*.jpg"))) == 4


def test_training_and_export_find_and_read_the_same_formats(camera_folder):
    (camera_folder / "raw" / "DSC_0003.NEF").write_bytes(b"II*\0" + bytes(40))  # upper case, and broken
    files = list_images(camera_folder)
    assert [p.name for p in files] == ["IMG_0001.HEIC", "IMG_0002.avif", "DSC_0001.DNG", "DSC_0002.dng", "DSC_0003.NEF"]
    skipped: list[str] = []
    good = scan_domain(camera_folder, "A", skipped.append)
    assert len(good) == 4 and len(skipped) == 1 and "DSC_0003.NEF" in skipped[0]
    ds = UnpairedDataset(good, good, load_size=32, crop_size=32, flip=False, seed=0)
    for i in range(4):  # every file decodes to a training tensor
        a, _, bad = ds[(0, i)]
        assert a.shape == (3, 32, 32) and not bad
    assert sorted(scan_sizes(camera_folder)) == [(64, 96), (96, 64), (96, 64), (96, 64)]


# -- EXIF from the other RAW containers ---------------------------------------------------------------
# Built here from the containers' published layouts (no camera files are available offline): ORF and
# RW2 are TIFF with their own magic, RAF keeps EXIF in its embedded JPEG, CR3 in Canon's CMT boxes.

def _tiff(ex: Image.Exif) -> bytes:
    return ex.tobytes()[6:]  # without the "Exif\0\0" of a JPEG segment


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


@pytest.mark.parametrize("container", ["ORF", "RW2", "RAF", "CR3"])
def test_exif_is_found_in_orf_rw2_raf_and_cr3_containers(container):
    ex = Image.Exif()
    ex[MAKE], ex[MODEL], ex[ORIENTATION_TAG] = "Maker", "Body", 8
    ex[EXIF_IFD] = {ISO: 800, MAKER_NOTE: b"x" * 100}
    if container in ("ORF", "RW2"):  # big-endian ORF (Olympus also writes IIRO), little-endian RW2
        ex.endian = ">" if container == "ORF" else "<"
        tiff = _tiff(ex)
        data = (b"MMOR" if container == "ORF" else b"IIU\0") + tiff[4:]
    elif container == "RAF":
        jpeg = io.BytesIO()
        Image.new("RGB", (16, 16)).save(jpeg, "JPEG", exif=ex.tobytes())
        head = b"FUJIFILMCCD-RAW 0201FF383501".ljust(84, b"\0")
        data = head + struct.pack(">II", 100, len(jpeg.getvalue())) + bytes(8) + jpeg.getvalue()
    else:
        ifd0 = Image.Exif()
        ifd0[MAKE], ifd0[MODEL], ifd0[ORIENTATION_TAG] = "Maker", "Body", 8
        sub = Image.Exif()
        sub[ISO] = 800
        canon = camera_raw._CANON_UUID + _box(b"CNCV", b"CanonCR3_001/00.09.00/00.00.00") + \
            _box(b"CMT1", _tiff(ifd0)) + _box(b"CMT2", _tiff(sub))
        data = _box(b"ftyp", b"crx \0\0\0\1crx isom") + _box(b"moov", _box(b"uuid", canon)) + _box(b"mdat", bytes(64))
    ifd0_out, sub_out = exif_dict(camera_raw.exif_of(data))
    assert (ifd0_out[MAKE], ifd0_out[MODEL], ifd0_out[ORIENTATION_TAG]) == ("Maker", "Body", 1)
    assert sub_out[ISO] == 800 and MAKER_NOTE not in sub_out


def test_unreadable_raw_exif_is_no_exif_not_a_failure():
    assert camera_raw.exif_of(b"II*\0" + b"\xff" * 20) is None
    assert camera_raw.exif_of(b"FUJIFILMCCD-RAW " + bytes(100)) is None
    assert camera_raw.exif_of(bytes(64)) is None


# -- name and content ---------------------------------------------------------------------------------

def test_files_are_read_by_their_content_and_a_disagreeing_name_is_said(tmp_path, model):
    """A JPEG named .nef failed as "cannot decode the RAW data" while a JPEG named .heic converted:
    the content decides, and the note says that name and content disagree."""
    jpeg = tmp_path / "DSC_0001.nef"
    Image.fromarray(scene()).save(jpeg, format="JPEG", quality=95)
    img = read_image(jpeg)
    assert img.format == "JPEG" and img.size == (64, 96)
    assert img.note == "named .nef but its content is JPEG: read as JPEG"
    assert np.array_equal(np.asarray(read_rgb(jpeg)), img.rgb)  # training reads it the same way
    heic = tmp_path / "IMG_0001.jpg"
    write_phone_photo(heic, "HEIF")
    img = read_image(heic)
    assert img.format == "HEIF" and img.size == (96, 64) and "its content is HEIF" in img.note  # turned upright
    dng = tmp_path / "a.dng"  # a DNG's content is a TIFF: the name decides, and nothing is said
    write_dng(dng, scene())
    assert formats.format_of(dng) == ("RAW", "")
    assert read_image(dng).format == "RAW" and read_image(dng).note == ""
    # through ccv convert: converted, the note shown, output named by the file's name (--ext same)
    src = tmp_path / "card"
    src.mkdir()
    jpeg.rename(src / jpeg.name)
    r = CliRunner().invoke(app, ["convert", str(src), "--model", str(model)], terminal_width=200)
    assert r.exit_code == 0, r.output
    assert "named .nef but its content is JPEG" in r.output and (tmp_path / "card_m" / "DSC_0001.tif").is_file()


@pytest.mark.parametrize("fmt", ["HEIF", pytest.param("AVIF", marks=needs_avif)])
def test_hdr_stills_are_refused_as_video_refuses_them_and_sdr_ones_read(tmp_path, fmt):
    """An HDR AVIF (PQ, BT.2020, 10-bit) was written as 8-bit sRGB with no note; `ccv video`
    refuses HDR with a reason, and so does a still now, alone among the other files."""
    suffix = ".heic" if fmt == "HEIF" else ".avif"
    scene_img = Image.fromarray(scene())
    for name, trc in (("pq", 16), ("hlg", 18), ("sdr", 1)):
        nclx = {"color_primaries": 9 if trc != 1 else 1, "transfer_characteristics": trc,
                "matrix_coefficients": 9 if trc != 1 else 1, "full_range_flag": 1}
        if fmt == "HEIF":
            scene_img.save(tmp_path / f"{name}{suffix}", quality=90, nclx_profile=nclx)
        else:  # Pillow's AVIF writer has no colour-box option: libavif's own tags, set in the box by hand
            scene_img.save(tmp_path / f"{name}{suffix}", quality=90)
            data = bytearray((tmp_path / f"{name}{suffix}").read_bytes())
            at = data.find(b"colrnclx")
            assert at > 0
            data[at + 8:at + 14] = struct.pack(">HHH", nclx["color_primaries"], trc, nclx["matrix_coefficients"])
            (tmp_path / f"{name}{suffix}").write_bytes(bytes(data))
    with pytest.raises(MediaError, match=rf"pq{suffix}: an HDR image \(PQ \(SMPTE ST 2084\) transfer\); .*convert it to SDR first"):
        read_image(tmp_path / f"pq{suffix}")
    with pytest.raises(MediaError, match=r"HLG \(ARIB STD-B67\)"):
        read_image(tmp_path / f"hlg{suffix}")
    assert read_image(tmp_path / f"sdr{suffix}").size == (64, 96)


def test_a_raw_that_develops_to_one_flat_colour_fails_instead_of_converting(tmp_path):
    """A truncated DNG developed to a flat grey 12 MP TIFF and a film scanner's NEF to white, both
    "converted" with exit 0. A developed image of one flat colour is no photo: the file fails alone."""
    flat = tmp_path / "cut.dng"
    write_dng(flat, np.full((64, 96, 3), 128, np.uint8))
    with pytest.raises(MediaError, match=r"cut\.dng: the RAW developed to a blank image"):
        read_image(flat)
    ok = tmp_path / "ok.dng"  # the smallest real content passes: two colours
    a = np.full((64, 96, 3), 128, np.uint8)
    a[:, :48] = 120
    write_dng(ok, a)
    assert read_image(ok).format == "RAW"


def test_a_raw_that_develops_to_noise_fails_and_a_noisy_photo_does_not(tmp_path):
    """An RW2 whose image data was stripped developed to 16 MB of noise and "converted". Here: a DNG
    whose raw strip is overwritten with random 12-bit values fails alone with one line; the same
    photo under strong sensor noise (a quarter of the range) still converts."""
    import tifffile

    rng = np.random.default_rng(0)
    rgb = np.asarray(Image.open(PHOTOS[0]).convert("RGB").resize((192, 128)))
    ok, bad, noisy = tmp_path / "ok.dng", tmp_path / "P1000001.dng", tmp_path / "iso25600.dng"
    write_dng(ok, rgb)
    with tifffile.TiffFile(ok) as t:
        at, n = t.pages[0].dataoffsets[0], t.pages[0].databytecounts[0]
    data = bytearray(ok.read_bytes())
    data[at:at + n] = rng.integers(0, 4096, n // 2, dtype=np.uint16).tobytes()
    bad.write_bytes(bytes(data))
    with pytest.raises(MediaError, match=r"P1000001\.dng: the RAW developed to noise"):
        read_image(bad)
    write_dng(noisy, np.clip(rgb + rng.normal(0, 64, rgb.shape), 0, 255).astype(np.uint8))
    assert read_image(noisy).format == "RAW" and read_image(ok).format == "RAW"
