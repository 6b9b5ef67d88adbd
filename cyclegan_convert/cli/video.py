"""`ccv video`."""
from __future__ import annotations

from .app import command
from ..errors import UsageError


@command()
def video() -> None:
    """(being built)"""
    raise UsageError("ccv video is not built yet")
