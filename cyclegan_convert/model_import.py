"""`ccv import` as a function: a generator file from anywhere becomes a model in the store.

The file is read with ``weights_only=True`` (pickled code is never executed) and must load into a
CycleGAN ResNet generator with strict key matching; the input file is copied, never moved.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Union

from .errors import NotAGeneratorError, UsageError
from .store import ModelEntry, ModelStore, check_same_domains, model_id

DEFAULT_SOURCE = "photo"  # what most people convert; `--from` names another


def import_generator(path: Union[str, Path], target: str, source: str = DEFAULT_SOURCE,
                     store: Optional[ModelStore] = None, *, force: bool = False) -> ModelEntry:
    """Checks ``path`` is a generator and installs a copy of it as ``source`` -> ``target``.

    A model with the same source and target is replaced only with ``force``.
    """
    from .weights import clean_state_dict, infer_arch, load_generator, read_state_dict, sha256_file

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    store = store or ModelStore()
    mid = model_id(source, target)
    existing = next((e for e in store.entries() if e.id == mid), None)
    check_same_domains(existing, source, target)  # before reading the file: the name is the problem
    if existing is not None and existing.origin != "bundled" and not force:  # a bundled one is only shadowed
        raise UsageError(f"{mid} is already installed ({existing.origin}); `ccv models rm {target} --from {source}` "
                         f"first, or import with --force to replace it")
    try:
        raw = read_state_dict(path)
        sd = clean_state_dict(raw)
        arch = infer_arch(sd, str(path))
        load_generator(sd)  # strict key and shape match
    except NotAGeneratorError as e:
        raise NotAGeneratorError(f"{e}; `ccv import` takes a CycleGAN generator file "
                                 f"(such as latest_net_G_A.pth or a model's generator.pth)") from None
    if arch.input_nc != 3 or arch.output_nc != 3:
        raise NotAGeneratorError(f"{path}: generator maps {arch.input_nc} to {arch.output_nc} channels; "
                                 f"ccv converts RGB images (3 to 3)")
    sha = sha256_file(path)
    card = {
        "original_file": path.name,
        "imported_from": str(path.resolve()),
        "imported": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sha256": sha,
        "size_bytes": path.stat().st_size,
        "architecture": f"{arch.name}, ngf {arch.ngf}{', dropout' if arch.use_dropout else ''}",
        "format": "original (with InstanceNorm buffers)" if len(raw) != len(sd) else "plain state_dict",
    }
    entry = ModelEntry(target=target, source=source, origin="imported", arch=arch.name, ngf=arch.ngf,
                       sha256=sha, card=card)
    return store.add(entry, path)
