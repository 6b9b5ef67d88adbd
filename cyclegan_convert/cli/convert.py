"""`ccv convert`: image files, folders and globs through a model, into a mirrored output tree."""
from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.markup import escape
from typer.core import TyperCommand

from ..errors import EXIT_INTERRUPTED, ItemsFailed
from .app import (BackendOpt, ColorsOpt, DeviceOpt, EdgesOpt, FromOpt, HighlightsOpt, ModelOpt, StrengthOpt, StrokesOpt, ToOpt,
                  command, console, err_console)

MAX_LISTED_FAILURES = 20


RAY_ADDRESSES = ("local", "auto")  # local: a Ray instance on this machine; auto: the cluster this machine is in


def is_ray_address(text: str) -> bool:
    """Whether the word after ``--ray`` is its address (else it is an input, and ``--ray`` is bare)."""
    if text in RAY_ADDRESSES or text.startswith("ray://"):
        return True
    host, _, port = text.rpartition(":")
    return bool(host) and port.isdigit() and "/" not in host


class _ConvertCommand(TyperCommand):
    """``--ray`` takes an optional value (Typer has no such option): a bare ``--ray`` becomes
    ``--ray=local`` before parsing, so ``--ray photos/`` leaves ``photos/`` an input."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        args = list(args)
        for i, a in enumerate(args):
            if a == "--":
                break
            if a == "--ray" and (i + 1 == len(args) or not is_ray_address(args[i + 1])):
                args[i] = "--ray=local"
        return super().parse_args(ctx, args)


@command(no_args_is_help=True, cls=_ConvertCommand)
def convert(
    inputs: Annotated[list[str], typer.Argument(help="Image files (JPEG, PNG, WebP, TIFF, HEIC, AVIF, camera RAW), folders (recursive) or quoted globs.", show_default=False)],
    to: ToOpt = None,
    from_: FromOpt = None,
    model: ModelOpt = None,
    colors: ColorsOpt = None,
    strength: StrengthOpt = None,
    strokes: StrokesOpt = None,
    highlights: HighlightsOpt = None,
    edges: EdgesOpt = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Output folder, or an object store prefix such as s3://bucket/out (default: a sibling <input>_<target>/; files: beside themselves).")] = None,
    backend: BackendOpt = "auto",
    device: DeviceOpt = "auto",
    precision: Annotated[str, typer.Option(help="auto, fp32, bf16 (CPU with native bf16) or fp16 (CUDA).")] = "auto",
    compile: Annotated[Optional[bool], typer.Option("--compile/--no-compile", show_default=False, help="PyTorch with torch.compile for every image size (--no-compile: never). Default: on a CPU with native bf16, the sizes with enough images to pay for their compile (tens of seconds the first time, seconds from the cache after).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=0, help="Images per inference batch (0: 4 on a GPU, 1 on the CPU).")] = 0,
    ext: Annotated[str, typer.Option(help="Output format: same, jpg, png, webp, avif or heic (same: a camera RAW becomes a 16-bit TIFF).")] = "same",
    quality: Annotated[Optional[int], typer.Option(min=1, max=100, help="JPEG/WebP/AVIF/HEIC quality (default 95/90/85/85).")] = None,
    suffix: Annotated[Optional[str], typer.Option(help="Added to output file names (default: none in an output folder, _<target> beside the input).")] = None,
    on_exists: Annotated[str, typer.Option(help="skip: keep outputs made with the same model and settings; overwrite: redo all.")] = "skip",
    max_side: Annotated[Optional[int], typer.Option(help="Run the model with the longest side at most this (e.g. 512), then scale back.")] = None,
    work_size: Annotated[bool, typer.Option("--work-size", help="With --max-side: write outputs at the working size instead of the original size.")] = False,
    tile: Annotated[Optional[int], typer.Option(help="Run images larger than this side in tiles of this size (0: never; default: automatic above 4 MP).")] = None,
    metadata: Annotated[str, typer.Option(help="keep (EXIF with orientation reset, ICC profile) or strip.")] = "keep",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be written where, and collisions; write nothing.")] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Decode workers, and as many encode workers.")] = 2,
    ray: Annotated[Optional[str], typer.Option("--ray", metavar="[ADDRESS]", help="Run on Ray Data: alone, a local Ray instance; auto or ray://HOST:10001 joins a cluster (docs/scale.md; needs pip install 'cyclegan-convert[ray]').", show_default=False)] = None,
) -> None:
    """Convert photos with a model: files, folders (recursive) or globs; the folder tree is mirrored.
    Example: ccv convert photos/ --to monet   (writes photos_monet/)
    """
    from ..converter import ConvertOptions, Converter
    from ..resolve import resolve_model
    from .models import download_feedback

    opts = ConvertOptions(output=output, ext=ext, quality=quality, suffix=suffix, on_exists=on_exists,
                          max_side=max_side, work_size=work_size, tile=tile, metadata=metadata, dry_run=dry_run,
                          jobs=jobs, batch_size=batch_size, backend=backend, device=device, precision=precision,
                          compile=compile, colors=colors, strength=strength, strokes=strokes, highlights=highlights, edges=edges)
    with download_feedback(f"model for --to {to or 'monet'}") as (on_notice, on_progress):
        ref = resolve_model(to, from_, model, on_notice=on_notice, on_progress=on_progress)
    if dry_run:
        _dry_run(Converter(ref, opts), inputs)
        return
    from ..files import plan_roots

    if ray is not None:
        from ..ray_runner import RayConverter, import_ray

        import_ray()  # not installed: one usage line before any work
    plan_roots(inputs, ref.target, output)  # a bad input or -o: its error alone, before the progress bar
    conv = Converter(ref, opts) if ray is None else RayConverter(ref, opts, ray)
    summary = _run_with_progress(conv, inputs, ref.label)
    _print_summary(summary)
    if summary.interrupted:
        err_console.print("interrupted: finished files are kept; run the same command again to go on", style="yellow")
        raise typer.Exit(EXIT_INTERRUPTED)
    if summary.failed:
        where = ", ".join(str(p) for p in summary.failures_files)
        raise ItemsFailed(f"{len(summary.failed)} file(s) failed; listed above" + (f" and in {where}" if where else ""))


def ignored_text(ignored) -> str:
    """``3 files that are not images ccv reads (.gpr 1, .mov 2)``, or empty. A GoPro .gpr is a photo
    (a RAW that LibRaw cannot decode): "not images" alone would be wrong about it."""
    if not ignored:
        return ""
    n = sum(ignored.values())
    what = "files that are not images" if n != 1 else "file that is not an image"
    return f"{n} {what} ccv reads (" + \
        ", ".join(f"{k} {v}" for k, v in sorted(ignored.items(), key=lambda kv: (-kv[1], kv[0]))) + ")"


def _dry_run(conv, inputs: list[str]) -> None:
    from collections import Counter

    ignored: Counter = Counter()
    plan = conv.plan(inputs, ignored)
    counts: dict[str, int] = {}
    for p in plan:
        counts[p.action] = counts.get(p.action, 0) + 1
        note = f"  ({p.note})" if p.note else ""
        console.print(f"{p.action:<8} {escape(str(p.job.src))} -> {escape(str(p.job.dst))}{escape(note)}", highlight=False, soft_wrap=True)
    console.print("dry run, nothing written: " + (", ".join(f"{v} {k}" for k, v in counts.items()) or "no images found")
                  + (f"; ignored {ignored_text(ignored)}" if ignored else ""), highlight=False, soft_wrap=True)


def _run_with_progress(conv, inputs: list[str], label: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeRemainingColumn

    bar = Progress(SpinnerColumn(), BarColumn(bar_width=24), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                   TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=console, transient=False)
    task = bar.add_task("convert", total=None, rate="", info="")

    def on_message(kind: str, text: str) -> None:
        if kind == "backend":
            console.print(f"backend: {escape(text)}  model: {escape(label)}", highlight=False, soft_wrap=True)
        elif kind == "failed":
            bar.console.print(f"[red]failed:[/] {escape(text)}", highlight=False, soft_wrap=True)
        else:
            bar.console.print(f"[yellow]note:[/] {escape(text)}", highlight=False, soft_wrap=True)

    def on_progress(p) -> None:
        rate = p.converted / p.elapsed_s if p.elapsed_s > 0 else 0.0
        stages = " ".join(f"{k} {v:.3g}/s" for k, v in p.rates.items() if v)
        bar.update(task, completed=p.done, total=p.total, rate=f"{rate:.2f} files/s",
                   info=f"converted {p.converted} skipped {p.skipped} failed {p.failed} | {stages}")

    conv.on_message, conv.on_progress = on_message, on_progress
    with bar:
        return conv.run(inputs)


def _print_summary(s) -> None:
    from rich.table import Table

    t = Table(title="ccv convert", title_justify="left", show_header=False)
    t.add_column("what")
    t.add_column("value")
    t.add_row("backend", escape(s.backend))
    t.add_row("converted", str(s.converted))
    t.add_row("skipped", str(s.skipped))
    t.add_row("failed", str(len(s.failed)))
    if s.ignored:
        t.add_row("ignored", escape(ignored_text(s.ignored)))
    t.add_row("time", f"{s.elapsed_s:.1f} s" + (f"  ({s.converted / s.elapsed_s:.2f} files/s)" if s.elapsed_s else ""))
    if s.stats:
        t.add_row("stage rates", "  ".join(f"{k} {getattr(s.stats, k).rate:.2f}/s" for k in ("decode", "infer", "encode")))
    if s.time_split:
        t.add_row("time split", "  ".join(f"{k} {v:.1f} s" for k, v in s.time_split.items()))
    t.add_row("output", escape(", ".join(str(p) for p in s.out_roots) or "-"))
    console.print(t)
    for src, msg in s.failed[:MAX_LISTED_FAILURES]:
        console.print(f"  [red]failed[/] {escape(msg)}", highlight=False, soft_wrap=True)
    if len(s.failed) > MAX_LISTED_FAILURES:
        console.print(f"  ... and {len(s.failed) - MAX_LISTED_FAILURES} more in the failures file")
