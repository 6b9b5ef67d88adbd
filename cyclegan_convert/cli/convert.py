"""`ccv convert`."""
from __future__ import annotations

from .app import command
from ..errors import UsageError


@command()
def convert() -> None:
    """(being built)"""
    raise UsageError("ccv convert is not built yet")
