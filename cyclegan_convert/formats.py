"""Which image files ccv reads and writes, and the optional decoders behind some of them.

JPEG, PNG, WebP, BMP and TIFF are Pillow's own, and so is AVIF (Pillow 11.3 and later, built with
libavif). HEIC/HEIF comes from pillow-heif (libheif) and camera RAW from rawpy (LibRaw). Both are in
the default install but imported only when a file needs them: on a platform without a wheel for one,
everything else still converts, and each file that needs the missing package fails alone with one line
naming it.
"""
from __future__ import annotations

import os
import struct
import threading
from pathlib import Path
from typing import Optional, Union

from .errors import MediaError, UsageError

PILLOW_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".mpo"})  # MPO: a JPEG with more views (3D cameras)
HEIF_SUFFIXES = frozenset({".heic", ".heif", ".hif"})  # .hif: Canon and Fujifilm 10-bit HEIF
AVIF_SUFFIXES = frozenset({".avif"})
# LibRaw reads many more; these are the current cameras' own names (plus DNG)
RAW_SUFFIXES = frozenset({".dng", ".cr2", ".cr3", ".nef", ".nrw", ".arw", ".raf", ".orf", ".rw2", ".pef", ".srw"})
IMAGE_SUFFIXES = PILLOW_SUFFIXES | HEIF_SUFFIXES | AVIF_SUFFIXES | RAW_SUFFIXES

PathLike = Union[str, Path]


def suffix_of(path: PathLike) -> str:
    return (path.suffix if hasattr(path, "suffix") else Path(path).suffix).lower()  # an ObjectPath too


def is_raw_name(path: PathLike) -> bool:
    return suffix_of(path) in RAW_SUFFIXES


def suffixes_text() -> str:
    """The readable suffixes for messages: ``.jpg .jpeg ... .dng ...``."""
    order = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".mpo", ".heic", ".heif", ".hif", ".avif")
    return " ".join([*order, *sorted(RAW_SUFFIXES)])


# -- optional packages, imported on first need --------------------------------------------------------

_lock = threading.Lock()
_missing: dict[str, Optional[str]] = {}  # package -> None when usable, else why not


def _try_package(name: str) -> Optional[str]:
    """None when ``name`` imports (pillow-heif is then registered with Pillow), else the reason."""
    with _lock:  # decode workers meet here at once; register the HEIF opener only once
        if name not in _missing:
            try:
                if name == "pillow-heif":
                    import pillow_heif

                    pillow_heif.register_heif_opener()
                else:
                    import rawpy  # noqa: F401
                _missing[name] = None
            except (ImportError, OSError) as e:  # no wheel for this platform, or its library fails to load
                why = "not installed" if isinstance(e, ModuleNotFoundError) else f"cannot be loaded ({e})"
                _missing[name] = f"the {name} package is {why} (pip install {name})"
        return _missing[name]


def heif_problem() -> Optional[str]:
    """Why HEIC/HEIF cannot be read or written here, or None."""
    return _try_package("pillow-heif")


def raw_problem() -> Optional[str]:
    """Why camera RAW cannot be read here, or None."""
    return _try_package("rawpy")


def avif_problem() -> Optional[str]:
    from PIL import features

    if features.check("avif"):
        return None
    return "this Pillow has no AVIF support (Pillow 11.3 or later has it: pip install -U pillow)"


def need_decoder(path: PathLike, fmt: Optional[str] = None) -> None:
    """Makes the decoder for ``path``'s format (``fmt`` from ``format_of``, else its name) ready
    (registers pillow-heif with Pillow), or raises ``MediaError`` naming the file and the missing
    package."""
    fmt = fmt or NAME_FORMATS.get(suffix_of(path))
    kind, problem = None, None
    if fmt == "HEIF":
        kind, problem = "HEIC/HEIF", heif_problem()
    elif fmt == "AVIF":
        kind, problem = "AVIF", avif_problem()
    elif fmt == "RAW":
        kind, problem = "camera RAW", raw_problem()
    if problem:
        raise MediaError(f"{path}: cannot read {kind}: {problem}")


# -- what a file is: by its content where that is unambiguous, else by its name -------------------------

NAME_FORMATS = {**{s: "RAW" for s in RAW_SUFFIXES}, **{s: "HEIF" for s in HEIF_SUFFIXES}, ".avif": "AVIF",
                ".jpg": "JPEG", ".jpeg": "JPEG", ".mpo": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP",
                ".tif": "TIFF", ".tiff": "TIFF"}
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})


def content_format(head: bytes) -> Optional[str]:
    """The format the first 16 bytes of a file say, where they say it alone. A TIFF header is
    "TIFF": most camera RAWs (DNG, NEF, CR2, ARW ...) are TIFF files too, so the name decides there."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith(b"BM"):
        return "BMP"
    if head.startswith((b"FUJIFILMCCD-RAW", b"IIRO", b"IIRS", b"MMOR", b"IIU\0")):  # RAF, ORF, RW2
        return "RAW"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "RAW" if brand == b"crx " else "AVIF" if brand in (b"avif", b"avis") else \
            "HEIF" if brand in _HEIF_BRANDS else None  # CR3; other brands: a video, or unknown
    if head[:4] in (b"II*\0", b"MM\0*"):
        return "TIFF"
    return None


HDR_TRANSFERS = {16: "PQ (SMPTE ST 2084)", 18: "HLG (ARIB STD-B67)"}  # H.273 transfer characteristics


def hdr_transfer(path: PathLike) -> Optional[str]:
    """The HDR transfer a HEIF or AVIF declares in its colour box (``colr`` of type ``nclx``: 16 PQ,
    18 HLG), or None. The box sits in the header's ``meta``, within the first kilobytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except (OSError, TypeError):
        return None
    at = head.find(b"colrnclx")
    if at < 0 or len(head) < at + 12:
        return None
    return HDR_TRANSFERS.get(struct.unpack(">H", head[at + 10:at + 12])[0])


def boxes_past_end(path: PathLike) -> Optional[tuple[int, int]]:
    """(bytes the top-level boxes of a HEIF/AVIF file claim, bytes there are) when the boxes run
    past the end of the file, else None. A HEIC cut short decodes without an error: libheif paints
    the grid tiles whose data is missing green (half an iPhone photo came out green, exit 0)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            at = 0
            while at + 8 <= size:
                f.seek(at)
                head = f.read(16)
                length = struct.unpack(">I", head[:4])[0]
                if length == 1 and len(head) >= 16:  # a 64-bit size follows the type
                    length = struct.unpack(">Q", head[8:16])[0]
                elif length == 0:  # "to the end of the file": nothing to compare
                    return None
                if length < 8:
                    return None  # not boxes: the decoder says what is wrong
                at += length
    except (OSError, TypeError, struct.error):
        return None
    return (at, size) if at > size else None


def format_of(path: PathLike) -> tuple[Optional[str], str]:
    """(format to read ``path`` as, note): by content where the first bytes decide, else by the name;
    the note says when name and content disagree (a JPEG named .nef, a HEIC named .jpg). Formats:
    those of ``NAME_FORMATS`` (RAW for LibRaw, the others for Pillow)."""
    by_name = NAME_FORMATS.get(suffix_of(path))
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except (OSError, TypeError):
        return by_name, ""  # the reader says what is wrong with it
    by_content = content_format(head)
    if by_content is None or by_content == by_name or (by_content == "TIFF" and by_name == "RAW"):
        return by_name, ""
    return by_content, f"named {suffix_of(path) or 'without an extension'} but its content is {by_content}: read as {by_content}"


def check_writable(ext: str) -> None:
    """``--ext avif`` / ``--ext heic`` that this installation cannot write: refused before any work."""
    problem = heif_problem() if ext == "heic" else avif_problem() if ext == "avif" else None
    if problem:
        raise UsageError(f"--ext {ext}: {problem}")


def unidentified_reason(path: Path) -> str:
    """Why Pillow could not identify ``path``: empty, a damaged file whose first bytes say what it
    is (libheif and libavif refuse truncated HEIF/AVIF files at identification; the name does not
    matter: a HEIC named .jpg is a HEIC), or not an image at all."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        head = b""
    if not head:
        return "empty file"
    kind = {"HEIF": "HEIC/HEIF", "AVIF": "AVIF"}.get(content_format(head) or "")
    if kind is not None:
        return f"cannot decode (a damaged or truncated {kind} file)"
    return "not an image or an unsupported format"


def probe(path: Path) -> Optional[str]:
    """None if ``path`` looks readable (its header parses), else the reason: a cheap check for
    ``ccv train`` before the first epoch. Decoding errors still show up later."""
    from PIL import Image, UnidentifiedImageError

    try:
        if path.stat().st_size == 0:
            return "empty file"
        fmt, _ = format_of(path)
        need_decoder(path, fmt)
        if fmt == "RAW":
            from . import camera_raw

            camera_raw.upright_size(path)
            return None
        from . import decode_limits

        with Image.open(path) as img:
            decode_limits.check(path, img.size)  # the header is parsed by now
        return None
    except MediaError as e:
        return str(e).removeprefix(f"{path}: ")
    except UnidentifiedImageError:
        return unidentified_reason(path)
    except Image.DecompressionBombError as e:  # someone set Pillow's guard again (decode_limits turns it off)
        return f"too large to decode ({str(e).split(' exceeds')[0]})"
    except (OSError, SyntaxError, ValueError) as e:
        return f"cannot open ({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})"


def upright_size(path: Path) -> tuple[int, int]:
    """(height, width) as shown (EXIF orientation or RAW flip applied), from the header where possible."""
    from PIL import Image, UnidentifiedImageError

    from . import decode_limits  # noqa: F401  (ccv's size check instead of Pillow's pixel guard)

    fmt, _ = format_of(path)
    need_decoder(path, fmt)
    if fmt == "RAW":
        from . import camera_raw

        return camera_raw.upright_size(path)
    try:
        with Image.open(path) as img:
            w, h = img.size
            orientation = img.getexif().get(0x0112, 1)
    except UnidentifiedImageError:
        raise MediaError(f"{path}: cannot read the image size ({unidentified_reason(path)})") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise MediaError(f"{path}: cannot read the image size ({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})") from None
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)  # rotated by 90 degrees when shown
