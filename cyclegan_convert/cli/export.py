"""`ccv export`: verified ONNX (FP32 and FP16) and a TensorRT engine, next to the model in the store."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .app import FromOpt, ModelOpt, ToOpt, command, console, err_console

ShapeOpt = lambda name, what: Annotated[Optional[str], typer.Option(  # noqa: E731
    name, metavar="BxHxW", help=f"{what} input shape of the engine profile, e.g. 1x512x512.")]


@command()
def export(
    to: ToOpt = None,
    from_: FromOpt = None,
    model: ModelOpt = None,
    fp16: Annotated[bool, typer.Option("--fp16/--fp32", help="Also make the FP16 ONNX (InstanceNorm kept in FP32); "
                                       "--fp32 makes only the FP32 one.")] = True,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write here instead of the model's folder in the store.")] = None,
    engine: Annotated[Optional[bool], typer.Option("--engine/--no-engine", help="Build the TensorRT engine (default: "
                                                   "when TensorRT and a CUDA GPU are there; --engine makes it required).")] = None,
    min_shape: ShapeOpt("--min-shape", "Smallest") = None,
    opt_shape: ShapeOpt("--opt-shape", "Tuned-for") = None,
    max_shape: ShapeOpt("--max-shape", "Largest") = None,
    for_: Annotated[Optional[Path], typer.Option("--for", metavar="DIR_OR_VIDEO", help="Derive the engine profile "
                                                 "from the sizes of these images or this video.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Export again even if the files are current.")] = False,
) -> None:
    """Export a model to ONNX (FP32, FP16) and a TensorRT engine, each verified against PyTorch.
    Example: ccv export --to monet --for ~/Pictures/holiday
    """
    from ..export import ExportOptions, make_profile, run_export, scan_sizes
    from ..resolve import resolve_model
    from .models import download_feedback

    with download_feedback(f"model for --to {to or 'monet'}") as (on_notice, on_progress):
        ref = resolve_model(to=to, from_=from_, model=model, on_notice=on_notice, on_progress=on_progress)
    skipped: list[str] = []
    sizes = scan_sizes(for_, on_skip=skipped.append) if for_ is not None else None
    if skipped:
        err_console.print(f"--for: left out {len(skipped)} unreadable file(s), first: {skipped[0]}", style="yellow",
                          highlight=False, markup=False, soft_wrap=True)
    profile = make_profile(min_shape, opt_shape, max_shape, sizes)
    if sizes is not None:
        console.print(f"engine profile from {len(sizes)} size(s) in {for_}: min {profile.min}, opt {profile.opt}, "
                      f"max {profile.max}", highlight=False, markup=False, soft_wrap=True)
    opts = ExportOptions(fp16=fp16, out=out, engine=engine, profiles=(profile,), force=force)
    say = lambda msg: err_console.print(msg, style="dim", highlight=False, markup=False, soft_wrap=True)  # noqa: E731
    try:
        report = run_export(ref, opts, on_message=say)
    except Exception as e:  # show the numbers of a failed verification, then the one-line error
        if getattr(e, "verification", None) is not None:
            _print_verification(e.verification)
        raise
    for v in report.verifications:
        _print_verification(v)
    for key, label in (("fp32", "FP32 ONNX"), ("fp16", "FP16 ONNX"), ("engine", "TensorRT engine")):
        if key in report.files:
            path = report.files[key]
            state = "up to date" if path in report.reused else f"{report.seconds.get(key, 0):.0f} s"
            console.print(f"{label}: {path} ({path.stat().st_size / 1e6:.1f} MB, {state})", highlight=False, markup=False, soft_wrap=True)
    if report.engine_note:
        console.print(report.engine_note, highlight=False, markup=False, soft_wrap=True)


def _print_verification(v) -> None:
    from rich.table import Table

    table = Table(title=f"{v.path.name} vs PyTorch FP32 ({v.criterion})", title_justify="left")
    for col in ("shape BxHxW", "max abs diff", "PSNR 8-bit", "finite", "ok"):
        table.add_column(col, justify="right")
    for r in v.rows:
        psnr = "identical" if r.psnr_db == float("inf") else f"{r.psnr_db:.1f} dB"
        table.add_row(str(r.shape), f"{r.max_abs:.2e}", psnr, "yes" if r.finite else "NO",
                      "[green]ok[/]" if r.ok else "[red]FAIL[/]")
    console.print(table)
    if v.graph_checks:
        console.print("graph: " + "; ".join(v.graph_checks), highlight=False, markup=False, soft_wrap=True)
