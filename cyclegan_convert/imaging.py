"""Reading images as users have them: EXIF orientation, any mode, any bit depth, into 8-bit RGB."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import MediaError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


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


def read_rgb(path: Union[str, Path]) -> Image.Image:
    """An upright 8-bit RGB image, fully decoded; ``MediaError`` names the file and the reason."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            return to_rgb8(img)
    except FileNotFoundError:
        raise MediaError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        reason = "empty file" if path.stat().st_size == 0 else "not an image or an unsupported format"
        raise MediaError(f"{path}: {reason}") from None
    except (OSError, SyntaxError, ValueError) as e:  # truncated or corrupt data
        raise MediaError(f"{path}: cannot decode ({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})") from None


# -- the converter's view: pixels plus what must survive the trip (alpha, EXIF, ICC) ---------------

ORIENTATION_TAG = 0x0112
OUTPUT_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP",
                  ".tif": "TIFF", ".tiff": "TIFF"}
_ALPHA_FORMATS = frozenset({"PNG", "WEBP", "TIFF"})  # JPEG has none; BMP readers mishandle 32-bit
_EXIF_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "TIFF"})
_ICC_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "TIFF"})
_DPI_FORMATS = frozenset({"JPEG", "PNG", "TIFF", "BMP"})  # WebP has no resolution field
_XMP_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})


@dataclass
class DecodedImage:
    """An upright image split into what the model sees (RGB) and what it must not touch."""

    rgb: np.ndarray  # (H, W, 3) uint8, upright
    alpha: Optional[np.ndarray] = None  # (H, W) uint8, or None when the image has no transparency
    exif: Optional[bytes] = None  # EXIF with the orientation reset (pixels are upright now)
    icc: Optional[bytes] = None  # ICC profile, copied as is
    xmp: Optional[bytes] = None  # XMP packet (ratings, keywords, rights), orientation already removed
    dpi: Optional[tuple[float, float]] = None  # print resolution (JFIF, pHYs, TIFF), upright (x, y)
    frames: int = 1  # frames or pages in the file (animated WebP, multi-page TIFF): only the first is here;
    # a camera JPEG's embedded previews (Pillow reads it as MPO) do not count

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return self.rgb.shape[0], self.rgb.shape[1]


def _alpha_of(img: Image.Image) -> Optional[np.ndarray]:
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        a = np.asarray(img.getchannel("A"))
        return None if a.min() == 255 else a.copy()  # an opaque alpha channel is no alpha
    return None


def _dpi_of(img: Image.Image) -> Optional[tuple[float, float]]:
    """The print resolution the file states (JFIF density, PNG pHYs, TIFF/BMP), or None."""
    dpi = img.info.get("dpi")
    try:
        x, y = float(dpi[0]), float(dpi[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return None
    return (x, y) if x > 0 and y > 0 else None


def read_image(path: Union[str, Path], metadata: bool = True) -> DecodedImage:
    """Reads an image for conversion: upright RGB, alpha if any, EXIF (orientation reset) and ICC.

    Raises ``MediaError`` for missing, empty, non-image, corrupt or truncated files."""
    path = Path(path)
    try:
        with Image.open(path) as img:
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
                ex = upright.getexif()
                if len(ex):
                    ex[ORIENTATION_TAG] = 1  # the pixels are upright now; keep the tag, say so
                    exif = ex.tobytes()
            alpha = _alpha_of(upright)
            rgb = np.asarray(to_rgb8(upright))
            return DecodedImage(rgb=rgb, alpha=alpha, exif=exif, icc=icc or None, xmp=xmp, dpi=dpi,
                                frames=1 if img.format == "MPO" else getattr(img, "n_frames", 1))
    except FileNotFoundError:
        raise MediaError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        reason = "empty file" if path.stat().st_size == 0 else "not an image or an unsupported format"
        raise MediaError(f"{path}: {reason}") from None
    except Image.DecompressionBombError as e:
        raise MediaError(f"{path}: {e}") from None
    except (OSError, SyntaxError, ValueError, struct.error, IndexError, EOFError) as e:
        raise MediaError(f"{path}: cannot decode ({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})") from None


def output_format(suffix: str) -> str:
    fmt = OUTPUT_FORMATS.get(suffix.lower())
    if fmt is None:
        raise MediaError(f"cannot write {suffix!r} files: use jpg, png, webp, bmp or tiff")
    return fmt


def resize_rgb(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """High-quality resize of an (H, W, C) or (H, W) uint8 array (Lanczos, as for photos)."""
    if rgb.shape[:2] == (height, width):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.LANCZOS))


def encode_image(image: DecodedImage, path: Union[str, Path], fmt: str, quality: Optional[int] = None) -> None:
    """Writes ``image`` to ``path`` (the caller's temporary name) as ``fmt``; alpha, EXIF, ICC, XMP
    and the print resolution go along where the format can carry them (JPEG has no alpha: it is
    dropped). The resolution is kept as stated, also for ``--work-size`` outputs, as image editors
    do when resampling (and as the copied EXIF resolution says)."""
    rgb = image.rgb
    if image.alpha is not None and fmt in _ALPHA_FORMATS:
        alpha = image.alpha if image.alpha.shape == rgb.shape[:2] else resize_rgb(image.alpha, *rgb.shape[:2])
        pil = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
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
    if fmt == "JPEG":
        kw.update(quality=quality or 95, subsampling=0 if (quality or 95) >= 90 else 2)
    elif fmt == "WEBP":
        kw.update(quality=quality or 90, method=4)
    elif fmt == "PNG":
        kw.update(compress_level=3)  # level 6 (the default) costs twice the time for ~5% smaller files
    elif fmt == "TIFF":
        kw.update(compression="tiff_lzw")
    pil.save(path, format=fmt, **kw)
