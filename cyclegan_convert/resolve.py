"""From what the user typed (``--to monet``, ``--from photo``, ``--model FILE``) to a model to run."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .errors import UsageError
from .store import ModelEntry, ModelStore

DEFAULT_TARGET = "monet"  # the bundled photo-to-Monet model, once trained (see README, Models)

MODEL_SUFFIXES = {".pth": "pytorch", ".pt": "pytorch", ".onnx": "onnx", ".engine": "tensorrt", ".plan": "tensorrt"}


@dataclass(frozen=True)
class ModelRef:
    """A model ready to be opened by a backend: a generator file, or an exported ONNX or engine."""

    path: Path
    kind: str  # pytorch, onnx, tensorrt
    entry: Optional[ModelEntry] = None  # set when it came from the store

    @property
    def label(self) -> str:
        return self.entry.id if self.entry else self.path.name

    @property
    def target(self) -> str:
        return self.entry.target if self.entry else self.path.stem


def resolve_model(to: Optional[str] = None, from_: Optional[str] = None, model: Optional[Path] = None,
                  store: Optional[ModelStore] = None) -> ModelRef:
    """``--model`` wins; else the store's model for ``--to`` (default: monet)."""
    if model is not None:
        if to is not None:
            raise UsageError("give either --to or --model, not both")
        model = Path(model)
        if not model.is_file():
            raise UsageError(f"{model}: no such model file")
        kind = MODEL_SUFFIXES.get(model.suffix.lower())
        if kind is None:
            raise UsageError(f"{model}: unknown model format (expected {', '.join(sorted(MODEL_SUFFIXES))})")
        return ModelRef(model, kind)
    store = store or ModelStore()
    entry = store.find(to or DEFAULT_TARGET, from_)
    return ModelRef(entry.weights, "pytorch", entry)
