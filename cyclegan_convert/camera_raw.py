"""Camera RAW files (DNG, CR2, CR3, NEF, ARW, RAF, ORF, RW2, ...): developed with LibRaw (rawpy), and
their EXIF taken from the container so it can go into the output like a JPEG's.

Development is LibRaw's default (AHD demosaicing, automatic brightness with 1% of pixels allowed to
clip, BT.709 gamma) with the camera's own white balance, to sRGB, 16 bits per sample, and turned
upright by the camera's orientation.
"""
from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from .errors import MediaError

ORIENTATION_TAG = 0x0112
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
# IFD0 of a RAW also describes its raw strips, previews and DNG colour calibration: only the tags
# that describe the photo go along
_IFD0_KEPT = frozenset({0x010E, 0x010F, 0x0110, 0x0131, 0x0132, 0x013B, 0x013C, 0x8298,  # description ... copyright
                        0x4746, 0x4749, 0x9C9B, 0x9C9C, 0x9C9D, 0x9C9E, 0x9C9F})  # rating, Windows title/keywords
# MakerNote offsets point into the RAW file (and can be 100 KB: a JPEG's EXIF holds 64 KB);
# the pixel dimensions and the interoperability pointer describe the camera's own JPEG
_EXIF_DROPPED = frozenset({0x927C, 0xA002, 0xA003, 0xA005})
_COLOR_SPACE = 0xA001
_CANON_UUID = bytes.fromhex("85c0b687820f11e08111f4ce462b6a48")


def _rawpy():
    import rawpy  # imported here: formats.need_decoder has said whether it is there

    return rawpy


def _reason(e: Exception) -> str:
    msg = e.args[0] if e.args else ""
    msg = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)
    return msg.splitlines()[0][:120] if msg else type(e).__name__


def develop(data: bytes, path: Path, min_side: Optional[int] = None) -> np.ndarray:
    """(H, W, 3) uint16 sRGB, upright. With ``min_side``, a RAW whose half size still has a shorter
    side of at least that is developed at half size: 2x2 sensor cells binned instead of demosaiced,
    4x fewer pixels (for training, which shrinks images anyway)."""
    rawpy = _rawpy()
    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            half = bool(min_side) and min(raw.sizes.height, raw.sizes.width) // 2 >= min_side  # type: ignore[operator]
            rgb = raw.postprocess(use_camera_wb=True, output_color=rawpy.ColorSpace.sRGB, output_bps=16,
                                  half_size=half)
    except rawpy.LibRawFileUnsupportedError as e:
        raise MediaError(f"{path}: not a RAW file LibRaw can read ({_reason(e)})") from None
    except rawpy.LibRawError as e:  # truncated or corrupt data (LibRaw's data errors too: rawpy >= 0.23
        # raises them, where LibRaw alone printed "Unexpected end of file" and went on)
        raise MediaError(f"{path}: cannot decode the RAW data ({_reason(e)})") from None
    # LibRaw develops some damaged files without an error: a truncated DNG came out one flat grey, a
    # film scanner's NEF all white. A sensor's noise alone keeps a real photo, even a black frame
    # brightened by the automatic exposure, from being one flat colour
    sample = rgb[::7, ::7]
    if int(sample.max()) - int(sample.min()) <= 2 * 257:
        raise MediaError(f"{path}: the RAW developed to a blank image (one flat colour): its image data "
                         "is damaged, missing or not one LibRaw understands")
    # and an RW2 whose image data was stripped developed to 16 MB of noise: whatever bytes LibRaw
    # read in its place
    if coarse_share(rgb) < NOISE_ONLY_SHARE:
        raise MediaError(f"{path}: the RAW developed to noise (no picture in it): its image data is "
                         "damaged, missing or not one LibRaw understands")
    return rgb


# Below this share of its variance at the coarse scale a developed image is noise and nothing else:
# independent noise keeps 1/64 of it (measured 0.014-0.016, demosaiced or not); 327 real photos and
# paintings kept 0.19 or more, and a photo under noise of a quarter of its full range 0.08.
NOISE_ONLY_SHARE = 0.04


def coarse_share(rgb: np.ndarray) -> float:
    """The share of an image's luminance variance that its 8x8 block means keep, measured on about a
    1024 px sampling (a stride, so that noise stays independent from sample to sample): near 1 for a
    picture, whose variance lies in shapes larger than the blocks; 1/64 for independent noise."""
    stride = max(2, max(rgb.shape[:2]) // 1024)
    y = rgb[::stride, ::stride].astype(np.float32).mean(axis=2)
    h, w = y.shape[0] // 8 * 8, y.shape[1] // 8 * 8
    if h == 0 or w == 0:
        return 1.0  # too small to tell
    y = y[:h, :w]
    total = float(y.var())
    blocks = y.reshape(h // 8, 8, w // 8, 8).mean(axis=(1, 3))
    return float(blocks.var()) / total if total > 0 else 1.0


def to_rgb8(rgb16: np.ndarray) -> np.ndarray:
    """16-bit to 8-bit, rounded to nearest (v / 257); in uint16, without a float copy of a 24 MP image."""
    return ((np.minimum(rgb16, 65407) + 128) // 257).astype(np.uint8)


def upright_size(path: Path) -> tuple[int, int]:
    """(height, width) of the developed image, from the RAW's header (nothing is decoded)."""
    rawpy = _rawpy()
    try:
        with rawpy.imread(str(path)) as raw:
            s = raw.sizes
    except rawpy.LibRawError as e:
        raise MediaError(f"{path}: cannot read the RAW header ({_reason(e)})") from None
    return (s.width, s.height) if s.flip in (5, 6) else (s.height, s.width)  # 5, 6: turned by 90 degrees


# -- EXIF out of the RAW containers --------------------------------------------------------------------

def exif_of(data: bytes) -> Optional[bytes]:
    """The photo's EXIF (IFD0's descriptive tags, the EXIF and GPS IFDs) as EXIF bytes for the
    output, orientation 1 (the pixels are upright), colour space sRGB; None when the container holds
    none we can read. Metadata is a bonus: a RAW whose EXIF cannot be parsed still converts."""
    try:
        parts = _exif_parts(data)
    except (SyntaxError, ValueError, KeyError, IndexError, TypeError, struct.error, OSError):
        return None
    if parts is None:
        return None
    ifd0, exif_ifd, gps = parts
    if not (_IFD0_KEPT.intersection(ifd0) or exif_ifd or gps):
        return None
    from PIL import Image

    out = Image.Exif()
    for tag in _IFD0_KEPT.intersection(ifd0):
        out[tag] = ifd0[tag]
    out[ORIENTATION_TAG] = 1
    sub = {k: v for k, v in exif_ifd.items() if k not in _EXIF_DROPPED}
    if sub:
        sub[_COLOR_SPACE] = 1  # developed to sRGB, whatever the camera's JPEG setting was
        out[EXIF_IFD] = sub
    if gps:
        out[GPS_IFD] = dict(gps)
    for attempt in (out, _without_subifds(out)):  # a tag Pillow cannot write back: keep at least IFD0
        try:
            b = attempt.tobytes()
        except (ValueError, TypeError, KeyError, struct.error):
            continue
        if len(b) <= 60000:  # a JPEG's EXIF segment holds 64 KB
            return b
    return None


def _without_subifds(exif):
    from PIL import Image

    out = Image.Exif()
    for tag, v in exif.items():
        if tag not in (EXIF_IFD, GPS_IFD):
            out[tag] = v
    return out


def _exif_parts(data: bytes) -> Optional[tuple[dict, dict, dict]]:
    """(IFD0, EXIF IFD, GPS IFD) as tag dicts, by container."""
    head = data[:16]
    if head[:4] in (b"II*\0", b"MM\0*"):  # TIFF: DNG, CR2, NEF, NRW, ARW, PEF, SRW
        return _tiff_parts(data)
    if head[:4] in (b"IIRO", b"IIRS", b"MMOR", b"IIU\0"):  # ORF and RW2: TIFF with their own magic
        return _tiff_parts((b"MM\0*" if head[:2] == b"MM" else b"II*\0") + data[4:])
    if head == b"FUJIFILMCCD-RAW ":  # RAF: the EXIF sits in the embedded JPEG preview
        offset, length = struct.unpack(">II", data[84:92])
        from PIL import Image

        with Image.open(io.BytesIO(data[offset:offset + length])) as preview:
            ex = preview.getexif()
            return dict(ex), ex.get_ifd(EXIF_IFD), ex.get_ifd(GPS_IFD)
    if head[4:12] == b"ftypcrx ":  # CR3: TIFF structures in Canon's uuid box (CMT1 IFD0, CMT2 EXIF, CMT4 GPS)
        cmt = _cr3_cmt_boxes(data)
        if "CMT1" not in cmt:
            return None
        return (_tiff_ifd0(cmt["CMT1"]), _tiff_ifd0(cmt["CMT2"]) if "CMT2" in cmt else {},
                _tiff_ifd0(cmt["CMT4"]) if "CMT4" in cmt else {})
    return None


def _tiff_parts(tiff: bytes) -> tuple[dict, dict, dict]:
    from PIL import Image

    ex = Image.Exif()
    ex.load(tiff)
    return dict(ex), ex.get_ifd(EXIF_IFD), ex.get_ifd(GPS_IFD)


def _tiff_ifd0(tiff: bytes) -> dict:
    from PIL import Image

    ex = Image.Exif()
    ex.load(tiff)
    return dict(ex)


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """ISO BMFF boxes between start and end: (type, payload start, box end)."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def _cr3_cmt_boxes(data: bytes) -> dict[str, bytes]:
    for kind, start, end in _boxes(data, 0, len(data)):
        if kind != b"moov":
            continue
        for k2, s2, e2 in _boxes(data, start, end):
            if k2 == b"uuid" and data[s2:s2 + 16] == _CANON_UUID:
                return {k3.decode("latin-1"): data[s3:e3] for k3, s3, e3 in _boxes(data, s2 + 16, e2)
                        if k3.startswith(b"CMT")}
    return {}
