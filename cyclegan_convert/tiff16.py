"""16-bit RGB(A) TIFF files, which Pillow cannot write (it has no 48-bit image mode): one
deflate-compressed strip with horizontal differencing (TIFF predictor 2), with EXIF, ICC, XMP and
the print resolution, through Pillow's own TIFF directory writer."""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import Optional, Union

import numpy as np

_EXIF_IFD = 0x8769
_ROWS_PER_STRIP = 256  # strips keep readers that load one strip at a time from holding the whole image


def write_tiff16(path: Union[str, Path], rgb: np.ndarray, exif: Optional[bytes] = None, icc: Optional[bytes] = None,
                 xmp: Optional[bytes] = None, dpi: Optional[tuple[float, float]] = None) -> None:
    """Writes ``rgb``, (H, W, 3) or (H, W, 4) uint16 (the fourth channel: unassociated alpha)."""
    from PIL import Image, TiffImagePlugin, TiffTags

    if rgb.dtype != np.uint16 or rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
        raise ValueError(f"expected (H, W, 3 or 4) uint16, got {rgb.dtype} {rgb.shape}")
    h, w, c = rgb.shape
    # predictor 2: each sample minus its left neighbour (mod 2**16); smooth images compress far better
    diff = rgb.astype("<u2")
    diff[:, 1:] -= rgb[:, :-1]
    # level 3: a 12 MP image in a quarter of level 6's time (1.2 s against 4.9 s here), 19% larger
    rows = [zlib.compress(diff[y:y + _ROWS_PER_STRIP].tobytes(), 3) for y in range(0, h, _ROWS_PER_STRIP)]

    ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
    if exif:  # EXIF's IFD0 tags (make, model, dates ...) and its EXIF/GPS sub-IFDs, as Pillow's TIFF writer does
        ex = Image.Exif()
        ex.load(exif)
        for tag in ex:
            ifd[tag] = ex.get_ifd(tag) if tag in TiffTags.TAGS_V2_GROUPS else ex[tag]
    for tag, value in ((256, w), (257, h), (258, (16,) * c), (259, 8), (262, 2), (277, c), (278, _ROWS_PER_STRIP),
                       (284, 1), (317, 2), (339, (1,) * c)):
        ifd[tag] = value  # set after EXIF: the layout is ours, whatever the source said
    for tag in (0x0111, 0x0117, 0x0142, 0x0143, 0x0144, 0x0145, 0x014A, 0x0201, 0x0202):
        ifd.pop(tag, None)  # strips, tiles, sub-images or a thumbnail described by copied EXIF
    if c == 4:
        ifd[338] = 2  # extra sample: unassociated alpha
    if icc:
        ifd[34675] = icc
    if xmp:
        ifd[700] = xmp
        ifd.tagtype[700] = TiffTags.BYTE
    if dpi:
        ifd[282], ifd[283], ifd[296] = float(dpi[0]), float(dpi[1]), 2  # 2: inches
    ifd.tagtype[273] = ifd.tagtype[279] = TiffTags.LONG
    ifd[279] = tuple(len(r) for r in rows)
    starts = np.cumsum([0] + [len(r) for r in rows[:-1]])
    ifd[273] = tuple(int(s) for s in starts)  # relative: the directory writer adds where the data starts
    with open(path, "wb") as f:
        ifd.save(f)
        for r in rows:
            f.write(r)
