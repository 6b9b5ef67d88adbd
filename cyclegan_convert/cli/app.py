"""The Typer app and what every command shares: error reporting, consoles, common options."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Callable, Optional, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import EXIT_INTERRUPTED, CcvError

app = typer.Typer(
    name="ccv",
    help="Train CycleGAN models and convert photos and videos with them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
console = Console()
err_console = Console(stderr=True)


def _show_version(value: bool) -> None:
    if value:
        from .. import __version__

        console.print(f"ccv {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                                help="Show the version and exit.")] = False) -> None:
    """Train CycleGAN models and convert photos and videos with them."""

F = TypeVar("F", bound=Callable[..., object])


def report_errors(fn: F) -> F:
    """Turns library errors into one line on stderr and the error's exit code; Ctrl-C into 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CcvError as e:
            err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted", style="yellow")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper  # type: ignore[return-value]


def command(*args, **kwargs) -> Callable[[F], F]:
    """``app.command`` with error reporting."""

    def deco(fn: F) -> F:
        app.command(*args, **kwargs)(report_errors(fn))
        return fn

    return deco


# Options shared by several commands, declared once.
ToOpt = Annotated[Optional[str], typer.Option("--to", help="Target domain of the model in the store, e.g. monet.")]
FromOpt = Annotated[Optional[str], typer.Option("--from", help="Source domain, where several models share a target.")]
ModelOpt = Annotated[Optional[Path], typer.Option("--model", help="A generator file (.pth), ONNX or engine instead of --to.")]
ColorsOpt = Annotated[Optional[str], typer.Option("--colors", show_default=False, help=(
    "model: the model's own colours; keep: the photo's colour layout under the model's light, strokes "
    "and fine colour; a fraction (e.g. 0.5): that much of the way to the photo's. Default: the model's "
    "recommended look (the look column of ccv models), else model."))]
StrengthOpt = Annotated[Optional[float], typer.Option("--strength", min=0.0, max=1.0, show_default=False, help=(
    "How far from the input: 1 the full style, 0 the input unchanged, 0.6 a lighter painting. "
    "Default: the model's recommendation, else 1."))]
StrokesOpt = Annotated[Optional[float], typer.Option("--strokes", min=0.0, max=3.0, show_default=False, help=(
    "Brush strokes along the photo's forms: the model's paint smoothed along short lines that follow the "
    "photo's edges (0 none; 1 strokes reaching 1% of the image's long side beyond 256 px each way). "
    "Default: the model's recommendation, else 0."))]
HighlightsOpt = Annotated[Optional[float], typer.Option("--highlights", min=0.0, max=1.0, show_default=False, help=(
    "How much of the photo to keep where it is nearly white (a sun, lamps, a bright sky's core), which "
    "the model paints as flat grey: 1 the photo's light, 0 the model's. Default: the model's "
    "recommendation, else 0."))]
EdgesOpt = Annotated[Optional[float], typer.Option("--edges", min=0.0, max=1.0, show_default=False, help=(
    "How much of the photo's edges to keep, in the model's colours, where the model draws outlines, "
    "contour rings and coloured fringes along them: 1 the photo's edges, 0 the model's. Only at edges that "
    "stand alone (a flower against a soft background); flat or crowded areas (a sky, foliage) keep the "
    "model's texture. Default: the model's recommendation, else 0."))]
BackendOpt = Annotated[str, typer.Option("--backend", help="auto, tensorrt, onnxruntime or torch.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu or cuda (cuda without a GPU is an error).")]
BatchOpt = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images per inference batch.")]
