"""The artifact index: where a model's exported files live and whether one is current, so the
backend router can ask without importing ``export`` (which imports the backends to verify).

Store models keep their exports in ``entry.exports_dir``; a ``--model FILE`` generator in a cache
folder keyed on the file's sha256. Making an export on first use is delegated to an ``exporter``
(the ``export`` package, handed in by the caller).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Protocol, Union

from ..errors import BackendUnavailableError, UsageError
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


def read_onnx_metadata(path: Path) -> dict[str, str]:
    """metadata_props of an ONNX file (loads the graph, skips nothing: ~0.2 s for 45 MB)."""
    import onnx

    proto = onnx.load_model(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def is_current(path: Path, source: Source) -> bool:
    """A cached ONNX is current when it was exported from these exact weights."""
    if not path.is_file():
        return False
    try:
        return read_onnx_metadata(path).get("ccv.weights_sha256") == source.sha256
    except Exception:  # a damaged file is not current; it gets re-exported
        return False


class Exporter(Protocol):
    """What ``export`` offers the router: files made and verified on first use, then cached."""

    def ensure_onnx(self, ref: ModelRef, fp16: bool, *, on_message: Callable[[str], None]) -> Path: ...

    def ensure_engine(self, ref: ModelRef, *, on_message: Callable[[str], None]) -> Path: ...


class ArtifactIndex:
    """The router's one question to exports: which file runs this model, made if need be."""

    def __init__(self, exporter: Optional[Exporter] = None, why_not: str = "no exporter was given"):
        self.exporter = exporter
        self.why_not = why_not  # said when an export is needed and there is no exporter

    def _need_exporter(self) -> Exporter:
        if self.exporter is None:
            raise BackendUnavailableError(f"exporting the model is not available ({self.why_not}); use --backend torch")
        return self.exporter

    def onnx(self, ref: ModelRef, fp16: bool, on_message: Callable[[str], None]) -> Path:
        return self._need_exporter().ensure_onnx(ref, fp16, on_message=on_message)

    def engine_bytes(self, ref: ModelRef, on_message: Callable[[str], None]) -> Callable[[], bytes]:
        """A loader for the TensorRT engine: built (minutes) when the backend opens, not before."""
        exporter = self._need_exporter()
        return lambda: exporter.ensure_engine(ref, on_message=on_message).read_bytes()
