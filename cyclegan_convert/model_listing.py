"""What `ccv models` shows about a model: its files and the exported artifacts next to it.

Export writes these names into ``entry.exports_dir``: ``generator.onnx`` (FP32),
``generator.fp16.onnx``, and ``engines/<key>.engine`` with a sidecar ``engines/<key>.json`` that
holds at least ``gpu`` (or ``gpu_name``: the GPU's name) and ``compute_capability``, perhaps ``precision``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .store import ModelEntry, ModelStore


@dataclass(frozen=True)
class Artifact:
    kind: str  # onnx, fp16 onnx, engine
    path: Path
    gpu: Optional[str] = None
    compute_capability: Optional[str] = None  # "sm90"
    precision: Optional[str] = None  # fp16, fp32 (engines only)

    @property
    def label(self) -> str:
        if self.kind != "engine":
            return self.kind
        where = ", ".join(x for x in (self.gpu, self.compute_capability) if x)
        return f"{self.precision + ' ' if self.precision else ''}engine ({where or 'unknown GPU'})"


def _sm(cc: Any) -> Optional[str]:
    """Compute capability as 'sm90', from 9.0, "9.0", [9, 0], 90 or "sm_90"."""
    if cc is None:
        return None
    if isinstance(cc, (list, tuple)) and len(cc) == 2:
        return f"sm{int(cc[0])}{int(cc[1])}"
    text = str(cc).lower().replace("sm_", "").replace("sm", "").strip()
    if "." in text:
        major, _, minor = text.partition(".")
        return f"sm{major}{minor}"
    return f"sm{text}" if text.isdigit() else str(cc)


def exported_artifacts(entry: ModelEntry) -> list[Artifact]:
    d = entry.exports_dir
    found = []
    for name, kind in (("generator.onnx", "onnx"), ("generator.fp16.onnx", "fp16 onnx")):
        if (d / name).is_file():
            found.append(Artifact(kind, d / name))
    for engine in sorted((d / "engines").glob("*.engine")) if (d / "engines").is_dir() else []:
        try:
            info = json.loads(engine.with_suffix(".json").read_text(encoding="utf-8"))
            if not isinstance(info, dict):
                info = {}
        except (OSError, ValueError):
            info = {}
        found.append(Artifact("engine", engine, info.get("gpu") or info.get("gpu_name"),
                              _sm(info.get("compute_capability")), info.get("precision")))
    return found


def exports_summary(entry: ModelEntry) -> str:
    """'onnx, fp16 onnx, engine (NVIDIA H100, sm90)', or '' when nothing was exported."""
    return ", ".join(a.label for a in exported_artifacts(entry))


def disk_size(entry: ModelEntry) -> int:
    """Bytes the model's folder takes, exports included: what `ccv models rm` frees."""
    assert entry.path is not None
    return sum(p.stat().st_size for p in entry.path.rglob("*") if p.is_file())


def damaged_folders(store: ModelStore) -> list[Path]:
    """Folders of the user's store that hold no readable model (`ccv models rm <folder name>` removes them)."""
    if not store.models_dir.is_dir():
        return []
    listed = {e.path for e in store.entries()}
    return [f for f in sorted(store.models_dir.iterdir())
            if f.is_dir() and not f.name.startswith(".") and f not in listed]


def locate(store: ModelStore, name: str, from_: Optional[str] = None) -> ModelEntry:
    """The model `ccv models rm NAME [--from]` means: an id (photo2monet), a damaged folder, or a --to name."""
    entry = next((e for e in store.entries() if e.id == name and from_ in (None, e.source)), None)
    if entry is not None:
        return entry
    if from_ is None:
        for folder in damaged_folders(store):
            if folder.name == name:  # a name from the listing, never a path: nothing outside the store
                return ModelEntry(target=name, source="damaged", origin="damaged", path=folder)
    return store.find(name, from_)
