"""ICC v2 matrix/TRC display profiles written from their primaries, for tests: Pillow's ImageCms
creates sRGB and Lab only, and phones tag their photos with others (Display P3)."""
from __future__ import annotations

import struct

D50 = (0.9642, 1.0, 0.8249)
# Display P3 primaries adapted to D50 (the columns of Apple's "Display P3" profile's rXYZ/gXYZ/bXYZ)
DISPLAY_P3 = ((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841))


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz(v) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(c) for c in v)


def _desc(text: str) -> bytes:
    a = text.encode("ascii") + b"\0"
    return b"desc\0\0\0\0" + struct.pack(">I", len(a)) + a + b"\0" * 4 + b"\0" * 4 + b"\0" * 3 + b"\0" * 67


def matrix_profile(name: str, primaries=DISPLAY_P3, gamma: float = 2.2) -> bytes:
    """An RGB display profile: ``primaries`` (rXYZ, gXYZ, bXYZ, D50-adapted) and one gamma curve."""
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags = [(b"desc", _desc(name)), (b"wtpt", _xyz(D50)), (b"cprt", b"text\0\0\0\0no copyright\0"),
            (b"rXYZ", _xyz(primaries[0])), (b"gXYZ", _xyz(primaries[1])), (b"bXYZ", _xyz(primaries[2])),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table, data = struct.pack(">I", len(tags)), b""
    for sig, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 24 + struct.pack(">I", 0)
              + b"".join(_s15(c) for c in D50) + b"\0" * 4 + b"\0" * 16 + b"\0" * 28)
    assert len(header) == 128
    return header + table + data
