"""Where export artifacts live and when a cached ONNX is still good.

Store models keep them in ``entry.exports_dir``; a ``--model FILE`` generator in a cache folder keyed
on the file's sha256. Names are fixed (``ccv models`` lists them): ``generator.onnx``,
``generator.fp16.onnx``, ``engines/<key>.engine`` + ``engines/<key>.json``, ``timing.cache``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from ..errors import UsageError
from ..resolve import ModelRef
from ..store import ModelEntry, data_home
from ..weights import sha256_file

ONNX_NAMES = {False: "generator.onnx", True: "generator.fp16.onnx"}


@dataclass(frozen=True)
class Source:
    """A generator to export: its weights file, its sha256, and the store entry if any."""

    weights: Path
    sha256: str
    entry: Optional[ModelEntry]

    @property
    def name(self) -> str:
        return self.entry.id if self.entry else self.weights.stem


def source_of(ref_or_entry: Union[ModelRef, ModelEntry]) -> Source:
    if isinstance(ref_or_entry, ModelEntry):
        return Source(ref_or_entry.weights, sha256_file(ref_or_entry.weights), ref_or_entry)
    if ref_or_entry.kind != "pytorch":
        raise UsageError(f"{ref_or_entry.path}: export starts from a generator .pth (this is a {ref_or_entry.kind} file)")
    return Source(ref_or_entry.path, sha256_file(ref_or_entry.path), ref_or_entry.entry)


def exports_dir_for(source: Source, out: Optional[Path] = None) -> Path:
    """``--out``, else the model's folder in the store (if writable), else a cache keyed on the weights."""
    if out is not None:
        return Path(out)
    if source.entry is not None and source.entry.path is not None and os.access(source.entry.path, os.W_OK):
        return source.entry.exports_dir
    return data_home() / "cache" / "exports" / source.sha256[:16]


def make_readable(path: Path) -> None:
    """Temporary files are created 0600; a finished export is readable like any other file."""
    os.chmod(path, 0o644)
