"""`ccv preview`: options in, `cyclegan_convert.preview.make_preview` called, the sheet's path out."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..preview import DEFAULT_COUNT, DEFAULT_SIDE
from .app import BackendOpt, DeviceOpt, command, console


def _split(values: Optional[list[str]]) -> list[str]:
    """``--colors model,keep --colors 0.5`` -> [model, keep, 0.5]."""
    return [v.strip() for text in values or [] for v in text.split(",") if v.strip()]


def _numbers(values: Optional[list[str]], option: str, top: int) -> list[float]:
    """``--strokes 0,0.5 --strokes 1`` -> [0.0, 0.5, 1.0]; anything else a usage error."""
    from ..errors import UsageError

    try:
        return [float(v) for v in _split(values)]
    except ValueError:
        raise UsageError(f"{option} {' '.join(values or [])}: give numbers from 0 to {top}, separated by commas") from None


@command(no_args_is_help=True)
def preview(
    inputs: Annotated[list[str], typer.Argument(help="Photos, folders (recursive) or quoted globs: a few are picked, spread over them.", show_default=False)],
    to: Annotated[Optional[list[str]], typer.Option("--to", help="A model by target domain; repeat or separate by commas for several (default: monet).", show_default=False)] = None,
    model: Annotated[Optional[list[Path]], typer.Option("--model", help="A generator file; repeat for several.", show_default=False)] = None,
    colors: Annotated[Optional[list[str]], typer.Option("--colors", help="Looks to compare: model, keep or a fraction, separated by commas (e.g. model,keep,0.5). Default: each model's recommendation.", show_default=False)] = None,
    strength: Annotated[Optional[list[str]], typer.Option("--strength", help="Strengths to compare, separated by commas (e.g. 1,0.6). Default: each model's recommendation.", show_default=False)] = None,
    strokes: Annotated[Optional[list[str]], typer.Option("--strokes", help="Brush strokes to compare, separated by commas (e.g. 0,1). Default: each model's recommendation.", show_default=False)] = None,
    highlights: Annotated[Optional[list[str]], typer.Option("--highlights", help="How much of the photo's near-white highlights to keep, to compare, separated by commas (e.g. 0,1). Default: each model's recommendation.", show_default=False)] = None,
    edges: Annotated[Optional[list[str]], typer.Option("--edges", help="How much of the photo's edges to keep where the model draws outlines, to compare, separated by commas (e.g. 0,1). Default: each model's recommendation.", show_default=False)] = None,
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="How many photos.")] = DEFAULT_COUNT,
    side: Annotated[int, typer.Option("--side", min=16, help="Longest side of each picture on the sheet, and the side of the 100% crops, in pixels.")] = DEFAULT_SIDE,
    max_side: Annotated[Optional[int], typer.Option(help="As for ccv convert: run the model with the longest side at most this, then scale back (faster; preview what convert --max-side gives).")] = None,
    tile: Annotated[Optional[int], typer.Option(help="As for ccv convert: tiles of this side for large images (0: never; default: automatic above 4 MP).")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="The sheet: an HTML page (its pictures go in NAME_files/ beside it).")] = Path("ccv-preview.html"),
    backend: BackendOpt = "auto",
    device: DeviceOpt = "auto",
) -> None:
    """Convert a few photos with several models or looks and put them side by side on one page. Example: ccv preview ~/Pictures/trip --colors model,keep,0.5 --strength 1,0.6

    Each photo is converted as ccv convert would (full size unless --max-side), shown whole and as a 100% crop of its centre: minutes at most, not the hours of a whole folder. Decide the model and the look first, then run ccv convert with them.
    """
    from ..preview import make_preview, variants_of
    from ..resolve import resolve_model
    from .models import download_feedback

    strengths = _numbers(strength, "--strength", 1)
    stroke_list = _numbers(strokes, "--strokes", 3)
    highlight_list = _numbers(highlights, "--highlights", 1)
    edge_list = _numbers(edges, "--edges", 1)
    targets = _split(to)
    refs = [resolve_model(model=p) for p in model or []]
    for target in targets or ([] if refs else [None]):
        with download_feedback(f"model for --to {target or 'monet'}") as (on_notice, on_progress):
            refs.append(resolve_model(target, on_notice=on_notice, on_progress=on_progress))
    variants = variants_of(refs, _split(colors), strengths, stroke_list, highlight_list, edge_list)
    what = f"with {len(variants)} variant(s), each photo as ccv convert would"
    with console.status(f"converting a few photos {what}") as status:
        result = make_preview(inputs, variants, output, count=count, side=side, max_side=max_side, tile=tile,
                              backend=backend, device=device,
                              on_progress=lambda done, total: status.update(f"converted {done} of {total} photos {what}"))
    line = dict(highlight=False, markup=False, soft_wrap=True)
    for photo, reason in result.failed:
        console.print(f"failed: {reason}", **line)
    console.print(f"{len(result.photos)} photos x {len(result.variants)} variants in {result.seconds:.1f} s: "
                  f"open {result.sheet}", **line)
