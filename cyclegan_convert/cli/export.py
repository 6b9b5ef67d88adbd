"""`ccv export`."""
from __future__ import annotations

from .app import command
from ..errors import UsageError


@command()
def export() -> None:
    """(being built)"""
    raise UsageError("ccv export is not built yet")
