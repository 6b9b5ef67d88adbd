"""Putting trained generators into the model store, each under the name of its target domain."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from cyclegan_convert.errors import UsageError
from cyclegan_convert.store import ModelEntry, ModelStore, model_id
from cyclegan_convert.weights import load_generator, sha256_file

from .config import TrainConfig


def check_domain_names(config: TrainConfig) -> None:
    """Before training starts: names the store will accept at the first save."""
    for flag, name in (("--a-name", config.a_name), ("--b-name", config.b_name)):
        if not name or any(c in name for c in "/\\:") or name.startswith(".") or name != name.strip():
            raise UsageError(f"{flag} {name!r} is not a usable domain name: use letters, digits, '-' or '_'")
    if config.a_name == config.b_name:
        raise UsageError(f"both domains are called {config.a_name!r}: set --a-name and --b-name")


def check_store_free(config: TrainConfig, folder: Path, store: Optional[ModelStore] = None) -> None:
    """Before training starts: the saves will replace the store's models with the same ids; refuse
    when one of them was pulled, imported or trained by another run, instead of losing it silently
    at the first save (``ccv import`` refuses the same way)."""
    store = store or ModelStore()
    try:
        store.check_writable()  # else the first save would fail, after --save-every steps of training
    except UsageError as e:
        raise UsageError(f"{e}, or train with --no-register") from None
    here = str(Path(folder).resolve())
    ids = {model_id(config.a_name, config.b_name), model_id(config.b_name, config.a_name)}
    for e in store.entries():
        if e.id in ids and e.path is not None and e.path.parent == store.models_dir and not (
                e.origin == "trained" and e.card.get("checkpoints") == here):
            made = e.card.get("run") if e.origin == "trained" else None
            raise UsageError(f"the model store already holds {e.id} ({e.origin}"
                             + (f" by run {made}" if made else "") + f") and this run's saves would replace it: "
                             f"`ccv models rm {e.id}` first, pick other --a-name/--b-name, or train with --no-register")


def register_generators(config: TrainConfig, weights: dict[str, Path], card: dict[str, Any],
                        store: Optional[ModelStore] = None) -> list[ModelEntry]:
    """G_A (A -> B) becomes ``--to b_name`` from a_name; G_B (B -> A) ``--to a_name`` from b_name."""
    store = store or ModelStore()
    added = []
    for net, source, target in (("G_A", config.a_name, config.b_name), ("G_B", config.b_name, config.a_name)):
        path = weights[net]
        load_generator(path)  # strict keys: what the store gets is a loadable generator
        entry = ModelEntry(target=target, source=source, origin="trained", arch=config.arch, ngf=config.ngf,
                           sha256=sha256_file(path), card={**card, "network": f"{net} ({source} -> {target})"})
        added.append(store.add(entry, path))
    return added
