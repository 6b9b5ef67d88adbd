"""`ccv video`: a thin layer over cyclegan_convert.video."""
from __future__ import annotations

import contextlib
import signal
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer
from rich.markup import escape

from ..errors import ItemsFailed
from .app import (BackendOpt, ColorsOpt, DeviceOpt, EdgesOpt, FromOpt, HighlightsOpt, ModelOpt, StrengthOpt, StrokesOpt, ToOpt,
                  command, console, err_console)


@command()
def video(
    src: Annotated[Path, typer.Argument(help="The video to convert (mp4, mkv, mov, webm, ...).")],
    to: ToOpt = None,
    from_: FromOpt = None,
    model: ModelOpt = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Output file or folder (default: <input>_<target>.mp4 beside the input; .mkv and .mov inputs keep their container).")] = None,
    codec: Annotated[str, typer.Option("--codec", help="Video encoder: libx264, libx265, libvpx-vp9, libsvtav1, h264_nvenc, hevc_nvenc (what this FFmpeg build has).")] = "libx264",
    crf: Annotated[Optional[int], typer.Option("--crf", help="Constant quality (lower is better; default 18 for x264, 20 for x265, 31 for VP9).")] = None,
    preset: Annotated[Optional[str], typer.Option("--preset", help="Encoder speed preset, e.g. medium, slow (x264/x265), p1-p7 (NVENC).")] = None,
    pix_fmt: Annotated[Optional[str], typer.Option("--pix-fmt", help="Output pixel format (default: the source's, e.g. yuv420p10le for 10-bit).")] = None,
    bitrate: Annotated[Optional[str], typer.Option("--bitrate", help="Target bit rate such as 8M instead of constant quality.")] = None,
    max_side: Annotated[Optional[int], typer.Option("--max-side", help="Run the model with the longer side at most this (faster); the output is scaled back.")] = None,
    work_size: Annotated[bool, typer.Option("--work-size", help="Write the output at the --max-side size instead of scaling back.")] = False,
    start: Annotated[float, typer.Option("--start", help="Start this many seconds into the input.")] = 0.0,
    duration: Annotated[Optional[float], typer.Option("--duration", help="Convert only this many seconds.")] = None,
    no_audio: Annotated[bool, typer.Option("--no-audio", help="Leave the audio streams out.")] = False,
    side_by_side: Annotated[bool, typer.Option("--side-by-side", help="Input and output next to each other (previews).")] = False,
    colors: ColorsOpt = None,
    strength: StrengthOpt = None,
    strokes: StrokesOpt = None,
    highlights: HighlightsOpt = None,
    edges: EdgesOpt = None,
    stable: Annotated[bool, typer.Option("--stable", help="Temporal consistency: the previous output follows the input's optical flow and is blended in where the flow is reliable (any backend, about no extra time). The API's VideoOptions(stable_momentum=0.9) also smooths InstanceNorm statistics within a shot (torch backend; 3-7% steadier, +78% time at 720p).")] = False,
    allow_hdr: Annotated[bool, typer.Option("--allow-hdr", help="Convert HDR (PQ/HLG) code values as if SDR instead of refusing.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output file (never the input).")] = False,
    backend: BackendOpt = "auto",
    device: DeviceOpt = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=0, help="Frames per inference batch (0: 4 on a GPU, 1 on the CPU).")] = 0,
) -> None:
    """Convert a video; audio, timing, rotation and colour are kept.
    Example: ccv video holiday.mp4 --to monet
    """
    from ..resolve import resolve_model
    from ..video import VideoConverter, VideoOptions

    options = VideoOptions(output=output, codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt, bitrate=bitrate,
                           max_side=max_side, work_size=work_size, start=start, duration=duration,
                           no_audio=no_audio, side_by_side=side_by_side, stable=stable, allow_hdr=allow_hdr,
                           overwrite=overwrite, batch_size=batch_size, backend=backend, device=device,
                           colors=colors, strength=strength, strokes=strokes, highlights=highlights, edges=edges)
    ref = resolve_model(to, from_, model)
    try:
        with _ProgressBar() as bar, _stop_cleanly_on_signals():
            conv = VideoConverter(ref, options, on_progress=bar.update, on_message=bar.message)
            result = conv.run(src)
    except _Signalled as e:
        err_console.print(f"stopped by {signal.Signals(e.signum).name}; no output was written", style="yellow")
        raise typer.Exit(128 + e.signum) from None
    r = result.rates
    console.print(f"{escape(str(result.output))}: {result.frames} frames in {result.elapsed_s:.1f} s "
                  f"({result.fps:.1f} frames/s; decode {r['decode']:.0f}, model {r['infer']:.1f}, "
                  f"encode {r['encode']:.0f} frames/s)", highlight=False)
    for note in result.notes:
        err_console.print(f"note: {escape(note)}", highlight=False)
    if result.problem:
        err_console.print(f"[bold red]failed:[/] {escape(str(src))}: {escape(result.problem)}; "
                          f"{result.frames} frames were converted", highlight=False)
        raise ItemsFailed(f"{src}: converted only in part")


class _Signalled(KeyboardInterrupt):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _stop_cleanly_on_signals() -> Iterator[None]:
    """SIGTERM (kill, timeout, a job scheduler) and SIGHUP (a closed terminal) stop the conversion as
    Ctrl-C does: the temporary output is removed. By default they end the process on the spot,
    leaving a hidden .part file as large as what was written so far."""

    def stop(signum, frame):
        raise _Signalled(signum)

    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        try:
            previous[sig] = signal.signal(sig, stop)
        except ValueError:  # not the main thread: leave the signals alone
            pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _ProgressBar:
    """A rich bar by frames with fps, ETA and per-stage rates; messages go above it."""

    def __init__(self) -> None:
        self.progress = None

    def __enter__(self) -> "_ProgressBar":
        return self

    def _start(self):
        """Started on the first message, so errors found while checking the input show no bar."""
        if self.progress is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(BarColumn(bar_width=30), MofNCompleteColumn(), TextColumn("{task.fields[fps]}"),
                                     TextColumn("ETA"), TimeRemainingColumn(), TextColumn("[dim]{task.fields[stages]}"),
                                     console=err_console)
            self.progress.start()
            self.task = self.progress.add_task("video", total=None, fps="", stages="")
        return self.progress

    def update(self, p) -> None:
        r = p.rates
        stages = f"decode {r.get('decode', 0):.0f} model {r.get('infer', 0):.1f} encode {r.get('encode', 0):.0f}"
        self._start().update(self.task, completed=p.frames, total=p.total, fps=f"{p.fps:.1f} fps", stages=stages)

    def message(self, kind: str, text: str) -> None:
        prefix = "using" if kind == "backend" else "note:"
        self._start().console.print(f"[dim]{prefix}[/] {escape(text)}", highlight=False)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
