"""Where export artifacts live and when a cached ONNX is still good.

Store models keep them in ``entry.exports_dir``; a ``--model FILE`` generator in a cache folder keyed
on the file's sha256. Names are fixed (``ccv models`` lists them): ``generator.onnx``,
``generator.fp16.onnx``, ``engines/<key>.engine`` + ``engines/<key>.json``, ``timing.cache``.
"""
from __future__ import annotations

import os
from pathlib import Path

# the index lives with the backends (the router asks it); export adds making and caching
from ..backends.artifacts import ONNX_NAMES, Source, exports_dir_for, is_current, source_of  # noqa: F401


def make_readable(path: Path) -> None:
    """Temporary files are created 0600; a finished export is readable like any other file."""
    os.chmod(path, 0o644)
