"""Input shapes for engines: ``BxHxW`` strings, optimization profiles, and profiles derived from real media.

Sides are multiples of 4 (the generator's two stride-2 downsamplings); the backends pad to that, so a
profile holds padded sizes.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

from ..errors import MediaError, UsageError
from ..formats import suffixes_text, upright_size  # sizes as shown, HEIC and RAW too
from ..imaging import is_image_name

MULTIPLE = 4
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ts"})


def round_up(n: int, multiple: int = MULTIPLE) -> int:
    return -(-n // multiple) * multiple


@dataclass(frozen=True, order=True)
class Shape:
    """One input shape: batch, height, width (NCHW with 3 channels)."""

    batch: int
    height: int
    width: int

    @classmethod
    def parse(cls, text: str) -> "Shape":
        parts = text.lower().replace(" ", "").split("x")
        try:
            b, h, w = (int(p) for p in parts)
        except ValueError:
            raise UsageError(f"shape {text!r}: expected BxHxW, e.g. 1x512x512") from None
        if b < 1 or h < 1 or w < 1:
            raise UsageError(f"shape {text!r}: every dimension must be at least 1")
        if h % MULTIPLE or w % MULTIPLE:
            raise UsageError(f"shape {text!r}: height and width must be multiples of {MULTIPLE} "
                             f"(try {b}x{round_up(h)}x{round_up(w)})")
        return cls(b, h, w)

    def __str__(self) -> str:
        return f"{self.batch}x{self.height}x{self.width}"

    @property
    def nchw(self) -> tuple[int, int, int, int]:
        return (self.batch, 3, self.height, self.width)


@dataclass(frozen=True)
class Profile:
    """A TensorRT optimization profile: any input between ``min`` and ``max`` (per dimension) runs;
    kernels are tuned for ``opt``; activation memory is sized for ``max``."""

    min: Shape
    opt: Shape
    max: Shape

    def __post_init__(self) -> None:
        for dim in ("batch", "height", "width"):
            lo, mid, hi = (getattr(s, dim) for s in (self.min, self.opt, self.max))
            if not lo <= mid <= hi:
                raise UsageError(f"profile {self}: {dim} must satisfy min <= opt <= max")

    def __str__(self) -> str:
        return f"{self.min}:{self.opt}:{self.max}"

    def fits_image(self, height: int, width: int) -> bool:
        return (self.min.height <= height <= self.max.height) and (self.min.width <= width <= self.max.width)

    def contains(self, shape: Shape) -> bool:
        return self.fits_image(shape.height, shape.width) and self.min.batch <= shape.batch <= self.max.batch

    def as_json(self) -> dict[str, str]:
        return {"min": str(self.min), "opt": str(self.opt), "max": str(self.max)}


# Photos and HD video up to 1280 on either side, batches up to 4; `--for` or --max-shape for more.
DEFAULT_PROFILE = Profile(Shape(1, 64, 64), Shape(1, 512, 512), Shape(4, 1280, 1280))


def make_profile(min_shape: Optional[str] = None, opt_shape: Optional[str] = None, max_shape: Optional[str] = None,
                 sizes: Optional[Iterable[tuple[int, int]]] = None) -> Profile:
    """A profile from the user's options; missing parts come from ``sizes`` (real images) or the default."""
    base = profile_for_sizes(sizes) if sizes is not None else DEFAULT_PROFILE
    lo = Shape.parse(min_shape) if min_shape else base.min
    hi = Shape.parse(max_shape) if max_shape else base.max
    if opt_shape:
        mid = Shape.parse(opt_shape)
    else:  # the base opt, pulled inside whatever the user gave for min and max
        mid = Shape(*(min(max(getattr(base.opt, d), getattr(lo, d)), getattr(hi, d))
                      for d in ("batch", "height", "width")))
    return Profile(lo, mid, hi)


# Activation memory grows with batch x pixels: the default profile's budget caps the batch of big sizes.
MAX_BATCH_PIXELS = DEFAULT_PROFILE.max.batch * DEFAULT_PROFILE.max.height * DEFAULT_PROFILE.max.width


def profile_for_sizes(sizes: Iterable[tuple[int, int]], max_batch: int = DEFAULT_PROFILE.max.batch) -> Profile:
    """The smallest profile that holds every (height, width), padded; tuned for the most common size.

    The max batch shrinks for big images (down to 1) so activation memory stays near the default's.
    """
    padded = [(round_up(h), round_up(w)) for h, w in sizes]
    if not padded:
        raise UsageError("no image or video sizes to derive a profile from")
    hs, ws = [h for h, _ in padded], [w for _, w in padded]
    common_h, common_w = Counter(padded).most_common(1)[0][0]
    batch = max(1, min(max_batch, MAX_BATCH_PIXELS // (max(hs) * max(ws))))
    return Profile(Shape(1, min(hs), min(ws)), Shape(1, common_h, common_w), Shape(batch, max(hs), max(ws)))


def scan_sizes(path: Union[str, Path], on_skip: Callable[[str], None] = lambda s: None) -> list[tuple[int, int]]:
    """(height, width) of every image under a folder (recursively, EXIF orientation applied), or of a video.

    In a folder, a file that cannot be read is passed to ``on_skip`` (one line) and left out."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and is_image_name(p))
        sizes = []
        for p in files:
            try:
                sizes.append(upright_size(p))
            except MediaError as e:
                on_skip(str(e))
        if not sizes:
            raise UsageError(f"{path}: no readable images found (looked for {suffixes_text()})")
        return sizes
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return [_video_size(path)]
    if path.is_file() and is_image_name(path):
        return [upright_size(path)]
    raise UsageError(f"{path}: --for needs a folder of images, an image or a video")


def _video_size(path: Path) -> tuple[int, int]:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return (stream.codec_context.height, stream.codec_context.width)
    except (av.error.FFmpegError, IndexError) as e:
        raise MediaError(f"{path}: cannot read the video size ({e})") from None
