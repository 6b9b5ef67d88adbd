"""The backend router: which engine runs each batch, decided in one place for `ccv convert` and
`ccv video`.

It owns the main backend (chosen by ``select.make_backend``, or handed in) and a PyTorch backend
on the same device, opened only when first needed, for what the main one cannot do:
- a size outside a TensorRT engine's shape profile (``Backend.accepts``), when the model's ``.pth``
  is at hand: PyTorch runs it, and one note says so for the whole run;
- tiles for very large images (``Backend.can_tile``, a declared capability).
When ``auto`` chose TensorRT and its engine cannot be built or loaded here, the main backend is
PyTorch from the start, with a note saying why (``select.open_with_fallback``).
"""
from __future__ import annotations

import threading
from typing import Callable, Optional

from ..census import ShapeCensus
from ..resolve import ModelRef
from . import select
from .artifacts import ArtifactIndex
from .base import Backend, padded_size
from .select import BackendChoice


class BackendRouter:
    """``open()`` once; then ``for_size(h, w)`` and ``for_tiles()`` from the inference thread;
    ``close()`` closes what was opened (a backend handed in as ``main`` is closed too)."""

    def __init__(self, ref: Optional[ModelRef], choice: BackendChoice = BackendChoice(), *,
                 main: Optional[Backend] = None, artifacts: Optional[ArtifactIndex] = None,
                 on_note: Callable[[str], None] = lambda text: None, close_given: bool = True,
                 census: Optional[ShapeCensus] = None):
        if ref is None and main is None:
            raise ValueError("give a model or a backend")
        self.ref, self.choice, self.on_note = ref, choice, on_note
        self.census = census  # the job's image sizes, for the CPU's compile decisions
        self.artifacts = artifacts or ArtifactIndex()
        self._given = main
        self._close_given = close_given  # False: the caller keeps using the backend it handed in
        self.main: Optional[Backend] = None
        self._fallback: Optional[Backend] = None
        self._told_profile = threading.Event()  # the profile note is said once per run

    # -- lifecycle ---------------------------------------------------------------------------------
    def open(self, requested: Optional[str] = None) -> "BackendRouter":
        """Opens the main backend. ``requested`` overrides ``choice.backend`` (video's --stable
        needs the PyTorch model)."""
        c = self.choice
        name = requested or c.backend
        if self._given is not None and self.ref is None:
            self.main = self._given.open()
            return self
        backend = self._given or select.make_backend(self.ref, name, str(c.device), precision=c.precision,
                                                     compile=c.compile, on_message=self.on_note,
                                                     artifacts=self.artifacts, census=self.census)
        self.main = select.open_with_fallback(backend, self.ref, name, str(c.device), precision=c.precision,
                                              on_note=self.on_note)
        return self

    def close(self) -> None:
        for b in (self._fallback, self.main):
            if b is not None and (b is not self._given or self._close_given):
                b.close()
        self._fallback = self.main = None

    def __enter__(self) -> "BackendRouter":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what runs where ---------------------------------------------------------------------------
    def describe(self) -> str:
        assert self.main is not None, "open() first"
        return self.main.describe()

    @property
    def default_batch(self) -> int:
        """Items per inference batch when the user did not say: batches help a GPU, not a CPU."""
        assert self.main is not None, "open() first"
        return 4 if self.main.device.type == "cuda" else 1

    @property
    def has_pytorch_model(self) -> bool:
        return self.ref is not None and self.ref.kind == "pytorch"

    @property
    def can_tile(self) -> bool:
        return self.main is not None and (self.main.can_tile or self.has_pytorch_model)

    def runs_elsewhere(self, h: int, w: int) -> bool:
        """Whether an image of (h, w) goes to the PyTorch fallback (its batches must not mix)."""
        assert self.main is not None, "open() first"
        return self.has_pytorch_model and not self.main.accepts(*padded_size(h, w))

    def for_size(self, h: int, w: int, what: str = "images") -> Backend:
        """The backend for a batch of (h, w) images: the main one where it accepts that size, else
        PyTorch with one note; without the ``.pth`` the main engine's own error names the fix."""
        assert self.main is not None, "open() first"
        if not self.runs_elsewhere(h, w):
            return self.main
        fallback = self._pytorch()
        if not self._told_profile.is_set():
            self._told_profile.set()
            ph, pw = padded_size(h, w)
            self.on_note(f"{pw}x{ph} {what} are outside the {self.main.name} engine's shape profile; they run on "
                         f"{fallback.describe()} (`ccv export --engine --for FOLDER_OR_VIDEO` builds an engine "
                         "for your sizes)")
        return fallback

    def for_tiles(self) -> Backend:
        """A backend with ``infer_tiled``: the main one if it can, else PyTorch."""
        assert self.main is not None, "open() first"
        return self.main if self.main.can_tile else self._pytorch()

    def _pytorch(self) -> Backend:
        if self._fallback is None:
            c = self.choice
            self._fallback = select.make_backend(self.ref, "torch", str(c.device), precision=c.precision).open()
        return self._fallback
