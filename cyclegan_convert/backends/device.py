"""``--device`` parsed once: ``DeviceSpec.parse("cuda:1")`` for train, convert, video and export."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Union

from ..errors import BackendUnavailableError, UsageError

_SYNTAX = re.compile(r"(auto|cpu|cuda)(?::(\d+))?")


@dataclass(frozen=True)
class DeviceSpec:
    """What the user asked for: ``auto`` (CUDA when PyTorch sees a GPU, else the CPU), ``cpu``, or
    ``cuda`` with an optional GPU index. An explicit CUDA without a GPU is an error, never a silent
    CPU fallback."""

    kind: str = "auto"  # auto, cpu, cuda
    index: Optional[int] = None  # cuda:N

    @classmethod
    def parse(cls, text: Union[str, "DeviceSpec"]) -> "DeviceSpec":
        if isinstance(text, DeviceSpec):
            return text
        m = _SYNTAX.fullmatch(str(text).strip().lower())
        if m is None or (m.group(2) is not None and m.group(1) != "cuda"):
            raise UsageError(f"unknown --device {text!r}: use auto, cpu or cuda (cuda:N for one GPU)")
        return cls(m.group(1), int(m.group(2)) if m.group(2) is not None else None)

    def __str__(self) -> str:
        return f"cuda:{self.index}" if self.index is not None else self.kind

    @property
    def explicit_cuda(self) -> bool:
        return self.kind == "cuda"

    def resolve(self):
        """The ``torch.device`` to run on."""
        import torch

        if self.kind == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.kind == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailableError(f"--device {self} was asked for but no CUDA GPU is available "
                                          "(install a CUDA build of PyTorch, or use --device cpu)")
        return torch.device(str(self))
