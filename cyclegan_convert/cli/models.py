"""`ccv models`: what is in the model store."""
from __future__ import annotations

import typer
from rich.table import Table

from .app import app, console, report_errors

models_app = typer.Typer(help="List the models in the store (`ccv models rm NAME` removes one).\n\n"
                              "Example: ccv models", invoke_without_command=True, no_args_is_help=False)
app.add_typer(models_app, name="models")


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


@models_app.callback()
@report_errors
def list_models(ctx: typer.Context) -> None:
    """List the models in the store. Example: ccv models"""
    if ctx.invoked_subcommand is not None:
        return
    from ..store import ModelStore

    store = ModelStore()
    entries = store.entries()
    table = Table(title=f"models in {store.root}", title_justify="left")
    for col in ("--to", "from", "id", "origin", "arch", "size"):
        table.add_column(col)
    for e in entries:
        table.add_row(e.target, e.source, e.id, e.origin, e.arch, _size(e.weights.stat().st_size))
    console.print(table)
    if not entries:
        console.print("No models yet: `ccv pull style_monet`, `ccv import FILE --to NAME` or `ccv train`.")
