"""Images as users have them: orientation, alpha, modes, bit depths, metadata, formats."""
from __future__ import annotations

import functools
import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from cyclegan_convert.errors import MediaError
from cyclegan_convert.imaging import (ORIENTATION_TAG, DecodedImage, encode_image, output_format, read_image,
                                      read_rgb, resize_rgb, working_size)

from conftest import PHOTOS
from pixels import psnr


def _gradient(w=40, h=24):
    y, x = np.mgrid[0:h, 0:w]
    return np.dstack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 128)]).astype(np.uint8)


@functools.lru_cache(maxsize=1)  # the profile header carries a creation time: make it once
def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_exif_orientation_applied_and_reset(tmp_path):
    rgb = _gradient(40, 24)
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6  # shown rotated 90 degrees clockwise
    exif[0x010F] = "TestCam"  # Make: must survive
    p = tmp_path / "rot.jpg"
    Image.fromarray(rgb).save(p, exif=exif.tobytes(), quality=95)
    img = read_image(p)
    assert img.size == (40, 24)  # upright: height and width swapped
    assert np.array_equal(img.rgb, read_rgb(p))  # the lead's reader agrees
    out = tmp_path / "out.jpg"
    encode_image(img, out, "JPEG")
    with Image.open(out) as o:
        assert o.size == (24, 40)
        assert o.getexif()[ORIENTATION_TAG] == 1 and o.getexif()[0x010F] == "TestCam"


def test_icc_profile_kept_and_metadata_strip(tmp_path):
    p = tmp_path / "icc.png"
    Image.fromarray(_gradient()).save(p, icc_profile=_srgb_icc())
    img = read_image(p)
    assert img.icc == _srgb_icc()
    for fmt, name in (("PNG", "a.png"), ("JPEG", "a.jpg"), ("WEBP", "a.webp")):
        encode_image(img, tmp_path / name, fmt)
        with Image.open(tmp_path / name) as o:
            assert o.info.get("icc_profile") == _srgb_icc(), fmt
    stripped = read_image(p, metadata=False)
    assert stripped.icc is None and stripped.exif is None


@pytest.mark.parametrize("mode, space", [("CMYK", b"CMYK"), ("L", b"GRAY")])
def test_icc_profile_of_another_colour_space_is_not_copied_to_rgb(tmp_path, mode, space):
    icc = _srgb_icc()
    icc = icc[:16] + space + icc[20:]  # the header's data colour space (ICC.1, bytes 16-19)
    p = tmp_path / "x.jpg"
    Image.fromarray(_gradient()).convert(mode).save(p, icc_profile=icc)
    assert Image.open(p).info["icc_profile"] == icc
    img = read_image(p)
    assert img.rgb.shape[2] == 3 and img.icc is None  # an RGB output cannot carry it


def test_a_photo_in_another_rgb_profile_reaches_the_model_in_srgb_and_leaves_tagged_srgb(tmp_path):
    """Pixels tagged Display P3 (phones) or XYB (JPEG XL's) went to the model as if sRGB and kept
    their profile. Now LittleCMS converts them first: the values are ImageCms' own, not the file's."""
    from cyclegan_convert.colour_profiles import srgb_profile_bytes
    from icc import matrix_profile

    p3 = matrix_profile("Test Display P3")
    src = tmp_path / "iphone.png"
    Image.new("RGB", (16, 8), (200, 120, 60)).save(src, icc_profile=p3)
    img = read_image(src)
    assert img.rgb[0, 0].tolist() == [214, 116, 38]  # ImageCms.profileToProfile of the same, perceptual
    assert img.icc == srgb_profile_bytes()
    assert read_rgb(src).getpixel((0, 0)) == (214, 116, 38)  # training sees the same colours
    stripped = read_image(src, metadata=False)  # no metadata: still converted, the output untagged
    assert stripped.rgb[0, 0].tolist() == [214, 116, 38] and stripped.icc is None
    out = tmp_path / "out.jpg"
    encode_image(img, out, "JPEG")
    with Image.open(out) as o:
        assert o.info["icc_profile"] == srgb_profile_bytes()
    tagged = tmp_path / "srgb.png"  # tagged sRGB: passes untouched, its profile copied as it is
    Image.new("RGB", (16, 8), (200, 120, 60)).save(tagged, icc_profile=_srgb_icc())
    img = read_image(tagged)
    assert img.rgb[0, 0].tolist() == [200, 120, 60] and img.icc == _srgb_icc()


def test_alpha_passed_through_and_dropped_for_jpeg(tmp_path):
    rgba = np.dstack([_gradient(), np.tile(np.arange(40, dtype=np.uint8) * 6, (24, 1))])
    p = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(p)
    img = read_image(p)
    assert img.alpha is not None and np.array_equal(img.alpha, rgba[..., 3])
    encode_image(img, tmp_path / "o.webp", "WEBP", quality=100)
    encode_image(img, tmp_path / "o.png", "PNG")
    with Image.open(tmp_path / "o.png") as o:
        assert o.mode == "RGBA" and np.array_equal(np.asarray(o)[..., 3], rgba[..., 3])
    encode_image(img, tmp_path / "o.jpg", "JPEG")
    with Image.open(tmp_path / "o.jpg") as o:
        assert o.mode == "RGB"


def test_opaque_alpha_is_no_alpha_and_palette_transparency(tmp_path):
    Image.new("RGBA", (8, 8), (1, 2, 3, 255)).save(tmp_path / "opaque.png")
    assert read_image(tmp_path / "opaque.png").alpha is None
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    pal.putpixel((0, 0), 1)
    pal.save(tmp_path / "pal.png", transparency=0)
    img = read_image(tmp_path / "pal.png")
    assert img.alpha is not None and img.alpha[0, 0] == 255 and img.alpha[1, 1] == 0
    assert tuple(img.rgb[0, 0]) == (0, 255, 0)


@pytest.mark.parametrize("mode", ["L", "CMYK", "I;16", "P"])
def test_modes_read_as_8bit_rgb(tmp_path, mode):
    base = Image.fromarray(_gradient())
    if mode == "I;16":
        a = (np.asarray(base.convert("L")).astype(np.uint16) * 257)
        src = Image.frombytes("I;16", (40, 24), a.astype("<u2").tobytes())
        path = tmp_path / "g16.png"
    else:
        src = base.convert(mode)
        path = tmp_path / ("c.jpg" if mode == "CMYK" else f"{mode}.tif")
    src.save(path)
    img = read_image(path)
    assert img.rgb.dtype == np.uint8 and img.rgb.shape == (24, 40, 3)
    if mode == "I;16":  # scaled from 16 bits, not clipped to white
        assert np.abs(img.rgb[..., 0].astype(int) - np.asarray(base.convert("L"))).max() <= 1


def test_bad_files_raise_media_error_naming_the_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    data = io.BytesIO()
    Image.open(PHOTOS[0]).save(data, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(data.getvalue()[: len(data.getvalue()) // 3])
    for name, reason in (("empty.jpg", "empty"), ("text.png", "not an image"), ("cut.jpg", "cannot decode"),
                         ("missing.jpg", "no such file")):
        with pytest.raises(MediaError, match=reason) as e:
            read_image(tmp_path / name)
        assert name in str(e.value)


def test_output_formats_by_suffix_any_case():
    assert output_format(".JPG") == "JPEG" and output_format(".Tiff") == "TIFF" and output_format(".webp") == "WEBP"
    with pytest.raises(MediaError):
        output_format(".gif")


def test_every_format_round_trips(tmp_path):
    img = DecodedImage(_gradient())
    for suffix in (".jpg", ".png", ".webp", ".bmp", ".tif"):
        encode_image(img, tmp_path / f"x{suffix}", output_format(suffix))
        back = read_image(tmp_path / f"x{suffix}")
        assert back.size == (24, 40)
        assert np.abs(back.rgb.astype(int) - img.rgb).mean() < 3


_XMP = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        b'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="5"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')


@pytest.mark.parametrize("src_name, save", [("print.jpg", dict(dpi=(300, 300), quality=95)),
                                             ("print.png", dict(dpi=(300, 300))),
                                             ("print.tif", dict(dpi=(300, 300)))])
def test_print_resolution_kept_without_exif(tmp_path, src_name, save):
    """A 300 dpi scan or print master (no EXIF: the density is in JFIF, pHYs or the TIFF tags) must
    not come out at 72 dpi, which prints it four times larger."""
    p = tmp_path / src_name
    Image.fromarray(_gradient()).save(p, **save)
    img = read_image(p)
    for fmt, name in (("JPEG", "o.jpg"), ("PNG", "o.png"), ("TIFF", "o.tif")):
        encode_image(img, tmp_path / name, fmt)
        with Image.open(tmp_path / name) as o:
            assert o.info.get("dpi") is not None and round(o.info["dpi"][0]) == 300, (src_name, fmt)

    rot = tmp_path / "rot.jpg"  # stored sideways (EXIF orientation 6): x and y resolution swap when turned upright
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    Image.fromarray(_gradient()).save(rot, dpi=(300, 200), exif=exif.tobytes())
    assert read_image(rot).dpi == (200, 300)


def test_xmp_kept_and_stripped(tmp_path):
    """Ratings, keywords and rights live in XMP (Lightroom, darktable): kept like EXIF, and
    --metadata strip drops them."""
    p = tmp_path / "rated.jpg"
    Image.fromarray(_gradient()).save(p, xmp=_XMP, quality=95)
    img = read_image(p)
    assert img.xmp == _XMP
    for fmt, name in (("JPEG", "a.jpg"), ("PNG", "a.png"), ("WEBP", "a.webp")):
        encode_image(img, tmp_path / name, fmt)
        assert b'xmp:Rating="5"' in (tmp_path / name).read_bytes(), fmt
        assert read_image(tmp_path / name).xmp is not None, fmt  # and it reads back as XMP
    assert read_image(p, metadata=False).xmp is None


def test_camera_jpeg_with_an_embedded_preview_counts_as_one_frame(tmp_path):
    """Pillow reads a JPEG holding a preview image (MPO, written by many cameras) as 2 frames: every
    such photo got the note 'only the first frame is converted'. An animated WebP still counts."""
    photo = Image.open(PHOTOS[0]).convert("RGB").resize((64, 48))
    mpo = tmp_path / "camera.jpg"
    photo.save(mpo, format="MPO", save_all=True, append_images=[photo.resize((32, 24))])
    with Image.open(mpo) as im:
        assert im.format == "MPO" and im.n_frames == 2  # the case in question
    assert read_image(mpo).frames == read_image(mpo, max_side=20).frames == 1  # also decoded smaller
    views = tmp_path / "3d.mpo"  # a 3D camera's second eye: the primary's size, so a view
    photo.save(views, save_all=True, append_images=[photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
    assert read_image(views).frames == read_image(views, max_side=20).frames == 2
    assert "2 views in one MPO file" in read_image(views).frames_note()
    anim = tmp_path / "anim.webp"
    photo.save(anim, save_all=True, append_images=[photo.rotate(90)])
    assert read_image(anim).frames == 2


# -- --max-side: a JPEG decoded smaller (libjpeg's DCT scaling, Pillow's draft) ------------------------

@functools.lru_cache(maxsize=2)
def _upscaled_photo(w: int, h: int) -> Image.Image:
    return Image.open(PHOTOS[0]).convert("RGB").resize((w, h), Image.Resampling.LANCZOS)


def _large_jpeg(path, w=3000, h=2000, **save):
    """A camera-sized JPEG made from a fixture photo (upscaled with Lanczos)."""
    _upscaled_photo(w, h).save(path, quality=92, **save)
    return path




def test_jpeg_decoded_smaller_for_max_side_gives_the_same_working_image(tmp_path):
    """--max-side 512 on a 3000x2000 photo: libjpeg decodes at 1/4 (750x500), not at full size, and
    the working image (Lanczos to 512x341 from either) is nearly the full decode's. Measured on the
    fixture photos upscaled to 3000x2000: 51.0 to 54.2 dB at 512 (42 to 52 dB on real 12 to 16 MP
    photos, benchmarks/decode_speed.py); the bar leaves 6 dB."""
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    p = _large_jpeg(tmp_path / "big.jpg", exif=exif.tobytes(), icc_profile=_srgb_icc(), dpi=(300, 300), xmp=_XMP)
    full, small = read_image(p), read_image(p, max_side=512)
    assert full.size == (2000, 3000) and full.full_size is None
    assert small.size == (500, 750) and small.full_size == (2000, 3000)  # really decoded at 1/4
    wh, ww = working_size(2000, 3000, 512)
    assert (wh, ww) == (341, 512)
    assert psnr(resize_rgb(small.rgb, wh, ww), resize_rgb(full.rgb, wh, ww)) >= 45
    for name in ("exif", "icc", "xmp", "dpi", "format", "frames"):  # the metadata does not change
        assert getattr(small, name) == getattr(full, name), name


def test_sideways_jpeg_decoded_smaller_is_upright_with_its_full_size(tmp_path):
    """Stored 3000x2000 with EXIF orientation 6: upright it is 2000 wide, 3000 high, also decoded
    smaller; the resolution's x and y swap as in a full decode."""
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    exif[0x010F] = "TestCam"
    p = _large_jpeg(tmp_path / "rot.jpg", exif=exif.tobytes(), dpi=(300, 200))
    full, small = read_image(p), read_image(p, max_side=1000)
    assert full.size == (3000, 2000)
    assert small.size == (1500, 1000) and small.full_size == (3000, 2000)  # 1/2: 1/4 would be below 1000
    assert small.dpi == full.dpi == (200, 300)
    ex = Image.Exif()
    ex.load(small.exif)
    assert ex[ORIENTATION_TAG] == 1 and ex[0x010F] == "TestCam" and small.exif == full.exif
    wh, ww = working_size(3000, 2000, 1000)
    assert psnr(resize_rgb(small.rgb, wh, ww), resize_rgb(full.rgb, wh, ww)) >= 45  # upright both


def test_max_side_decodes_in_full_where_no_reduction_fits(tmp_path):
    """A JPEG within max_side, or one that 1/2 would shrink below it, and any other format, are
    decoded at their size, and say so (full_size None)."""
    p = _large_jpeg(tmp_path / "a.jpg", 1100, 700)
    assert read_image(p, max_side=1024).size == (700, 1100) and read_image(p, max_side=1024).full_size is None
    assert read_image(p, max_side=2000).full_size is None
    png = tmp_path / "a.png"
    Image.open(p).save(png)
    small = read_image(png, max_side=256)
    assert small.full_size is None and np.array_equal(small.rgb, read_image(png).rgb)


# -- how large an image ccv decodes (decode_limits) ---------------------------------------------------

def _png_claiming(path, width: int, height: int) -> None:
    """A real 8x8 PNG whose header is rewritten to claim width x height (CRC fixed): what a
    decompression bomb looks like before its pixels are read."""
    import struct
    import zlib

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = 8 + 8  # signature, then the IHDR chunk's length and type
    data[ihdr:ihdr + 8] = struct.pack(">II", width, height)
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4:ihdr + 13])))
    path.write_bytes(bytes(data))


def test_a_header_claiming_gigapixels_in_a_few_bytes_is_refused_before_decoding(tmp_path):
    from cyclegan_convert.formats import probe

    bomb = tmp_path / "bomb.png"
    _png_claiming(bomb, 100_000, 100_000)
    with pytest.raises(MediaError, match=r"bomb\.png: refused: its header claims 100000x100000 \(10000 MP\) in 0 kB"):
        read_image(bomb)
    assert "decompression bomb" in probe(bomb)
    # the same claim under the flat-picture floor is only a broken file, reported as such
    small = tmp_path / "small.png"
    _png_claiming(small, 4000, 3000)
    with pytest.raises(MediaError, match="cannot decode"):
        read_image(small)


def test_the_decode_must_fit_the_memory_and_a_jpeg_fits_by_decoding_smaller(tmp_path, monkeypatch):
    """A 200 MP phone photo was refused by Pillow's pixel count whatever --max-side said; ccv asks
    whether the decode fits the memory at the size it is decoded at. Budget set here to 2 MB."""
    from cyclegan_convert import decode_limits

    rng = np.random.default_rng(0)
    src = tmp_path / "big.jpg"
    Image.fromarray(rng.integers(0, 255, (1200, 1600, 3), dtype=np.uint8)).save(src, quality=90)
    monkeypatch.setattr(decode_limits, "memory_budget", lambda: 2 << 20)
    with pytest.raises(MediaError, match=r"big\.jpg: too large to decode here: 1600x1200 \(2 MP\) needs about 15 MB, "
                                         r"2 MB allowed .*a smaller --max-side decodes this JPEG smaller"):
        read_image(src)
    small = read_image(src, max_side=300)  # libjpeg decodes at 1/4: 400x300, 0.9 MB
    assert small.size == (300, 400) and small.full_size == (1200, 1600)
    png = tmp_path / "big.png"
    Image.open(src).save(png)
    with pytest.raises(MediaError, match="free memory, or shrink it"):  # PNG cannot decode smaller
        read_image(png, max_side=300)


def test_pillows_own_pixel_guard_is_off_and_ccvs_budget_decides(tmp_path, monkeypatch):
    """The 179 MP refusal was Pillow's (Image.MAX_IMAGE_PIXELS); importing ccv's readers turns it
    off. A flat 20 MP picture (it compresses about 1000:1, as a bomb would) is under the floor where
    a high ratio counts, and reads."""
    import cyclegan_convert.imaging  # noqa: F401

    assert Image.MAX_IMAGE_PIXELS is None
    src = tmp_path / "wide.png"
    Image.new("RGB", (5000, 4000), (90, 120, 150)).save(src)
    assert read_image(src).size == (4000, 5000)


MOTION_PHOTO_XMP = b"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:GCamera="http://ns.google.com/photos/1.0/camera/"
    xmlns:Container="http://ns.google.com/photos/1.0/container/"
    xmlns:Item="http://ns.google.com/photos/1.0/container/item/" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmp:Rating="5" GCamera:MotionPhoto="1" GCamera:MotionPhotoVersion="1"
    GCamera:MotionPhotoPresentationTimestampUs="968644" GCamera:MicroVideoOffset="4242">
  <Container:Directory><rdf:Seq>
    <rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="image/jpeg" Item:Semantic="Primary" Item:Length="0"/></rdf:li>
    <rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="video/mp4" Item:Semantic="MotionPhoto" Item:Length="4242"/></rdf:li>
  </rdf:Seq></Container:Directory>
  <GCamera:MicroVideo>1</GCamera:MicroVideo>
</rdf:Description></rdf:RDF></x:xmpmeta>"""


def test_a_motion_photos_xmp_no_longer_announces_the_video_the_output_lacks(tmp_path):
    """Outputs of Google Motion Photos kept XMP announcing an embedded MP4 that is no longer there;
    viewers look for it. Those properties go; the rest of the packet (the rating) stays, well formed."""
    import xml.dom.minidom

    src = tmp_path / "PXL_0001.MP.jpg"
    Image.fromarray(_gradient()).save(src, quality=95, xmp=MOTION_PHOTO_XMP)
    with open(src, "ab") as f:
        f.write(b"\0\0\0\x18ftypmp42" + bytes(4230))  # the video after the JPEG, as a Pixel writes it
    img = read_image(src)
    assert b'xmp:Rating="5"' in img.xmp and b"rdf:Description" in img.xmp
    for gone in (b"MotionPhoto", b"MicroVideo", b"Container:Directory", b"video/mp4"):
        assert gone not in img.xmp, gone
    xml.dom.minidom.parseString(img.xmp)  # still XML
    out = tmp_path / "out.jpg"
    encode_image(img, out, "JPEG")
    with Image.open(out) as o:
        assert b'xmp:Rating="5"' in o.info["xmp"] and b"MotionPhoto" not in o.info["xmp"]
    plain = tmp_path / "plain.jpg"  # an XMP without such items passes byte for byte
    Image.fromarray(_gradient()).save(plain, xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><a b="1"/></x:xmpmeta>')
    assert read_image(plain).xmp == b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><a b="1"/></x:xmpmeta>'
