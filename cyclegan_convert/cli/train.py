"""`ccv train`."""
from __future__ import annotations

from .app import command
from ..errors import UsageError


@command()
def train() -> None:
    """(being built)"""
    raise UsageError("ccv train is not built yet")
