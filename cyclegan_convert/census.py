"""How many images of each working size a run will convert, known before they are decoded.

The CPU's compile decision (``backends.compile_plan``) needs it: compiling the generator for one
size pays only when enough images of that size are still to come. File headers give the sizes
for a fraction of a millisecond each, so a walk over the planned files fills the census while the
first images convert; files whose header cannot be read here (RAW, a corrupt file) are not counted.
"""
from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Optional


Shape = tuple[int, int]  # padded (height, width) the generator runs at

_TURNED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def probe_size(path: Path) -> Optional[Shape]:
    """The upright (height, width) from the file's header, or None when Pillow cannot tell cheaply."""
    from PIL import Image

    if not isinstance(path, Path):
        return None  # an object in a store: not worth a request per file for a compile plan
    try:
        with Image.open(path) as img:
            w, h = img.size
            orientation = img.getexif().get(0x0112, 1) if img.format in ("JPEG", "MPO", "TIFF", "WEBP") else 1
    except Exception:  # noqa: BLE001  (the real decode reports what is wrong with the file)
        return None
    return (w, h) if orientation in _TURNED else (h, w)


class ShapeCensus:
    """Planned and finished images per padded working size; thread-safe (the walk fills it while
    the inference thread reads it). ``complete`` is set when the walk has seen every file."""

    def __init__(self) -> None:
        self._planned: Counter[Shape] = Counter()
        self._done: Counter[Shape] = Counter()
        self._lock = threading.Lock()
        self.complete = threading.Event()

    def plan(self, shape: Shape, n: int = 1) -> None:
        with self._lock:
            self._planned[shape] += n

    def finish(self, shape: Shape, n: int = 1) -> None:
        with self._lock:
            self._done[shape] += n

    def remaining(self, shape: Shape) -> int:
        """Images of this size still to convert (a lower bound while the walk is running)."""
        with self._lock:
            return max(self._planned[shape] - self._done[shape], 0)

    def planned(self) -> dict[Shape, int]:
        with self._lock:
            return dict(self._planned)
