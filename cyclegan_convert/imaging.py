"""Reading images as users have them: EXIF orientation, any mode, any bit depth, any colour profile,
into 8-bit sRGB.

Which files are images (by content, else by name) and the optional decoders (HEIC, camera RAW) are
in ``formats``; RAW development in ``camera_raw``; how large an image may be in ``decode_limits``;
the conversion to sRGB in ``colour_profiles``; XMP clean-up in ``xmp``."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import colour_profiles, decode_limits, formats
from .errors import MediaError
from .formats import IMAGE_SUFFIXES
from .xmp import without_embedded_items


def is_image_name(path: Union[str, Path]) -> bool:
    """An image by its suffix in any letter case; OS clutter (``._foo.jpg`` from macOS) is not."""
    p = Path(path)
    return p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("._")


def to_rgb8(img: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB. 16-bit and 32-bit modes are scaled, not clipped; alpha is dropped
    (callers that keep alpha take it first); CMYK and palette go through PIL's conversions."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        a8 = np.clip(np.rint(a * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(a8, "L").convert("RGB")
    if img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        scale = 255.0 if a.max() <= 1.0 else 1.0
        return Image.fromarray(np.clip(np.rint(a * scale), 0, 255).astype(np.uint8), "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert("RGB")


def _check_heif_container(path: Path, fmt: Optional[str]) -> None:
    """What a HEIF/AVIF decoder lets through: a file cut short (libheif paints the missing grid
    tiles green) and HDR, whose PQ or HLG code values read as 8-bit sRGB would be wrong colours,
    silently (`ccv video` refuses HDR the same way)."""
    if fmt not in ("HEIF", "AVIF"):
        return
    if cut := formats.boxes_past_end(path):
        raise MediaError(f"{path}: truncated (its boxes claim {cut[0]:,} bytes, the file has {cut[1]:,}); "
                         "copy it again from the camera or phone")
    if hdr := formats.hdr_transfer(path):
        raise MediaError(f"{path}: an HDR image ({hdr} transfer); the model was trained on SDR images "
                         "and its colours would be wrong: convert it to SDR first")


def read_rgb(path: Union[str, Path], min_side: Optional[int] = None) -> Image.Image:
    """An upright 8-bit RGB image in sRGB, fully decoded; ``MediaError`` names the file and the reason.
    ``min_side``: the caller shrinks the image to about this side anyway (training), so a RAW whose
    half-size development is still that large is developed at half size (about 4x faster)."""
    path = Path(path)
    fmt, _ = formats.format_of(path)
    if fmt == "RAW":
        return Image.fromarray(_read_raw(path, metadata=False, min_side=min_side).rgb)
    formats.need_decoder(path, fmt)
    _check_heif_container(path, fmt)
    try:
        with Image.open(path) as img:
            decode_limits.check(path, img.size)
            img.load()
            profile = img.info.get("icc_profile")
            return _in_srgb(ImageOps.exif_transpose(img), profile)[0]
    except FileNotFoundError:
        raise MediaError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise MediaError(f"{path}: {formats.unidentified_reason(path)}") from None
    except (OSError, SyntaxError, ValueError) as e:  # truncated or corrupt data
        raise MediaError(f"{path}: cannot decode ({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})") from None


# -- the converter's view: pixels plus what must survive the trip (alpha, EXIF, ICC) ---------------

ORIENTATION_TAG = 0x0112
OUTPUT_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP",
                  ".tif": "TIFF", ".tiff": "TIFF", ".avif": "AVIF", ".heic": "HEIF", ".heif": "HEIF", ".hif": "HEIF"}
_ALPHA_FORMATS = frozenset({"PNG", "WEBP", "TIFF", "AVIF", "HEIF"})  # JPEG has none; BMP readers mishandle 32-bit
_EXIF_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "TIFF", "AVIF", "HEIF"})
_ICC_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "TIFF", "AVIF", "HEIF"})
_DPI_FORMATS = frozenset({"JPEG", "PNG", "TIFF", "BMP"})  # WebP, AVIF and HEIF have no resolution field
_XMP_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "AVIF", "HEIF"})
DEFAULT_QUALITY = {"JPEG": 95, "WEBP": 90, "AVIF": 85, "HEIF": 85}


@dataclass
class DecodedImage:
    """An upright image split into what the model sees (RGB) and what it must not touch."""

    rgb: np.ndarray  # (H, W, 3) uint8, upright
    alpha: Optional[np.ndarray] = None  # (H, W) uint8, or None when the image has no transparency
    exif: Optional[bytes] = None  # EXIF with the orientation reset (pixels are upright now)
    icc: Optional[bytes] = None  # the source's ICC profile, or sRGB's where the pixels were converted to sRGB (colour_profiles)
    xmp: Optional[bytes] = None  # XMP packet (ratings, keywords, rights), without orientation and embedded items
    dpi: Optional[tuple[float, float]] = None  # print resolution (JFIF, pHYs, TIFF), upright (x, y)
    frames: int = 1  # frames or pages in the file (animated WebP, multi-page TIFF): only the first is here;
    # a camera JPEG's embedded previews (Pillow reads it as MPO) do not count; HEIF: top-level images
    bits: int = 8  # 16 for a developed RAW: a TIFF output is written with 16 bits per sample
    format: str = ""  # what it was read from: Pillow's format name (JPEG, HEIF, AVIF ...) or RAW
    full_size: Optional[tuple[int, int]] = None  # upright (H, W) in the file when ``rgb`` was decoded smaller
    note: str = ""  # for the user: the file's name and content disagree (``formats.format_of``)

    def frames_note(self) -> str:
        """What a user is told about the frames left out (``frames`` > 1)."""
        if self.format == "HEIF":  # the primary image, which is not always the first one
            return f"{self.frames} images in one HEIF file; only the primary image is converted"
        if self.format == "MPO":
            return f"{self.frames} views in one MPO file (a 3D or multi-angle photo); only the first is converted"
        return f"{self.frames} frames or pages; only the first is converted"

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return self.rgb.shape[0], self.rgb.shape[1]


def _in_srgb(img: Image.Image, profile: Optional[bytes]) -> tuple[Image.Image, bool]:
    """(8-bit RGB image in sRGB, whether it was converted from its ICC profile): a CMYK image goes
    through its press profile where it has one, not through Pillow's naive CMYK formula."""
    pixels = img if img.mode == "CMYK" else to_rgb8(img)
    converted = colour_profiles.to_srgb(pixels, profile)
    return (to_rgb8(pixels), False) if converted is None else (converted, True)


def _alpha_of(img: Image.Image) -> Optional[np.ndarray]:
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        a = np.asarray(img.getchannel("A"))
        return None if a.min() == 255 else a.copy()  # an opaque alpha channel is no alpha
    return None


def _mpo_views(img: Image.Image, stored: tuple[int, int]) -> int:
    """Views in an MPO: the images of the primary's size (a 3D camera's second eye: a Nintendo 3DS,
    a Fujifilm W3), not the smaller previews many cameras embed in their JPEGs. ``stored``: the
    primary's (W, H) in the file (before a draft). Called after the pixels were taken: it moves
    through the frames."""
    try:
        entries = img.mpinfo[0xB002]  # type: ignore[attr-defined]
        views = 1
        for i, e in enumerate(entries[1:], 1):
            if not str(e["Attribute"]["MPType"]).startswith("Large Thumbnail"):
                img.seek(i)  # its header only
                views += img.size == stored
        img.seek(0)
        return views
    except (AttributeError, KeyError, TypeError, EOFError, OSError, ValueError):
        return 1


def _dpi_of(img: Image.Image) -> Optional[tuple[float, float]]:
    """The print resolution the file states (JFIF density, PNG pHYs, TIFF/BMP), or None."""
    dpi = img.info.get("dpi")
    try:
        x, y = float(dpi[0]), float(dpi[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return None
    return (x, y) if x > 0 and y > 0 else None


def working_size(height: int, width: int, max_side: Optional[int]) -> tuple[int, int]:
    """(H, W) with the longest side at most ``max_side`` (``--max-side``), the aspect ratio kept."""
    if not max_side or max(height, width) <= max_side:
        return height, width
    s = max_side / max(height, width)
    return max(1, round(height * s)), max(1, round(width * s))


def _draft_for(img: Image.Image, max_side: Optional[int]) -> None:
    """Lets libjpeg decode a JPEG at 1/2, 1/4 or 1/8 scale (DCT scaling) when the caller shrinks it to
    ``max_side`` anyway: the largest reduction that stays at least the working size, so the caller's
    Lanczos resize still makes the last step and the working size does not change. The scale is the
    same in both directions, so the stored orientation gives the same reduction as the upright one."""
    if img.format not in ("JPEG", "MPO"):  # MPO: a camera JPEG with embedded previews
        return
    w, h = img.size
    wh, ww = working_size(h, w, max_side)
    if (wh, ww) != (h, w):
        img.draft("RGB", (ww, wh))  # keeps the mode: "RGB" asks for no conversion of gray or CMYK


def read_image(path: Union[str, Path], metadata: bool = True, max_side: Optional[int] = None) -> DecodedImage:
    """Reads an image for conversion: upright RGB in sRGB (converted through its ICC profile where
    that is another, ``colour_profiles``), alpha if any, EXIF (orientation reset), ICC and XMP. The
    format is decided by content where it can be (``formats.format_of``; ``note`` says when the name
    disagrees), the size it may have by ``decode_limits``; HDR HEIF/AVIF stills are refused.

    ``max_side``: the caller shrinks the image to this longest side (``working_size``), so a JPEG may
    be decoded smaller, though never below that size; ``full_size`` then holds the size in the file.
    Other formats ignore it.

    Raises ``MediaError`` for missing, empty, non-image, corrupt or truncated files, and for HEIC or
    RAW files when their package is missing here."""
    path = Path(path)
    fmt, note = formats.format_of(path)  # by content: a JPEG named .nef is a JPEG
    if fmt == "RAW":
        raw = _read_raw(path, metadata)
        raw.note = note
        return raw
    formats.need_decoder(path, fmt)
    _check_heif_container(path, fmt)
    try:
        with Image.open(path) as img:
            stored = img.size  # (W, H) before a draft shrinks it
            if max_side:
                _draft_for(img, max_side)
            decode_limits.check(path, stored, img.size, shrinkable=img.format in ("JPEG", "MPO"))
            img.load()
            icc = img.info.get("icc_profile") if metadata else None
            if icc and icc[16:20] != b"RGB ":  # a CMYK or gray profile would mislabel the RGB output
                icc = None
            dpi = _dpi_of(img)
            upright = ImageOps.exif_transpose(img)
            if dpi and upright.size != img.size:  # turned by 90 degrees: x and y swap
                dpi = (dpi[1], dpi[0])
            exif = xmp = None
            if metadata:
                xmp = upright.info.get("xmp") or upright.info.get("XML:com.adobe.xmp")  # JPEG/WebP/TIFF, PNG
                xmp = (xmp.encode("utf-8") if isinstance(xmp, str) else bytes(xmp)) if xmp else None
                xmp = without_embedded_items(xmp) if xmp else None  # a Motion Photo's video is not in the output
                ex = upright.getexif()
                if len(ex):
                    ex[ORIENTATION_TAG] = 1  # the pixels are upright now; keep the tag, say so
                    exif = ex.tobytes()
            alpha = _alpha_of(upright)
            rgb_img, converted = _in_srgb(upright, img.info.get("icc_profile"))
            if converted:  # the pixels are sRGB now: say so to colour-managed viewers
                icc = colour_profiles.srgb_profile_bytes() if metadata else None
            rgb = np.asarray(rgb_img)
            full_size = None
            if img.size != stored:  # decoded smaller: the file's size, upright
                turned = upright.size != img.size
                full_size = (stored[0], stored[1]) if turned else (stored[1], stored[0])
            return DecodedImage(rgb=rgb, alpha=alpha, exif=exif, icc=icc or None, xmp=xmp, dpi=dpi,
                                frames=_mpo_views(img, stored) if img.format == "MPO" else getattr(img, "n_frames", 1),
                                format=img.format or "", full_size=full_size, note=note)
    except FileNotFoundError:
        raise MediaError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise MediaError(f"{path}: {formats.unidentified_reason(path)}") from None
    except Image.DecompressionBombError as e:  # someone set Pillow's guard again (decode_limits turns it off)
        raise MediaError(f"{path}: {e}") from None
    except (OSError, SyntaxError, ValueError, struct.error, IndexError, EOFError) as e:
        raise MediaError(f"{path}: cannot decode ({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})") from None


def _read_raw(path: Path, metadata: bool, min_side: Optional[int] = None) -> DecodedImage:
    """A camera RAW developed to upright sRGB (see ``camera_raw``), with its EXIF (orientation 1,
    without the MakerNote). Its XMP is not copied: in a DNG it holds develop settings for the RAW,
    which an editor would apply again to the converted image."""
    from . import camera_raw

    formats.need_decoder(path, "RAW")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise MediaError(f"{path}: no such file") from None
    except OSError as e:
        raise MediaError(f"{path}: cannot read ({e.strerror or e})") from None
    if not data:
        raise MediaError(f"{path}: empty file")
    rgb16 = camera_raw.develop(data, path, min_side=min_side)
    return DecodedImage(rgb=camera_raw.to_rgb8(rgb16), exif=camera_raw.exif_of(data) if metadata else None,
                        bits=16, format="RAW")


def output_format(suffix: str) -> str:
    fmt = OUTPUT_FORMATS.get(suffix.lower())
    if fmt is None:
        raise MediaError(f"cannot write {suffix!r} files: use jpg, png, webp, avif, heic, bmp or tiff")
    return fmt


def resize_rgb(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """High-quality resize of an (H, W, C) or (H, W) uint8 array (Lanczos, as for photos)."""
    if rgb.shape[:2] == (height, width):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.LANCZOS))


def _alpha_at(alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return alpha if alpha.shape == size else resize_rgb(alpha, *size)


def encode_image(image: DecodedImage, path: Union[str, Path], fmt: str, quality: Optional[int] = None) -> None:
    """Writes ``image`` to ``path`` (the caller's temporary name) as ``fmt``; alpha, EXIF, ICC, XMP
    and the print resolution go along where the format can carry them (JPEG has no alpha: it is
    dropped). The resolution is kept as stated, also for ``--work-size`` outputs, as image editors
    do when resampling (and as the copied EXIF resolution says). A 16-bit source (a RAW) goes to a
    TIFF with 16 bits per sample."""
    rgb = image.rgb
    if fmt == "TIFF" and image.bits == 16:
        from .tiff16 import write_tiff16

        planes = [rgb] if image.alpha is None else [rgb, _alpha_at(image.alpha, rgb.shape[:2])[..., None]]
        samples = np.concatenate(planes, axis=2).astype(np.uint16)
        samples *= 257  # 8 to 16 bits: 255 -> 65535
        write_tiff16(path, samples, image.exif, image.icc, image.xmp, image.dpi)
        return
    if fmt == "HEIF" and (problem := formats.heif_problem()):
        raise MediaError(f"cannot write HEIC: {problem}")
    if image.alpha is not None and fmt in _ALPHA_FORMATS:
        pil = Image.fromarray(np.dstack([rgb, _alpha_at(image.alpha, rgb.shape[:2])]), "RGBA")
    else:
        pil = Image.fromarray(rgb, "RGB")
    kw: dict = {}
    if image.exif and fmt in _EXIF_FORMATS:
        kw["exif"] = image.exif
    if image.icc and fmt in _ICC_FORMATS:
        kw["icc_profile"] = image.icc
    if image.dpi and fmt in _DPI_FORMATS:
        kw["dpi"] = image.dpi
    if image.xmp and fmt in _XMP_FORMATS:
        if fmt == "PNG":
            from PIL.PngImagePlugin import PngInfo

            info = PngInfo()
            info.add_itxt("XML:com.adobe.xmp", image.xmp.decode("utf-8", errors="replace"))
            kw["pnginfo"] = info
        else:
            kw["xmp"] = image.xmp
    q = quality or DEFAULT_QUALITY.get(fmt, 0)
    if fmt == "JPEG":
        kw.update(quality=q, subsampling=0 if q >= 90 else 2)
    elif fmt == "WEBP":
        kw.update(quality=q, method=4)
    elif fmt == "AVIF":  # full-resolution colour at high qualities, as for JPEG
        kw.update(quality=q, subsampling="4:4:4" if q >= 90 else "4:2:0")
    elif fmt == "HEIF":  # x265's medium preset: 2.6x faster than libheif's default (slow), files 8% larger
        kw.update(quality=q, chroma=444 if q >= 90 else 420, enc_params={"preset": "medium"})
    elif fmt == "PNG":
        kw.update(compress_level=3)  # level 6 (the default) costs twice the time for ~5% smaller files
    elif fmt == "TIFF":
        kw.update(compression="tiff_lzw")
    pil.save(path, format=fmt, **kw)
