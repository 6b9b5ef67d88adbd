"""XMP that would lie about the output: what the source file held beside its image and the output
does not (Google's Motion Photo video, an Ultra HDR gain map, a JPEG's extended XMP segments).
Viewers read these properties and look for the embedded item; in a converted photo it is gone, so
they go too. Everything else in the packet (ratings, keywords, rights) is kept as it is."""
from __future__ import annotations

import re

# properties naming embedded items: Motion Photo (GCamera:MotionPhoto*, the older MicroVideo*),
# the container directory that lists them, the gain map's hdrgm: properties, and the pointer to a
# JPEG's extended XMP (further APP1 segments, which are read and written by no one here)
_PREFIXES = r"(?:GCamera:(?:MotionPhoto|MicroVideo)\w*|hdrgm:\w+|xmpNote:HasExtendedXMP)"
_ATTRIBUTE = re.compile(rb"\s+" + _PREFIXES.encode() + rb'\s*=\s*"[^"]*"')
_ELEMENT = re.compile(rb"<(" + _PREFIXES.encode() + rb")\b[^>]*?(?:/>|>.*?</\1\s*>)", re.S)
_DIRECTORY = re.compile(rb"<Container:Directory\b.*?</Container:Directory\s*>|<Container:Directory\b[^>]*/>", re.S)


def without_embedded_items(packet: bytes) -> bytes:
    """``packet`` without the properties that announce an embedded video, a gain map or extended XMP."""
    if not any(k in packet for k in (b"GCamera:", b"Container:", b"hdrgm:", b"xmpNote:HasExtendedXMP")):
        return packet  # the common case: nothing to look for
    for pattern in (_DIRECTORY, _ELEMENT, _ATTRIBUTE):
        packet = pattern.sub(b"", packet)
    return packet
