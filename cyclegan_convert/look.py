"""The look under the user's hand: how much of the photo's colour to keep, and how strong the style.

Both work on the model's output at output size against the input at the size it was decoded
(scaled to the output):

    colours   the model's luma, and its chroma moved by ``colors`` of the way from its own colour
              layout to the input's (Gatys et al. 2016, "Preserving Color in Neural Artistic Style
              Transfer": the model's strokes and light, the photo's hues). The layout is taken at
              ``COLOR_SIDE``: the model's finer colour strokes stay, so ``keep`` still reads as
              broken colour, not as a tinted photo.
    strength  then the output moves only that far from the input: input + strength * (styled -
              input), per channel.

A look of colours 0 and strength 1 is the model's raw output and costs nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from .errors import UsageError

_COLORS_WORDS = {"model": 0.0, "keep": 1.0}


@dataclass(frozen=True)
class Look:
    colors: float = 0.0    # fraction of the input's a*/b* kept: 0 the model's colours, 1 the photo's
    strength: float = 1.0  # 1 the styled output, 0 the input unchanged

    def __post_init__(self) -> None:
        if not 0.0 <= self.colors <= 1.0:
            raise UsageError(f"--colors {self.colors}: use model, keep, or a fraction from 0 to 1")
        if not 0.0 <= self.strength <= 1.0:
            raise UsageError(f"--strength {self.strength}: use a number from 0 (the input) to 1 (the model's output)")

    @property
    def raw(self) -> bool:
        """The model's output as it is: nothing to compute."""
        return self.colors == 0.0 and self.strength == 1.0

    def settings(self) -> dict[str, float]:
        """What goes into an output's settings key: nothing for the raw look, so outputs made
        before looks existed stay current."""
        return {} if self.raw else {"colors": self.colors, "strength": self.strength}

    def describe(self) -> str:
        colors = {0.0: "model", 1.0: "keep"}.get(self.colors, f"{self.colors:g}")
        return f"colors {colors}, strength {self.strength:g}"

    @classmethod
    def of(cls, colors: Union[str, float, None] = None, strength: Optional[float] = None,
           default: Optional[dict] = None) -> "Look":
        """The look asked for: each of ``colors`` and ``strength`` given, else the model's
        recommended value (``default``, from its card), else the raw output."""
        default = default or {}
        c = parse_colors(colors) if colors is not None else float(default.get("colors", 0.0))
        s = float(strength) if strength is not None else float(default.get("strength", 1.0))
        return cls(c, s)


def look_for(ref, colors: Union[str, float, None] = None, strength: Optional[float] = None) -> Look:
    """The look for a model (a ``resolve.ModelRef`` or None): what was asked, else the model's
    recommendation from its store entry, else the raw output."""
    entry = getattr(ref, "entry", None)
    return Look.of(colors, strength, entry.look if entry is not None else None)


def look_note(look: Look, colors: object, strength: object) -> str:
    """The line that says which look outputs get, when it is not the raw output; where the user
    did not choose both parts, it says the model recommended them and how to get the raw output."""
    if look.raw:
        return ""
    chosen = colors is not None and strength is not None
    return f"look: {look.describe()}" + ("" if chosen else " (the model's recommendation; --colors model "
                                                          "--strength 1 for its raw output)")


def parse_colors(text: Union[str, float]) -> float:
    """``model`` (0), ``keep`` (1) or a fraction of the input's colour to keep."""
    if isinstance(text, (int, float)):
        return float(text)
    word = text.strip().lower()
    if word in _COLORS_WORDS:
        return _COLORS_WORDS[word]
    try:
        value = float(word)
    except ValueError:
        raise UsageError(f"--colors {text!r}: use model, keep, or a fraction from 0 to 1 (e.g. 0.5)") from None
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"--colors {text!r}: a fraction must be from 0 to 1")
    return value


# How fine the kept colour layout is: the longest side of the image it is computed on. A 12 MP photo's
# colours are taken in cells of about 8 px, far finer than a viewer reads colour at, and coarser
# than the model's colour strokes, which stay.
COLOR_SIDE = 512


def apply_look(output: np.ndarray, source: np.ndarray, look: Look) -> np.ndarray:
    """uint8 (H, W, 3) model output and its input (any size: scaled to the output's) -> uint8
    (H, W, 3) with ``look`` applied (OpenCV's saturating, rounding arithmetic)."""
    if look.raw:
        return output
    import cv2

    h, w = output.shape[:2]
    out = output
    if look.colors:
        # the model's luma, and its chroma moved by the difference between the input's and its own
        # colour layout (computed small: chroma layout is smooth; the model's fine colour strokes stay)
        small = _fit(h, w, COLOR_SIDE)
        shift = look.colors * (_chroma(cv2.resize(source, small, interpolation=cv2.INTER_AREA))
                               - _chroma(cv2.resize(output, small, interpolation=cv2.INTER_AREA)))
        offset = shift[..., :1] * _CB_TO_RGB + shift[..., 1:] * _CR_TO_RGB  # luma unchanged
        out = cv2.add(out, cv2.resize(offset, (w, h), interpolation=cv2.INTER_LINEAR), dtype=cv2.CV_8U)
    if look.strength != 1.0:
        src = source if source.shape[:2] == (h, w) else cv2.resize(source, (w, h), interpolation=cv2.INTER_LINEAR)
        out = cv2.addWeighted(out, look.strength, np.ascontiguousarray(src), 1.0 - look.strength, 0.0)
    return out


# Gamma-encoded luma and chroma (BT.601 YCbCr, full range): the space of Gatys et al.'s luminance-only
# transfer (their YIQ is the same idea), linear in the encoded values, so a chroma shift at constant
# luma is one RGB offset. CIELAB at full size costs 3-7 s per 12 MP here (OpenCV, measured) for a
# difference a viewer does not see in a shift this smooth.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_CB_TO_RGB = np.array([0.0, -0.114 * 1.772 / 0.587, 1.772], np.float32)
_CR_TO_RGB = np.array([1.402, -0.299 * 1.402 / 0.587, 0.0], np.float32)


def _chroma(rgb: np.ndarray) -> np.ndarray:
    """uint8 (h, w, 3) -> float32 (h, w, 2): Cb, Cr (in 8-bit units, centred on 0)."""
    f = rgb.astype(np.float32)
    y = f @ _LUMA
    return np.stack([(f[..., 2] - y) / 1.772, (f[..., 0] - y) / 1.402], axis=-1)


def _fit(h: int, w: int, side: int) -> tuple[int, int]:
    """(width, height) with the longest side at most ``side`` (OpenCV's order)."""
    scale = min(1.0, side / max(h, w))
    return max(1, round(w * scale)), max(1, round(h * scale))
