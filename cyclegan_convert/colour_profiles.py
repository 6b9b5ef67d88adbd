"""Every input into sRGB through its ICC profile before the model sees it.

The models were trained on sRGB photos. A photo tagged with another profile holds other numbers for
the same colour: Display P3 (phones) a little, a CMYK press profile a lot, and JPEG XL's XYB profile
entirely (a wheat field came out orange, a man purple). Such an image is converted through
LittleCMS (Pillow's ImageCms) to sRGB, and its output carries an sRGB profile instead of the
original, so viewers show what the model made. Images tagged sRGB (or untagged) pass unchanged.
"""
from __future__ import annotations

import functools
import io
from typing import Optional

from PIL import Image, ImageCms


@functools.lru_cache(maxsize=1)
def srgb_profile_bytes() -> bytes:
    """The sRGB profile written into outputs converted from another profile."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def is_srgb(profile: bytes) -> bool:
    """Tagged sRGB by its description (sRGB IEC61966-2.1 and its many copies): no conversion."""
    try:
        desc = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile)))
    except (ImageCms.PyCMSError, OSError, TypeError, ValueError):
        return True  # an unreadable profile: nothing to convert through, the values stay as they are
    return "srgb" in desc.lower().replace(" ", "")


@functools.lru_cache(maxsize=8)
def _transform(profile: bytes, mode: str) -> Optional[ImageCms.ImageCmsTransform]:
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        return ImageCms.buildTransform(src, ImageCms.createProfile("sRGB"), mode, "RGB",
                                       renderingIntent=ImageCms.Intent.PERCEPTUAL)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None  # a profile LittleCMS cannot use, or one that does not fit the mode


def to_srgb(img: Image.Image, profile: Optional[bytes]) -> Optional[Image.Image]:
    """``img`` (RGB or CMYK, 8 bits) converted from ``profile`` to sRGB, or None when there is
    nothing to convert (no profile, sRGB already, another mode, a profile that cannot be used)."""
    if not profile or img.mode not in ("RGB", "CMYK"):
        return None
    space = profile[16:20]
    if (img.mode == "RGB" and space != b"RGB ") or (img.mode == "CMYK" and space != b"CMYK"):
        return None
    if img.mode == "RGB" and is_srgb(profile):
        return None
    transform = _transform(bytes(profile), img.mode)
    return None if transform is None else transform.apply(img)
