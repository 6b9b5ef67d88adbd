"""How large an image ccv agrees to decode: by the memory the decode needs, not by a pixel count.

Pillow's own guard (a warning above 89 MP, refusal above 179 MP) turned away real photos: a 200 MP
phone HEIC (Samsung Galaxy S24 Ultra, 16320x12240) and a 280 MP JPEG that ``--max-side 768`` decodes
at 1/8 scale in 21 MB. So ccv switches Pillow's guard off when this module is imported and asks two
questions of every image before its pixels are decoded:

- does the header claim more pixels than the file's bytes could hold? (a "decompression bomb": a few
  kilobytes that say gigapixels). Deflate cannot exceed 1032:1; real photos compress 5:1 to 50:1.
- does the decode, at the size it will really be decoded at (a JPEG shrinks in libjpeg when
  ``--max-side`` asks), fit in half the memory free now?
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from PIL import Image

from .errors import MediaError

Image.MAX_IMAGE_PIXELS = None  # replaced by check() below, for every image ccv opens

# Pillow + pillow-heif took 1.4 GB for that 200 MP HEIC (7 bytes per pixel: the decoded planes and
# the RGB image); 8 leaves room for the RGB copy ccv makes
BYTES_PER_PIXEL = 8
MAX_RATIO = 1100  # raw RGB bytes per file byte beyond which no real image goes (deflate: 1032)
SMALL_ENOUGH = 1 << 26  # 67 MP: below this a high ratio is a flat picture (a scan of white), not an attack


def memory_free() -> int:
    """Bytes of memory available now (Linux: MemAvailable), else the machine's physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def memory_budget() -> int:
    """What one decode may use: half of what is free, the rest for the model and the other workers."""
    return memory_free() // 2


def check(path: Path, stored: tuple[int, int], decoded: Optional[tuple[int, int]] = None,
          shrinkable: bool = False) -> None:
    """Raises ``MediaError`` (one line naming the file) when the image at ``path`` should not be
    decoded. ``stored``: (W, H) in its header; ``decoded``: (W, H) it will be decoded at (a JPEG
    draft), default ``stored``; ``shrinkable``: its format decodes smaller with ``--max-side``."""
    w, h = stored
    pixels = max(1, w) * max(1, h)
    try:
        size = Path(path).stat().st_size
    except (OSError, TypeError):
        size = None
    if size is not None and pixels > SMALL_ENOUGH and pixels * 3 > size * MAX_RATIO:
        raise MediaError(f"{path}: refused: its header claims {w}x{h} ({pixels / 1e6:.0f} MP) in "
                         f"{_amount(size)}, more than any real image holds (a decompression bomb?)")
    dw, dh = decoded or stored
    need, budget = max(1, dw) * max(1, dh) * BYTES_PER_PIXEL, memory_budget()
    if need > budget:
        hint = ("a smaller --max-side decodes this JPEG smaller" if shrinkable else
                "free memory, or shrink it with another tool first")
        raise MediaError(f"{path}: too large to decode here: {dw}x{dh} ({dw * dh / 1e6:.0f} MP) needs "
                         f"about {_amount(need)}, {_amount(budget)} allowed (half the free memory): {hint}")


def _amount(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n / 1024:.0f} kB"
