"""`ccv models`, `ccv models rm`, `ccv pull`, `ccv import`: what is in the model store and how it gets there."""
from __future__ import annotations

import contextlib
import shlex
from pathlib import Path
from typing import Annotated, Callable, Iterator, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import CcvError, ItemsFailed
from .app import FromOpt, app, command, console, err_console, report_errors

models_app = typer.Typer(help="List the models in the store (`ccv models rm NAME` removes one). "
                              "Example: ccv models", invoke_without_command=True, no_args_is_help=False)
app.add_typer(models_app, name="models")

ProgressFn = Callable[[int, Optional[int], float], None]


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _say(message: str) -> None:
    """One message line: never wrapped, so it stays one line in a log or a pipe."""
    console.print(escape(message), soft_wrap=True, highlight=False)


@contextlib.contextmanager
def download_feedback(what: str) -> Iterator[tuple[Callable[[str], None], ProgressFn]]:
    """(on_notice, on_progress) callbacks that draw a download bar on stderr while the block runs.

    Other commands pass them to ``resolve_model`` so the first-use download of the default model shows.
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    def on_notice(message: str) -> None:
        err_console.print(escape(message), style="yellow", highlight=False, soft_wrap=True)

    if not err_console.is_terminal:  # a log file gets the notices, not a redrawn bar
        yield on_notice, lambda done, total, speed: None
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                   TextColumn("{task.fields[speed]}"), TimeRemainingColumn(), console=err_console, transient=True)
    task = bar.add_task(escape(what), total=None, speed="")

    def on_progress(done: int, total: Optional[int], speed: float) -> None:
        bar.update(task, completed=done, total=total, speed=f"{speed / 1e6:.1f} MB/s" if speed else "")

    with bar:
        yield on_notice, on_progress


@models_app.callback()
@report_errors
def list_models(ctx: typer.Context) -> None:
    """List the models in the store. Example: ccv models"""
    if ctx.invoked_subcommand is not None:
        return
    from ..model_listing import damaged_folders, disk_size, exports_summary
    from ..store import ModelStore

    store = ModelStore()
    entries = store.entries()
    table = Table(title=f"models in {store.root}", title_justify="left")
    from ..look import Look

    for col in ("--to", "--from", "id", "origin", "arch", "look¹", "size", "exports"):
        table.add_column(col, no_wrap=col in ("--to", "--from", "id", "origin", "look¹", "size"))  # what a user types stays whole
    for e in entries:
        look = Look.of(None, None, e.look)
        shown_look = "raw" if look.raw else f"{look.colors:g} / {look.strength:g} / {look.strokes:g} / {look.highlights:g} / {look.edges:g}"
        table.add_row(e.target, e.source, e.id, e.origin, f"{e.arch}, ngf {e.ngf}", shown_look, _size(disk_size(e)),
                      exports_summary(e) or "-")
    console.print(table)
    if any(e.look for e in entries):
        console.print("¹ the recommended look: --colors / --strength / --strokes / --highlights / --edges, used unless you give them",
                      highlight=False)
    for folder in damaged_folders(store):
        _say(f"damaged model folder {folder}: `ccv models rm {folder.name}` removes it")
    if not entries:
        _say("No models yet: `ccv pull style_monet`, `ccv import FILE --to NAME` or `ccv train`.")


@models_app.command("rm")
@report_errors
def remove(name: Annotated[str, typer.Argument(help="Target domain (as in --to) or model id (photo2monet).")],
           from_: FromOpt = None,
           yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False) -> None:
    """Remove a model with its exported ONNX files and engines. Example: ccv models rm zebra"""
    from ..model_listing import disk_size, locate
    from ..store import ModelStore

    store = ModelStore()
    entry = locate(store, name, from_)
    what = f"{entry.path.name if entry.path else entry.id} ({entry.origin}, {_size(disk_size(entry))} with its exports)"
    if entry.origin != "bundled" and not yes:
        try:
            ok = typer.confirm(f"Remove {what}?", default=False)
        except typer.Abort:
            ok = False
        if not ok:
            _say("Nothing removed.")
            return
    store.remove(entry)
    _say(f"Removed {what}.")


@command()
def pull(names: Annotated[Optional[list[str]], typer.Argument(
            help="Pretrained names, e.g. style_monet horse2zebra. Without a name: list all 18.",
            show_default=False)] = None,
         force: Annotated[bool, typer.Option("--force", help="Replace a model with the same --to and --from.")] = False
         ) -> None:
    """Download generators published by the original CycleGAN project. Example: ccv pull style_monet

    Downloads resume where they stopped; CCV_PRETRAINED_URL points at a mirror.
    """
    from .. import pretrained as pt
    from ..store import ModelStore

    if not names:
        table = Table(title=f"pretrained generators (from {pt.base_url()})", title_justify="left")
        for col in ("name", "--to", "--from", "note"):
            table.add_column(col)
        for spec in pt.PRETRAINED.values():
            table.add_row(spec.name, spec.target, spec.source, spec.note)
        console.print(table)
        _say("Example: ccv pull style_monet, then ccv convert photos/ --to monet")
        return
    store = ModelStore()
    failed = []
    for name in names:
        try:
            spec = pt.lookup(name)
            have = pt.installed(spec, store)
            if have is not None and have.origin == "pulled" and have.card.get("name") == spec.name and not force:
                _say(f"{spec.name} is already installed as {have.id} (--to {spec.target}).")
                continue
            with download_feedback(spec.name) as (on_notice, on_progress):
                entry = pt.pull(name, store, progress=on_progress, on_notice=on_notice, force=force)
            _say(f"Installed {spec.name} as {entry.id} ({_size(entry.card['size_bytes'])}, sha256 "
                 f"{entry.sha256[:12]}...): use {to_args(store, entry.target, entry.source)}")
        except CcvError as e:
            if len(names) == 1:
                raise
            err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            failed.append(name)
    if failed:
        raise ItemsFailed(f"{len(failed)} of {len(names)} not installed: {', '.join(failed)}")


def to_args(store, target: str, source: str) -> str:
    """'--to TARGET', with '--from SOURCE' when other models make TARGET too; quoted for the shell
    (domain names may hold spaces: two folders 'my photos' and 'paintings')."""
    sources = [e.source for e in store.entries() if e.target == target]
    return f"--to {shlex.quote(target)}" + (f" --from {shlex.quote(source)}" if len(sources) > 1 else "")


@command("import")
def import_(path: Annotated[Path, typer.Argument(help="A generator file (.pth): the original's or ours.",
                                                 show_default=False)],
            to: Annotated[str, typer.Option("--to", help="Target domain: what the generator makes, e.g. ghibli.",
                                            show_default=False)],
            from_: Annotated[Optional[str], typer.Option(
                "--from", help="Source domain: what it takes as input (default: photo).", show_default=False)] = None,
            force: Annotated[bool, typer.Option("--force", help="Replace a model with the same --to and --from.")]
            = False) -> None:
    """Register a generator file in the model store. Example: ccv import latest_net_G_A.pth --to ghibli

    The file is loaded as weights only: pickled code is never run.
    It must be a CycleGAN ResNet generator; it is copied and the original stays where it is.
    """
    from ..model_import import DEFAULT_SOURCE, import_generator
    from ..store import ModelStore

    store = ModelStore()
    entry = import_generator(path, to, from_ or DEFAULT_SOURCE, store, force=force)
    _say(f"Imported {path.name} as {entry.id} ({entry.card['architecture']}): use "
         f"{to_args(store, entry.target, entry.source)}")
    if from_ is None:
        _say(f"Source domain assumed to be '{DEFAULT_SOURCE}': pass --from to name another.")
