"""Reading images as users have them: EXIF orientation, any mode, any bit depth, into 8-bit RGB."""
from __future__ import annotations

from pathlib import Path
from typing import Union

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
