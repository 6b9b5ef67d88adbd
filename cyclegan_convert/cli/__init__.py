"""The `ccv` command line: a thin layer over the library. Each command lives in its own module."""
from .app import app
from . import train, export, convert, video, preview, models  # noqa: F401  (registers the commands)


def main() -> None:
    app()
