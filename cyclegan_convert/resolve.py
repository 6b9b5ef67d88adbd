"""From what the user typed (``--to monet``, ``--from photo``, ``--model FILE``) to a model to run."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .errors import DownloadError, UnknownModelError, UsageError
from .store import ModelEntry, ModelStore

DEFAULT_TARGET = "monet"  # the bundled photo-to-Monet model, once trained (see README, Models)
DEFAULT_SOURCE = "photo"
# Until the bundled model exists, the default target is served by the original project's generator.
DEFAULT_PRETRAINED = "style_monet"
OFFLINE_ENV = "CCV_OFFLINE"  # set to 1: never download on first use

log = logging.getLogger("cyclegan_convert")

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
                  store: Optional[ModelStore] = None, *, on_notice: Optional[Callable[[str], None]] = None,
                  on_progress: Optional[Callable[[int, Optional[int], float], None]] = None) -> ModelRef:
    """``--model`` wins; else the store's model for ``--to`` (default: monet).

    With no photo-to-Monet model in the store, the default target fetches the original ``style_monet``
    generator once (about 45 MB), announced in one line through ``on_notice`` (else a logging warning)
    and reported through ``on_progress(bytes, total, speed)``. ``CCV_OFFLINE=1`` turns that off.
    """
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
    target = to or DEFAULT_TARGET
    try:
        entry = store.find(target, from_)
    except UnknownModelError:
        if target != DEFAULT_TARGET or from_ not in (None, DEFAULT_SOURCE):
            raise
        entry = fetch_default(store, on_notice, on_progress)
    return ModelRef(entry.weights, "pytorch", entry)


def fetch_default(store: ModelStore, on_notice: Optional[Callable[[str], None]] = None,
                  on_progress: Optional[Callable[[int, Optional[int], float], None]] = None) -> ModelEntry:
    """Pulls the original photo-to-Monet generator on first use; one clear line when that is impossible."""
    from .download import OfflineError
    from .pretrained import PRETRAINED, pull

    spec = PRETRAINED[DEFAULT_PRETRAINED]
    todo = (f"get a {DEFAULT_TARGET} model with `ccv pull {spec.name}` when online, "
            f"`ccv import FILE --to {DEFAULT_TARGET}` or `ccv train`")
    if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        raise UnknownModelError(f"no {DEFAULT_TARGET} model installed and {OFFLINE_ENV} is set: {todo}")
    notice = on_notice or log.warning
    notice(f"No {DEFAULT_TARGET} model installed yet: downloading the original CycleGAN '{spec.name}' "
           f"generator (about 45 MB, once) from {spec.url()}")
    try:
        return pull(spec.name, store, progress=on_progress, on_notice=notice)
    except OfflineError as e:
        raise DownloadError(f"no {DEFAULT_TARGET} model installed and {e.url} cannot be reached ({e.reason}): "
                            f"{todo}") from None
