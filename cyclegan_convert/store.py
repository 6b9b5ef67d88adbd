"""The model store: generators found by the name of their target domain (``--to monet``).

Layout of a store root (the user's data folder, or the bundled models inside the package)::

    models/<source>2<target>/model.json     ModelEntry as JSON, with the model card
    models/<source>2<target>/generator.pth  plain state_dict, loadable by the original test script
    models/<source>2<target>/exports/       ONNX, FP16 ONNX, TensorRT engines (see cyclegan_convert.export)

The user's store wins over bundled models of the same id. ``CCV_HOME`` overrides the data folder.
"""
from __future__ import annotations

import difflib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Union

from .atomic import ensure_writable_folder
from .errors import UnknownModelError, UsageError

BUNDLED_ROOT = Path(__file__).resolve().parent / "models"
ORIGINS = ("bundled", "trained", "pulled", "imported")


def data_home() -> Path:
    """Per-user data folder by platform convention; ``CCV_HOME`` overrides it."""
    if env := os.environ.get("CCV_HOME"):
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "ccv"


@dataclass(frozen=True)
class ModelEntry:
    """One generator in the store: it turns images of ``source`` into images of ``target``."""

    target: str
    source: str
    origin: str  # bundled, trained, pulled, imported
    arch: str = "resnet_9blocks"
    ngf: int = 64
    sha256: str = ""
    card: dict[str, Any] = field(default_factory=dict)  # how it was made: data, steps, losses, licence
    look: dict[str, float] = field(default_factory=dict)  # recommended --colors/--strength/--strokes (look.Look); {}: raw output
    path: Optional[Path] = field(default=None, compare=False)  # the model's folder; not saved

    @property
    def id(self) -> str:
        return model_id(self.source, self.target)

    @property
    def weights(self) -> Path:
        assert self.path is not None, "entry not in a store"
        return self.path / "generator.pth"

    @property
    def exports_dir(self) -> Path:
        assert self.path is not None, "entry not in a store"
        return self.path / "exports"

    def to_json(self) -> str:
        d = asdict(self)
        d.pop("path")
        return json.dumps(d, indent=2, sort_keys=True)

    @classmethod
    def from_folder(cls, folder: Path) -> "ModelEntry":
        d = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        if not isinstance(d, dict) or not all(isinstance(d.get(k), str) for k in ("target", "source", "origin")):
            raise ValueError(f"{folder / 'model.json'}: not a model description")  # damaged: listed as such
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__ and k != "path"}
        return cls(**known, path=folder)


def model_id(source: str, target: str) -> str:
    return f"{source}2{target}"


def _check_domain(name: str) -> str:
    if not name or any(c in name for c in "/\\:") or name.startswith(".") or name != name.strip():
        raise UsageError(f"invalid domain name {name!r}: use letters, digits, '-' or '_'")
    return name


def check_same_domains(existing: Optional["ModelEntry"], source: str, target: str) -> None:
    """Model ids are ``source2target``: ``x2monet -> y`` and ``x -> monet2y`` share one. Refuses to
    let one model take the place of the other."""
    if existing is not None and (existing.source, existing.target) != (source, target):
        raise UsageError(f"--from {source} --to {target} would be stored as {existing.id}, the id of another "
                         f"model (--from {existing.source} --to {existing.target}): names with a '2' can collide; "
                         "choose other names")


class ModelStore:
    """Model entries of a user root plus the bundled root (read-only)."""

    def __init__(self, root: Optional[Path] = None, bundled_root: Union[Path, None, str] = "package"):
        self.root = Path(root) if root is not None else data_home()
        # read at call time, not bound at import: tests (and embedders) point it elsewhere
        self.bundled_root = BUNDLED_ROOT if bundled_root == "package" else bundled_root

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def entries(self) -> list[ModelEntry]:
        """Every model, the user's store overriding bundled ones with the same id, sorted by id."""
        found: dict[str, ModelEntry] = {}
        for root in [self.bundled_root, self.models_dir]:
            if root is None or not root.is_dir():
                continue
            for folder in sorted(root.iterdir()):
                if (folder / "model.json").is_file() and (folder / "generator.pth").is_file():
                    try:
                        entry = ModelEntry.from_folder(folder)
                    except (ValueError, TypeError, OSError):
                        continue  # a damaged entry is not a model; `ccv models rm` can remove it
                    found[entry.id] = entry
        return [found[k] for k in sorted(found)]

    def find(self, target: str, source: Optional[str] = None) -> ModelEntry:
        """The model whose target domain is ``target`` (and source ``source`` if given)."""
        entries = self.entries()
        matches = [e for e in entries if e.target == target and (source is None or e.source == source)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            sources = ", ".join(sorted(e.source for e in matches))
            raise UsageError(f"several models turn images into {target!r} (from {sources}): choose one with --from")
        names = sorted({e.target for e in entries})
        sources = sorted(e.source for e in entries if e.target == target)
        if sources:  # the target is there, made from other domains: say which, not "did you mean <target>"
            raise UnknownModelError(
                f"no model for --to {target} --from {source}: the models for --to {target} take "
                f"{', '.join(sources)} (--from {sources[0]})")
        close = difflib.get_close_matches(target, names, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        have = f" Installed: {', '.join(names)}." if names else " No models are installed."
        raise UnknownModelError(
            f"no model for --to {target}{' --from ' + source if source else ''}.{hint}{have} "
            f"Get one with `ccv pull`, `ccv import` or `ccv train`.")

    def get(self, model_id_: str) -> ModelEntry:
        for e in self.entries():
            if e.id == model_id_:
                return e
        raise UnknownModelError(f"no model with id {model_id_!r}; `ccv models` lists them")

    def add(self, entry: ModelEntry, weights: Union[str, Path], *, move: bool = False) -> ModelEntry:
        """Installs ``weights`` as ``entry`` atomically: a half-installed model is never visible.

        The caller has checked that the file is a generator (see ``weights.load_generator``).
        An existing model with the same id is replaced, with its exports (they belong to old weights).
        """
        _check_domain(entry.source), _check_domain(entry.target)
        self.check_writable()
        final = self.models_dir / entry.id
        try:
            there = ModelEntry.from_folder(final) if (final / "model.json").is_file() else None
        except (ValueError, TypeError, OSError):
            there = None  # a damaged folder: replaced
        check_same_domains(there, entry.source, entry.target)
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{entry.id}.", dir=self.models_dir))
        except OSError as e:
            raise self._unwritable(e) from None
        old: Optional[Path] = None
        try:
            (shutil.move if move else shutil.copyfile)(str(weights), str(staging / "generator.pth"))
            (staging / "model.json").write_text(entry.to_json() + "\n", encoding="utf-8")
            if final.exists():
                old = self.models_dir / f".{entry.id}.old"
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
            os.replace(staging, final)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException as e:
            shutil.rmtree(staging, ignore_errors=True)
            if old is not None and old.exists() and not final.exists():
                os.replace(old, final)  # failed (or Ctrl-C) between the two renames: the model it was to replace stays
            if isinstance(e, OSError):  # a full disk, a read-only mount: one line, not a traceback
                raise self._unwritable(e) from None
            raise
        return replace(entry, path=final)

    def _unwritable(self, e: OSError) -> UsageError:
        import errno

        todo = "free some space" if e.errno == errno.ENOSPC else "set CCV_HOME to a writable folder"
        return UsageError(f"cannot write the model store {self.models_dir} ({e.strerror or e}): {todo}")

    def check_writable(self) -> None:
        """The models folder exists or can be made, and is writable (a clear error otherwise)."""
        try:
            ensure_writable_folder(self.models_dir)
        except OSError as e:
            raise self._unwritable(e) from None

    def remove(self, entry: ModelEntry) -> None:
        if entry.origin == "bundled" or (entry.path and self.bundled_root and
                                         entry.path.parent == self.bundled_root):
            raise UsageError(f"{entry.id} is bundled with ccv and cannot be removed")
        assert entry.path is not None
        trash = entry.path.with_name(f".{entry.id}.rm")
        os.replace(entry.path, trash)  # gone from listings at once, even if the delete is interrupted
        shutil.rmtree(trash, ignore_errors=True)
