"""The look under the user's hand: the photo's edges for the model's outlines, brush strokes, how
much of the photo's colour and highlights to keep, and how strong the style.

All five work on the model's output at output size against the input at the size it was decoded
(scaled to the output):

    edges     first of all, near the photo's edges, ``edges`` of the way from the model's output to
              a fit that is locally linear in the photo's luma (He, Sun & Tang's guided filter,
              2013): the model's colours and tone on each side of an edge, the photo's edge between
              them. The model draws outlines, contour rings and coloured fringes there (halos, the
              fault a blind audit named most: "edges drawn like this make the image look embossed
              or traced"; Monet paints without outlines). Only at edges that stand alone (a petal
              against a soft background): where the photo is crowded with edges (foliage,
              bristles) the model's strokes are the painting, and where it is flat (a sky, a wall)
              its texture stays whole.
    strokes   then the model's paint drawn out into brush strokes that follow the photo's
              forms: each output pixel becomes the Gaussian-weighted mean of the output along a
              short straight line through it, in the direction of least change of the photo
              around it (the structure tensor's minor eigenvector, Kass & Witkin 1987; the
              smoothing along it is the line integral convolution of Cabral & Leedom 1993, straight
              rather than along streamlines, as in Kyprianidis & Kang's coherence-enhancing
              filtering, 2011). It turns the generator's isotropic grain into directed strokes and
              keeps edges across them. ``strokes`` 1 reaches ``STROKE_REACH`` of the image's long
              side beyond ``NATIVE_SIDE`` each way: nothing at the size the model was trained at,
              where its own texture already has a painting's scale, and nearly a fixed share of
              the image at photo sizes, so large outputs look alike whatever their size.
    colours   then the model's luma, and its chroma moved by ``colors`` of the way from its own colour
              layout to the input's (Gatys et al. 2016, "Preserving Color in Neural Artistic Style
              Transfer": the model's strokes and light, the photo's hues). The layout is taken at
              ``COLOR_SIDE``: the model's finer colour strokes stay, so ``keep`` still reads as
              broken colour, not as a tinted photo.
    highlights then where the photo is nearly white (a sun, lamps, a backlit sky: clipped, nothing
              left to translate), ``highlights`` of the way back to the photo. The model paints such
              places as flat, cool grey discs with hard edges (the paintings it learnt from have no
              pure white); the photo's own glow, warm and soft, reads as light.
    strength  then the output moves only that far from the input: input + strength * (styled -
              input), per channel.

A look of edges 0, strokes 0, colours 0, highlights 0 and strength 1 is the model's raw output and
costs nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from .errors import UsageError

_COLORS_WORDS = {"model": 0.0, "keep": 1.0}
RAW_FLAGS = "--colors model --strength 1 --strokes 0 --highlights 0 --edges 0"  # the raw output, whatever a card recommends


@dataclass(frozen=True)
class Look:
    colors: float = 0.0    # fraction of the input's a*/b* kept: 0 the model's colours, 1 the photo's
    strength: float = 1.0  # 1 the styled output, 0 the input unchanged
    strokes: float = 0.0   # brush strokes' reach, in STROKE_REACH of the long side beyond NATIVE_SIDE: 0 none
    highlights: float = 0.0  # share of the photo kept where it is nearly white: 0 the model's, 1 the photo's
    edges: float = 0.0  # share of the photo's edges (in the model's colours) kept near them: 0 the model's, 1 the photo's

    def __post_init__(self) -> None:
        if not 0.0 <= self.colors <= 1.0:
            raise UsageError(f"--colors {self.colors}: use model, keep, or a fraction from 0 to 1")
        if not 0.0 <= self.strength <= 1.0:
            raise UsageError(f"--strength {self.strength}: use a number from 0 (the input) to 1 (the model's output)")
        if not 0.0 <= self.strokes <= MAX_STROKES:
            raise UsageError(f"--strokes {self.strokes}: use a number from 0 (none) to {MAX_STROKES:g} (1: strokes "
                             f"reaching about {100 * STROKE_REACH:g}% of a large image's long side each way)")
        if not 0.0 <= self.highlights <= 1.0:
            raise UsageError(f"--highlights {self.highlights}: use a number from 0 (the model's) to 1 (the photo's)")
        if not 0.0 <= self.edges <= 1.0:
            raise UsageError(f"--edges {self.edges}: use a number from 0 (the model's) to 1 (the photo's)")

    @property
    def raw(self) -> bool:
        """The model's output as it is: nothing to compute."""
        return (self.colors == 0.0 and self.strength == 1.0 and self.strokes == 0.0 and self.highlights == 0.0
                and self.edges == 0.0)

    def settings(self) -> dict[str, float]:
        """What goes into an output's settings key: nothing for the raw look, so outputs made
        before looks existed stay current; strokes, highlights and edges only where there are some,
        so outputs made before they existed stay current too."""
        if self.raw:
            return {}
        return {"colors": self.colors, "strength": self.strength, **({"strokes": self.strokes} if self.strokes else {}),
                **({"highlights": self.highlights} if self.highlights else {}),
                **({"edges": self.edges} if self.edges else {})}

    def describe(self) -> str:
        colors = {0.0: "model", 1.0: "keep"}.get(self.colors, f"{self.colors:g}")
        return (f"colors {colors}, strength {self.strength:g}" + (f", strokes {self.strokes:g}" if self.strokes else "")
                + (f", highlights {self.highlights:g}" if self.highlights else "")
                + (f", edges {self.edges:g}" if self.edges else ""))

    @classmethod
    def of(cls, colors: Union[str, float, None] = None, strength: Optional[float] = None,
           default: Optional[dict] = None, strokes: Optional[float] = None,
           highlights: Optional[float] = None, edges: Optional[float] = None) -> "Look":
        """The look asked for: each of ``colors``, ``strength``, ``strokes``, ``highlights`` and
        ``edges`` given, else the model's recommended value (``default``, from its card), else the
        raw output's."""
        default = default or {}
        c = parse_colors(colors) if colors is not None else float(default.get("colors", 0.0))
        s = float(strength) if strength is not None else float(default.get("strength", 1.0))
        k = float(strokes) if strokes is not None else float(default.get("strokes", 0.0))
        h = float(highlights) if highlights is not None else float(default.get("highlights", 0.0))
        e = float(edges) if edges is not None else float(default.get("edges", 0.0))
        return cls(c, s, k, h, e)


def look_for(ref, colors: Union[str, float, None] = None, strength: Optional[float] = None,
             strokes: Optional[float] = None, highlights: Optional[float] = None,
             edges: Optional[float] = None) -> Look:
    """The look for a model (a ``resolve.ModelRef`` or None): what was asked, else the model's
    recommendation from its store entry, else the raw output."""
    return Look.of(colors, strength, recommended_look(ref), strokes, highlights, edges)


LOOK_PARTS = ("colors", "strength", "strokes", "highlights", "edges")  # look_for's order


def asked_look(options) -> tuple:
    """The look's parts as an options object (``ConvertOptions``, ``VideoOptions``) gives them, None
    where not given, in ``look_for``'s order."""
    return tuple(getattr(options, part) for part in LOOK_PARTS)


def recommended_look(ref) -> Optional[dict]:
    """The look a model's store entry recommends (its card's), None for a model without one."""
    entry = getattr(ref, "entry", None)
    return entry.look if entry is not None and entry.look else None


def look_note(look: Look, ref, asked: tuple) -> str:
    """The line that says which look outputs get, when it is not the raw output; where the user did
    not choose every part (``asked``: the options as given, None where not) and the model recommends a
    look, it says the rest came from it and how to get the raw output."""
    if look.raw:
        return ""
    chosen = all(v is not None for v in asked)
    from_model = not chosen and recommended_look(ref) is not None
    return f"look: {look.describe()}" + (f" (the model's recommendation; {RAW_FLAGS} for its raw output)" if from_model else "")



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


# Strokes: ``strokes`` 1 reaches this share of the output's long side beyond NATIVE_SIDE each way
# (17 px at 1920 px, 40 px at 12 MP, none at 256 px); the directions are taken from the photo at
# most TENSOR_SIDE long (they change over the reach, not per pixel); each side of a stroke is
# sampled at STROKE_TAPS points (bilinear).
STROKE_REACH = 0.01
# CycleGAN models train on 256 px images (ccv's and the original's): at that size the model's own grain
# is as coarse, against the image, as a painting's brushwork; measured on 256 px held-out photos,
# strokes there moved the outputs' texture away from Monet's (RESULTS, stop 29), so they start above it.
NATIVE_SIDE = 256
MAX_STROKES = 3.0
TENSOR_SIDE = 1024
STROKE_TAPS = 6
# The directions are averaged over three times the reach: over the reach itself, flat skies got wormy
# swirls (a blind judge: "fingerprint-like", "more Van Gogh than Monet"); at 4x they run parallel
# for so long that they read as streaks; 3x against 2x, two blind rounds on 27 photos: preferred on
# 14, 2x on 4, the same on 36 ("fewer hooks, rings and whirls on stone, wood, water, bokeh").
DIRECTION_SCALE = 3.0
STROKE_RANGE = 12.0  # 8-bit luma levels of the photo: samples this far from the pixel's count e^-1/2 as much
# Where the photo says little (a clear sky, a wall, bokeh), its directions are noise and the strokes
# swirled ("fingerprints", "vortices"); a vertical gradient's worth of structure tensor, as much as a
# ramp of one luma level per pixel gives (Sobel: 8 per level, squared), makes them horizontal there,
# as Monet laid skies and water. A blind judge preferred it on 16 of 27 photos, the swirls on 1.
FLAT_PRIOR = 64.0

# Highlights: the photo's luma from HIGHLIGHT_FROM (8-bit) to 255 ramps from the output to the photo,
# the ramp smoothed over one pixel of the model's NATIVE_SIDE image, so the edge of a clipped sun has
# no contour; computed at most HIGHLIGHT_SIDE long (it is smooth). From 240: a sun, lamps, the bright
# core of a backlit sky; most of white clouds and snow stay painted.
HIGHLIGHT_FROM = 240.0
HIGHLIGHT_SIDE = 1024

# Edges: the fit's window is EDGE_RADIUS pixels of the model's NATIVE_SIDE image each way (its halos are
# one to three such pixels wide); contrast of the photo below EDGE_EPS (a standard deviation of 5
# levels in 255) counts as flat there, and an edge is cleaned wholly from a local standard deviation
# of EDGE_CONTRAST (10 levels), in proportion below. The fit is computed at most EDGE_SIDE long and
# applied at full size with the photo's own luma (He & Sun's fast guided filter, 2015): the photo's
# edges stay sharp, the model's colours are smooth.
EDGE_RADIUS = 2.0
EDGE_EPS = (5.0 / 255) ** 2
EDGE_CONTRAST = 10.0 / 255
EDGE_SIDE = 1024
# Only edges that stand alone: where the photo has contrast all around (foliage, bristles, a rock
# face: more than half of the area within EDGE_SPREAD windows is edge), the model's strokes there are
# the painting, and a blind judge called them cleaned "nearly photographic" (RESULTS, stop 32); the
# share cleaned falls to none where all of it is. An outline round a petal against a soft background
# stays wholly cleaned.
EDGE_SPREAD = 6.0
EDGE_BAND = 64  # rows at a time at full size: seven float maps of a 48 MP photo would take 1.3 GB


def apply_look(output: np.ndarray, source: np.ndarray, look: Look) -> np.ndarray:
    """uint8 (H, W, 3) model output and its input (any size: scaled to the output's) -> uint8
    (H, W, 3) with ``look`` applied (OpenCV's saturating, rounding arithmetic)."""
    if look.raw:
        return output
    import cv2

    h, w = output.shape[:2]
    out = output
    if look.edges:
        out = photo_edges(out, source, look.edges)
    if look.strokes:
        out = brush_strokes(out, source, look.strokes * STROKE_REACH * max(0, max(h, w) - NATIVE_SIDE))
    if look.colors:
        # the model's luma, and its chroma moved by the difference between the input's and its own
        # colour layout (computed small: chroma layout is smooth; the model's fine colour strokes stay)
        small = _fit(h, w, COLOR_SIDE)
        shift = look.colors * (_chroma(cv2.resize(source, small, interpolation=cv2.INTER_AREA))
                               - _chroma(cv2.resize(output, small, interpolation=cv2.INTER_AREA)))
        offset = shift[..., :1] * _CB_TO_RGB + shift[..., 1:] * _CR_TO_RGB  # luma unchanged
        out = cv2.add(out, cv2.resize(offset, (w, h), interpolation=cv2.INTER_LINEAR), dtype=cv2.CV_8U)
    if look.highlights:
        out = keep_highlights(out, source, look.highlights)
    if look.strength != 1.0:
        src = source if source.shape[:2] == (h, w) else cv2.resize(source, (w, h), interpolation=cv2.INTER_LINEAR)
        out = cv2.addWeighted(out, look.strength, np.ascontiguousarray(src), 1.0 - look.strength, 0.0)
    return out


def highlight_mask(source: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """float32, 0 to 1: how nearly white the photo (uint8 RGB, any size) is around each pixel (see
    HIGHLIGHT_FROM), for an output of ``size`` = (w, h) but computed at most HIGHLIGHT_SIDE long."""
    import cv2

    w, h = size
    small = _fit(h, w, HIGHLIGHT_SIDE)
    y = _scaled(source, small).astype(np.float32) @ _LUMA
    m = np.clip((y - HIGHLIGHT_FROM) / (255.0 - HIGHLIGHT_FROM), 0.0, 1.0)
    return cv2.GaussianBlur(m, (0, 0), max(small) / NATIVE_SIDE)


def keep_highlights(image: np.ndarray, source: np.ndarray, amount: float) -> np.ndarray:
    """uint8 (H, W, 3) ``image`` moved ``amount`` of the way to the photo where the photo is nearly
    white (``highlight_mask``); only the rows that have such places are computed."""
    import cv2

    h, w = image.shape[:2]
    m = amount * highlight_mask(source, (w, h))
    if m.max(initial=0.0) < 0.5 / 255:  # no highlights: nothing would move by half a level
        return image
    m = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
    rows = np.flatnonzero(m.max(axis=1) >= 0.5 / 255)
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    src = (source if source.shape[:2] == (h, w) else _scaled(source, (w, h)))[y0:y1]
    out = image.copy()
    m = m[y0:y1]
    out[y0:y1] = cv2.blendLinear(src, image[y0:y1], m, 1.0 - m)  # OpenCV's threads (numpy's: 2.5x slower)
    return out


def photo_edges(image: np.ndarray, source: np.ndarray, amount: float) -> np.ndarray:
    """uint8 (H, W, 3) ``image`` moved ``amount`` of the way, near the photo's edges, to a guided
    filter's fit of it on the photo's luma (see the module's docstring and EDGE_RADIUS). An image that is
    an affine function of the photo's luma comes back as it was."""
    import cv2

    h, w = image.shape[:2]
    small = _fit(h, w, EDGE_SIDE)
    r = max(1, round(EDGE_RADIUS * max(small) / NATIVE_SIDE))

    def mean(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)

    g = cv2.cvtColor(_scaled(source, small), cv2.COLOR_RGB2GRAY).astype(np.float32) * np.float32(1 / 255)
    p = _scaled(image, small).astype(np.float32) * np.float32(1 / 255)
    mg = mean(g)
    var = np.maximum(mean(g * g) - mg * mg, 0.0)
    mp = mean(p)
    a = (mean(p * g[..., None]) - mp * mg[..., None]) / (var + EDGE_EPS)[..., None]
    b = mp - a * mg[..., None]
    k = np.clip(np.sqrt(var) / EDGE_CONTRAST, 0.0, 1.0)
    crowded = cv2.GaussianBlur(k, (0, 0), EDGE_SPREAD * r)  # the share of the area around that is edge
    k = amount * k * np.clip(2.0 * (1.0 - crowded), 0.0, 1.0)
    k = cv2.GaussianBlur(k, (0, 0), r / 2)  # no step where the window leaves an edge
    if k.max(initial=0.0) < 0.5 / 255:  # a flat photo: nothing would move by half a level
        return image
    # out = (1 - k) * image + k * 255 * (mean(a) * luma + mean(b)), with k folded into the maps
    ka = cv2.merge([*cv2.split(mean(a) * k[..., None]), k])
    kb = mean(b) * k[..., None] * np.float32(255)
    luma = cv2.cvtColor(source, cv2.COLOR_RGB2GRAY)
    if luma.shape != (h, w):
        luma = _scaled(luma, (w, h))
    # the maps enlarged a band at a time: bilinear, pixel centres aligned as cv2.resize aligns them
    sx = ((np.arange(w, dtype=np.float32) + 0.5) * (small[0] / w) - 0.5)[None, :]
    out = np.empty_like(image)
    for y0 in range(0, h, EDGE_BAND):
        y1 = min(h, y0 + EDGE_BAND)
        sy = ((np.arange(y0, y1, dtype=np.float32) + 0.5) * (small[1] / h) - 0.5)[:, None]
        mx, my = np.broadcast_to(sx, (y1 - y0, w)).copy(), np.broadcast_to(sy, (y1 - y0, w)).copy()
        band_ka = cv2.remap(ka, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        band_kb = cv2.remap(kb, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        lum = luma[y0:y1, :, None].astype(np.float32)
        band = image[y0:y1].astype(np.float32)
        fit = band_ka[..., :3] * lum + band_kb
        out[y0:y1] = np.clip(band * (1.0 - band_ka[..., 3:]) + fit + 0.5, 0, 255).astype(np.uint8)
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


def _scaled(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` at ``size`` (w, h): area averaging to shrink, bilinear to enlarge (INTER_AREA enlarges
    by repeating pixels, blocks that a gradient would see as edges)."""
    import cv2

    shrink = size[0] < image.shape[1]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def stroke_directions(guide: np.ndarray, size: tuple[int, int], sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors (x, y), float32 (h, w) each for ``size`` = (w, h): at each pixel the direction in
    which ``guide`` (uint8 RGB, any size) changes least, averaged over ``sigma`` output pixels (the
    structure tensor smoothed at that scale; along an edge, across a gradient), horizontal where
    it has almost no structure (``FLAT_PRIOR``)."""
    return half_angle(*doubled_angle(guide, size, sigma))


def doubled_angle(guide: np.ndarray, size: tuple[int, int], sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """``stroke_directions``' gradient orientation as its doubled angle (cos, sin), float32 (h, w)
    each, not quite unit length. Computed at most TENSOR_SIDE long; the doubled angle is what is
    scaled up, as a direction and its opposite are one orientation."""
    import cv2

    w, h = size
    small = _fit(h, w, TENSOR_SIDE)
    g = cv2.cvtColor(_scaled(guide, small), cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
    s = max(0.5, sigma * small[0] / w)
    jxx, jxy, jyy = (cv2.GaussianBlur(v, (0, 0), s) for v in (gx * gx, gx * gy, gy * gy))
    jyy += FLAT_PRIOR  # horizontal where the photo has less structure than that
    # the gradient's doubled angle (cos, sin): the major eigenvector's; the strokes run across it
    c2, s2 = jxx - jyy, 2.0 * jxy
    norm = np.sqrt(c2 * c2 + s2 * s2) + 1e-12
    c2, s2 = (cv2.resize(v / norm, size, interpolation=cv2.INTER_LINEAR) for v in (c2, s2))
    return c2, s2


def half_angle(c2: np.ndarray, s2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The stroke's unit vector (x, y) across the gradient whose doubled angle is (c2, s2), any
    length: (-sin, cos) of half the angle, from the half-angle identities (numpy's arctan2, sin and
    cos took 0.4 s per 12 MP)."""
    c = c2 / (np.hypot(c2, s2) + np.float32(1e-12))
    tx = np.sqrt(np.maximum(np.float32(0.5) - np.float32(0.5) * c, 0.0))
    ty = np.sqrt(np.maximum(np.float32(0.5) + np.float32(0.5) * c, 0.0))
    return np.copysign(tx, -s2), ty  # the half angle lies in (-90, 90] degrees: sin takes s2's sign


def brush_strokes(image: np.ndarray, guide: np.ndarray, reach: float) -> np.ndarray:
    """uint8 (H, W, 3) ``image`` smoothed along straight strokes ``reach`` pixels long each way, in
    the directions of ``guide`` (the photo: its forms, not the model's grain, steer them) averaged
    over ``DIRECTION_SCALE`` times the reach. Each sample's weight is a Gaussian of its distance
    (sigma reach / 2) times one of how far the photo's luma there is from the pixel's own (sigma
    ``STROKE_RANGE``): a flow-based bilateral filter (Kang, Lee & Chui 2009). Where the photo is
    flat (a sky) the model's grain is smoothed whole; a dragonfly's wing veins, a dog's eyes, a
    clock's hands, which the photo draws in strong contrast, stay. A flat image stays as it was."""
    import cv2

    h, w = image.shape[:2]
    if reach < 0.5:
        return image
    c2, s2 = doubled_angle(guide, (w, h), DIRECTION_SCALE * reach)
    # the input as decoded may be larger or (--max-side's draft decode) smaller; its luma rides along
    # as a fourth channel, so that one remap per sample reads both (two remaps cost a quarter more)
    luma = _scaled(cv2.cvtColor(guide, cv2.COLOR_RGB2GRAY), (w, h))
    rgbl = cv2.merge([*cv2.split(image), luma])
    out = np.empty_like(image)
    # in bands of rows, so that each tap's maps, weights and sums stay in the CPU's cache (the whole
    # 12 MP image at once: about ten passes over 50-150 MB arrays per tap)
    for y0 in range(0, h, STROKE_BAND):
        y1 = min(h, y0 + STROKE_BAND)
        out[y0:y1] = _strokes_band(rgbl, *half_angle(c2[y0:y1], s2[y0:y1]), y0, reach)
    return out


STROKE_BAND = 32  # rows (12 MP, before the luma rode along: 2.9 s whole, 1.3 s in bands of 128, 1.05 s of 32, 1.14 s of 16)


def _strokes_band(rgbl: np.ndarray, tx: np.ndarray, ty: np.ndarray, y0: int, reach: float) -> np.ndarray:
    """Rows y0 .. y0 + len(tx) of ``brush_strokes`` (the samples come from the whole image; ``rgbl``:
    the image with the photo's luma as a fourth channel)."""
    import cv2

    h, w = tx.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(y0, y0 + h, dtype=np.float32))
    own = cv2.extractChannel(rgbl[y0:y0 + h], 3)
    acc, total = rgbl[y0:y0 + h].astype(np.float32), np.ones((h, w), np.float32)
    # the range weight of a luma difference (whole levels: the luma channel is 8-bit) from a table
    range_weight = np.exp(-0.5 * (np.arange(256, dtype=np.float32) / STROKE_RANGE) ** 2)
    # OpenCV's multithreaded kernels throughout: numpy's single-threaded arithmetic was the larger cost
    for i in range(1, STROKE_TAPS + 1):
        d = reach * i / STROKE_TAPS
        weight = float(np.exp(-2.0 * (d / reach) ** 2))
        for sign in (1.0, -1.0):
            mx, my = cv2.scaleAdd(tx, sign * d, xs), cv2.scaleAdd(ty, sign * d, ys)
            sample = cv2.remap(rgbl, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            wr = cv2.LUT(cv2.absdiff(cv2.extractChannel(sample, 3), own), weight * range_weight)
            total = cv2.add(total, wr)
            acc = cv2.add(acc, cv2.multiply(sample, cv2.merge([wr, wr, wr, wr]), dtype=cv2.CV_32F))
    out = cv2.convertScaleAbs(cv2.divide(acc, cv2.merge([total, total, total, total])))  # rounded, saturated
    return out[..., :3]
