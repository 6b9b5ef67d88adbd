"""What to convert and where it goes: inputs (files, folders, globs) to (source, output) jobs.

The output tree mirrors the input tree, so same-named files in different folders never collide.
Folders are walked lazily (100,000 files never sit in memory as a list), in sorted order, following
symbolic links but never entering a folder twice (a link loop does not hang). OS clutter and hidden
files are not inputs. Inputs and outputs may also be in object stores (``s3://bucket/photos``, see
``object_store``): the same planning, with key prefixes for folders.
"""
from __future__ import annotations

import glob
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

from .errors import UsageError, first_line
from .formats import check_writable, is_raw_name
from .imaging import IMAGE_SUFFIXES, is_image_name
from .manifest import MANIFEST_NAME, PARTS_NAME, outputs_beside_sources
from .object_store import ObjectPath, bucket_of, glob_base, glob_files, is_url, location

Location = Union[Path, ObjectPath]

CLUTTER_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini", "__macosx", "@eadir", "$recycle.bin"})
EXTS = ("same", "jpg", "png", "webp", "avif", "heic", "tif", "tiff")
RAW_SAME_SUFFIX = ".tif"  # --ext same on a camera RAW: a RAW cannot be written back
SAME_SUFFIX = {".mpo": ".jpg"}  # --ext same where no writer has the format: an MPO is a JPEG with more views


def is_clutter(name: str) -> bool:
    """OS clutter and hidden entries (``.DS_Store``, ``._x.jpg``, ``Thumbs.db``, ``.thumbnails``)."""
    return name.startswith(".") or name.lower() in CLUTTER_NAMES


@dataclass(frozen=True)
class Naming:
    """How an output file is named: ``<stem><suffix><ext>``."""

    ext: str = "same"  # same, jpg, png, webp, avif, heic
    suffix: str = ""

    def __post_init__(self) -> None:
        if self.ext not in EXTS:
            raise UsageError(f"unknown --ext {self.ext!r}: use {', '.join(EXTS)}")
        check_writable(self.ext)  # --ext heic without pillow-heif: refused before any work
        if any(c in self.suffix for c in "/\\"):
            raise UsageError(f"--suffix {self.suffix!r} must not contain a path separator")

    def out_suffix(self, src: Path) -> str:
        if self.ext != "same":
            return f".{self.ext}"
        return RAW_SAME_SUFFIX if is_raw_name(src) else SAME_SUFFIX.get(src.suffix.lower(), src.suffix)

    def name(self, src: Path, disambiguate: bool = False) -> str:
        stem = f"{src.stem}_{src.suffix.lstrip('.')}" if disambiguate else src.stem
        return f"{stem}{self.suffix}{self.out_suffix(src)}"


@dataclass(frozen=True)
class Job:
    """One image to convert. ``rel`` is the output's path under ``out_root`` (the manifest's key)."""

    src: Location
    dst: Location
    out_root: Location
    renamed: bool = False  # its name was changed to avoid a collision with another output

    @property
    def rel(self) -> str:
        return self.dst.relative_to(self.out_root).as_posix()


@dataclass(frozen=True)
class InputRoot:
    """One command-line input: a folder, a glob or a file, and the folder its outputs go to."""

    kind: str  # dir, glob, file
    base: Location  # the folder the input tree is mirrored from
    out_root: Location
    pattern: Optional[str] = None  # for globs
    file: Optional[Location] = None  # for files


def _glob_base(pattern: str) -> Path:
    parts = Path(pattern).parts
    base: list[str] = []
    for p in parts:
        if glob.has_magic(p):
            break
        base.append(p)
    return Path(*base) if base else Path(".")


def plan_roots(inputs: Sequence[str], target: str, output: Optional[Union[str, Location]] = None) -> list[InputRoot]:
    """Maps each input to its output folder.

    Without ``-o``: a folder ``photos`` goes to a sibling ``photos_<target>``; a glob to a sibling
    of its fixed leading folder; a file to its own folder (named with a ``_<target>`` suffix, see
    ``Converter``). With ``-o OUT``: a single folder or glob fills OUT; with several inputs each
    folder gets ``OUT/<its name>`` and files go to OUT.
    """
    if not inputs:
        raise UsageError("no inputs: give image files, folders or globs")
    roots: list[InputRoot] = []
    # the same input twice (``photos photos/``, a file named twice) is one input: converted twice
    # it raced on the same outputs, or got a second, renamed copy (``a_jpg_2.jpg``)
    unique: dict[str, str] = {}
    inputs = [raw[len("file://"):] if raw.lower().startswith("file://") else raw for raw in inputs]
    for raw in inputs:
        if is_url(raw):
            unique.setdefault(str(ObjectPath(raw)), raw)
            continue
        unique.setdefault(raw if glob.has_magic(raw) and not Path(raw).expanduser().exists()
                          else os.path.normcase(os.path.abspath(Path(raw).expanduser())), raw)
    inputs = list(unique.values())
    several = len(inputs) > 1
    used: dict[str, int] = {}
    output = location(output) if output is not None else None
    for raw in inputs:
        p = location(raw).expanduser()
        try:
            if p.is_dir():
                kind, base, pattern, file = "dir", p, None, None
            elif p.is_file() or p.is_symlink():
                kind, base, pattern, file = "file", p.parent, None, p
            elif glob.has_magic(raw):
                kind, base, pattern, file = "glob", glob_base(raw) if is_url(raw) else _glob_base(raw), raw, None
                if not (glob_files(raw) if is_url(raw) else glob.glob(raw, recursive=True)):
                    raise UsageError(f"{raw}: the pattern matches nothing")
            else:
                raise UsageError(f"{raw}: no such file or folder")
        except (UsageError, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001  (a store without credentials, a bucket out of reach)
            raise UsageError(f"{raw}: cannot be read ({first_line(e, 160)})") from None
        if output is None:
            if isinstance(base, ObjectPath) and "/" not in base.key:
                raise UsageError(f"{raw}: a whole bucket needs an output folder: add -o {base}/OUT or another place")
            if kind == "file":
                out = base
            else:
                name = base.resolve().name or "root"
                out = base.resolve().parent / f"{name}_{target}"
        elif kind == "file" or not several:
            out = output
        else:
            name = base.resolve().name or "root"
            n = used.get(name, 0) + 1
            used[name] = n
            out = output / (name if n == 1 else f"{name}_{n}")
        if kind != "file" and out.resolve() == base.resolve():
            raise UsageError(f"{raw}: the output folder is the input folder; choose another -o")
        _check_folder(out)
        roots.append(InputRoot(kind, base, out, pattern, file))
    return roots


def _check_folder(out: Location) -> None:
    """An output folder that is a file, or lies under one, is a usage error before any work (each
    output would fail, and the failures file with them)."""
    if isinstance(out, ObjectPath):
        try:
            is_object = out.is_file()
        except Exception as e:  # noqa: BLE001
            raise UsageError(f"{out}: cannot reach the output folder ({first_line(e, 160)})") from None
        if is_object:
            raise UsageError(f"{out}: the output folder is an object in the store; choose another -o")
        bucket = bucket_of(out)
        try:
            missing = bucket is not None and not bucket.exists()
        except Exception:  # noqa: BLE001  (the writes will say what is wrong)
            missing = False
        if missing:
            raise UsageError(f"{out}: there is no bucket {bucket}; create it or choose another -o")
        return
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                where = "is a file" if p == out else f"is inside {p}, which is a file"
                raise UsageError(f"{out}: the output folder {where}; choose another -o")
            return


def _count_ignored(ignored: Optional[Counter], name: str) -> None:
    """A file that is not an image is not converted, but is counted by its type, so a run accounts
    for every file it was given (a GoPro .gpr or a .mov among the photos does not just vanish)."""
    if ignored is not None:
        ignored[Path(name).suffix.lower() or "(no extension)"] += 1


def _walk(base: Path, skip: set[Path], ignored: Optional[Counter] = None) -> Iterator[tuple[Path, list[str]]]:
    """(folder, sorted image file names), depth first in sorted order, each real folder once.
    Linked folders come after the real tree, so a folder reached both ways is mirrored under its
    own name (``2023/``), not a link's (``best-of -> 2023``, which sorts first)."""
    seen: set[tuple[int, int]] = set()
    stack = [base]
    links: list[Path] = []
    while stack or links:
        folder = stack.pop() if stack else links.pop(0)
        try:
            st = folder.stat()
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue  # a symbolic-link loop or a second link to a folder already converted
            seen.add(key)
            if folder.resolve() in skip:
                continue  # the output folder inside the input tree
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue  # unreadable folder or dangling link: nothing to convert there
        files, dirs = [], []
        ours = outputs_beside_sources(folder) if any(e.name == MANIFEST_NAME for e in entries) else set()
        for e in entries:
            if is_clutter(e.name) or e.name in ours:
                continue
            try:
                if e.is_dir():
                    (links if e.is_symlink() else dirs).append(Path(e.path))
                elif e.is_file() and is_image_name(e.name):
                    files.append(e.name)
                elif e.is_file():
                    _count_ignored(ignored, e.name)
            except OSError:
                continue
        yield folder, files
        stack.extend(reversed(dirs))


def _walk_objects(base: ObjectPath, skip: set, ignored: Optional[Counter] = None) -> Iterator[tuple[ObjectPath, list[str]]]:
    """``_walk`` in an object store, where folders are key prefixes and there are no links."""
    stack = [base]
    while stack:
        folder = stack.pop()
        if folder in skip:
            continue  # the output folder inside the input tree
        try:
            entries = folder.entries()
        except FileNotFoundError:
            continue
        except OSError as e:  # denied, or the store out of reach: never a silently smaller run
            raise UsageError(f"{folder}: cannot list ({first_line(e, 160)})") from None
        # a killed run's records may be only in parts
        ours = outputs_beside_sources(folder) if any(p.name in (MANIFEST_NAME, PARTS_NAME) for p, _ in entries) \
            else set()
        files = [p.name for p, is_dir in entries if not is_dir and not is_clutter(p.name) and p.name not in ours]
        for name in files:
            if not is_image_name(name):
                _count_ignored(ignored, name)
        yield folder, [name for name in files if is_image_name(name)]
        stack.extend(reversed([p for p, is_dir in entries if is_dir and not is_clutter(p.name)]))


def _glob_files(pattern: str) -> list[Location]:
    if is_url(pattern):
        return glob_files(pattern)  # type: ignore[return-value]
    return [m for m in sorted(Path(m) for m in glob.glob(pattern, recursive=True)) if m.is_file()]


def _named(folder_files: list[Location], out_dir: Location, naming: Naming, out_root: Location) -> list[Job]:
    """Jobs for files that land in one output folder; names that would collide (``a.jpg`` and
    ``a.png`` with ``--ext png``) all get their source extension in the name (``a_jpg.png``)."""
    counts: dict[str, int] = {}
    for f in folder_files:
        k = naming.name(f).lower()  # case-insensitive file systems collide on case too
        counts[k] = counts.get(k, 0) + 1
    jobs, used = [], set()
    for f in folder_files:
        clash = counts[naming.name(f).lower()] > 1
        name = naming.name(f, disambiguate=clash)
        n = 1
        while name.lower() in used:  # a.jpg and a.JPG still meet as a_jpg.png / a_JPG.png
            n += 1
            name = f"{Path(naming.name(f, disambiguate=True)).stem}_{n}{naming.out_suffix(f)}"
        used.add(name.lower())
        jobs.append(Job(f, out_dir / name, out_root, renamed=clash))
    return jobs


def iter_jobs(roots: Sequence[InputRoot], naming: Naming, file_naming: Optional[Naming] = None,
              ignored: Optional[Counter] = None) -> Iterator[Job]:
    """Every job, lazily. ``file_naming`` is used for file inputs written beside themselves. A
    source that two inputs reach with the same output (a folder and a glob in it) is listed once."""
    yield from _once(_iter_jobs(roots, naming, file_naming, ignored))


def _once(jobs: Iterator[Job]) -> Iterator[Job]:
    # keyed on the source (with -o, a folder and a glob in it have different output roots) and on
    # whether it goes beside itself: a file named with its folder is written there and mirrored
    seen: set[tuple[Path, bool]] = set()
    for j in jobs:
        k = (j.src.resolve(), j.out_root == j.src.parent)
        if k not in seen:
            seen.add(k)
            yield j


def _iter_jobs(roots: Sequence[InputRoot], naming: Naming, file_naming: Optional[Naming],
               ignored: Optional[Counter]) -> Iterator[Job]:
    # output folders are never read as inputs (files converted beside themselves make no folder,
    # and the walk leaves them out by their folder's manifest)
    out_roots = {r.out_root.resolve() for r in roots if not (r.kind == "file" and r.out_root == r.base)}
    loose: list[Path] = []
    loose_roots: list[InputRoot] = []
    for r in roots:
        if r.kind == "file":
            loose.append(r.file)  # type: ignore[arg-type]
            loose_roots.append(r)
    # explicit files first, grouped by their output folder so collisions among them are seen
    by_out: dict[Path, list[Path]] = {}
    for f, r in zip(loose, loose_roots):
        by_out.setdefault(r.out_root, []).append(f)
    for out, files in by_out.items():
        beside = all(f.parent.resolve() == out.resolve() for f in files)
        yield from _named(files, out, (file_naming or naming) if beside else naming, out)
    for r in roots:
        if r.kind == "dir":
            walk = _walk_objects if isinstance(r.base, ObjectPath) else _walk
            for folder, names in walk(r.base, out_roots, ignored):  # type: ignore[arg-type]
                rel = folder.relative_to(r.base)
                yield from _named([folder / n for n in names], r.out_root / rel, naming, r.out_root)
        elif r.kind == "glob":
            matches = _glob_files(r.pattern)  # type: ignore[arg-type]
            groups: dict[Path, list[Path]] = {}
            ours: dict[Path, set[str]] = {}
            for m in matches:
                if m.parent not in ours:
                    ours[m.parent] = outputs_beside_sources(m.parent)
                if (not any(is_clutter(p) for p in m.relative_to(r.base).parts)
                        and m.name not in ours[m.parent] and not out_roots.intersection(m.resolve().parents)):
                    if is_image_name(m.name):
                        groups.setdefault(m.parent, []).append(m)
                    else:
                        _count_ignored(ignored, m.name)
            for folder, files in groups.items():
                yield from _named(files, r.out_root / folder.relative_to(r.base), naming, r.out_root)


__all__ = ["IMAGE_SUFFIXES", "InputRoot", "Job", "Naming", "is_clutter", "iter_jobs", "plan_roots"]
