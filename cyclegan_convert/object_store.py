"""Object stores (``s3://``, ``gs://``, ``az://``: any fsspec filesystem) as the inputs and outputs of
`ccv convert`, in local runs and with ``--ray`` alike.

An ``ObjectPath`` stands where a ``pathlib.Path`` stands in the planning and the stages, with the
same names (``name``, ``parent``, ``/``, ``exists``, ``relative_to``), so ``files`` and
``converter`` handle both alike. It has no ``__fspath__``: a call that would open a local file of
that name fails loudly instead. What differs is kept here and in ``manifest.ObjectManifest``:

- an object cannot be renamed: an output is uploaded under a hidden temporary key beside its name
  (``.name.XXXX.part.jpg``, as ``atomic`` names temporary files) and copied to its name after the
  manifest has its record;
- an object cannot be appended to: the manifest is written in batches (``ObjectManifest``);
- decoders want files: a source is fetched into a local temporary file, and an output is encoded
  into one before its upload.

fsspec comes with PyTorch; the store's own package (s3fs, gcsfs, adlfs) is imported only when a
path names that store. Credentials and endpoints are the package's own (``AWS_PROFILE``,
``FSSPEC_S3_ENDPOINT_URL``, ...).
"""
from __future__ import annotations

import contextlib
import functools
import glob
import os
import posixpath
import re
import secrets
import tempfile
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator, Optional, Union

from .errors import CcvError, UsageError, first_line

URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
LOCAL_PROTOCOLS = frozenset({"file", "local"})
STORE_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}
PROCESS_LOCAL = frozenset({"memory"})  # filesystems that live in one process: not for Ray workers


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """The store packages raise their clients' own errors for a refused connection or missing
    credentials (botocore's are not OSError); as OSError, every caller's handling of a failed read
    or write (one line naming the file, that file alone failing) applies to them too."""
    try:
        yield
    except (OSError, CcvError):
        raise
    except Exception as e:  # noqa: BLE001
        raise OSError(first_line(e, 160)) from e


def is_url(text: object) -> bool:
    """True for ``scheme://...`` naming a store (not ``file://``)."""
    m = URL.match(text) if isinstance(text, str) else None
    return bool(m) and m.group(1).lower() not in LOCAL_PROTOCOLS


def location(text: Union[str, os.PathLike, "ObjectPath"]) -> Union[Path, "ObjectPath"]:
    """A command-line path as a ``Path`` or, for a store URL, an ``ObjectPath``."""
    if isinstance(text, (Path, ObjectPath)):
        return text
    text = os.fspath(text)
    if is_url(text):
        return ObjectPath(text)
    m = URL.match(text)
    return Path(text[m.end():] if m else text)  # file:///x is /x


@functools.lru_cache(maxsize=None)
def filesystem(protocol: str):
    """The fsspec filesystem of ``protocol`` (one per process; fsspec caches it too)."""
    try:
        import fsspec

        return fsspec.filesystem(protocol)
    except ImportError as e:
        package = STORE_PACKAGES.get(protocol)
        hint = f": pip install {package}" if package else ""
        raise UsageError(f"{protocol}:// paths need a package that is not installed ({e}){hint}") from None
    except ValueError as e:
        raise UsageError(f"{protocol}://: not a storage protocol fsspec knows ({e})") from None


class ObjectPath:
    """``protocol://bucket/key``; its ``key`` has no leading or trailing slash."""

    __slots__ = ("protocol", "key")

    def __init__(self, url: str):
        m = URL.match(url)
        if m is None:
            raise ValueError(f"not a store URL: {url!r}")
        self.protocol = m.group(1).lower()
        self.key = _clean(url[m.end():])

    @classmethod
    def _of(cls, protocol: str, key: str) -> "ObjectPath":
        """From a key as the store lists it: kept as it is (``a//b`` is a legal S3 key)."""
        p = cls.__new__(cls)
        p.protocol, p.key = protocol, key.strip("/")
        return p

    # -- pure path operations ------------------------------------------------------------------------
    def __str__(self) -> str:
        return f"{self.protocol}://{self.key}"

    def __repr__(self) -> str:
        return f"ObjectPath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectPath) and (self.protocol, self.key) == (other.protocol, other.key)

    def __hash__(self) -> int:
        return hash((self.protocol, self.key))

    def __lt__(self, other: "ObjectPath") -> bool:
        return (self.protocol, self.key) < (other.protocol, other.key)

    def __truediv__(self, other: Union[str, PurePosixPath]) -> "ObjectPath":
        part = PurePosixPath(other).as_posix()
        if part.startswith("/") or is_url(part):
            raise ValueError(f"{other!r} is not a relative key")
        return self if part in ("", ".") else ObjectPath._of(self.protocol, _clean(f"{self.key}/{part}"))

    @property
    def name(self) -> str:
        return posixpath.basename(self.key)

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.key.split("/"))

    @property
    def parent(self) -> "ObjectPath":
        """The folder (key prefix) it is in; a bucket is its own parent, as ``/`` is."""
        return ObjectPath._of(self.protocol, posixpath.dirname(self.key)) if "/" in self.key else self

    @property
    def parents(self) -> list["ObjectPath"]:
        out, p = [], self
        while p.parent != p:
            p = p.parent
            out.append(p)
        return out

    def relative_to(self, other: "ObjectPath") -> PurePosixPath:
        if self == other:
            return PurePosixPath(".")
        if not isinstance(other, ObjectPath) or other.protocol != self.protocol \
                or not self.key.startswith(other.key + "/"):
            raise ValueError(f"{self} is not in {other}")
        return PurePosixPath(self.key[len(other.key) + 1:])

    def as_posix(self) -> str:
        return str(self)

    def resolve(self) -> "ObjectPath":  # keys have no links and no relative form
        return self

    expanduser = absolute = resolve

    # -- the store ---------------------------------------------------------------------------------
    @property
    def fs(self):
        return filesystem(self.protocol)

    def exists(self) -> bool:
        with store_errors():
            return self.fs.exists(str(self))

    def is_file(self) -> bool:
        with store_errors():
            return self.fs.isfile(str(self))

    def is_dir(self) -> bool:
        with store_errors():
            return self.fs.isdir(str(self))

    def is_symlink(self) -> bool:
        return False

    def read_bytes(self) -> bytes:
        with store_errors():
            return self.fs.cat_file(str(self))

    def write_bytes(self, data: bytes) -> None:
        """One upload: an object store shows an object only once it is complete."""
        with store_errors():
            self.fs.pipe_file(str(self), data)

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            with store_errors():
                self.fs.rm_file(str(self))
        except FileNotFoundError:
            if not missing_ok:
                raise

    def stamp(self) -> str:
        """Size and version (ETag, generation or time) of the object: what the manifest compares
        to tell an unchanged source."""
        with store_errors():
            info = self.fs.info(str(self))
        version = next((info[k] for k in ("ETag", "etag", "generation", "md5Hash", "LastModified", "mtime", "created")
                        if info.get(k)), "")
        return f"{info.get('size', '')}:{str(version).strip(chr(34))}"

    def entries(self, refresh: bool = False) -> list[tuple["ObjectPath", bool]]:
        """(path, is a folder) for what lies directly in this folder, by name; from fsspec's listing
        cache unless ``refresh``. A folder that does not exist raises FileNotFoundError and is
        noted in that cache as empty, so asking whether each output in a new folder exists costs
        no request."""
        fs = self.fs
        try:
            with store_errors():
                listing = fs.ls(str(self), detail=True, refresh=refresh)
        except FileNotFoundError:
            cache = getattr(fs, "dircache", None)
            if cache is not None:
                cache[fs._strip_protocol(str(self)).rstrip("/")] = []  # fsspec: "listed, holds nothing"
            raise
        out = []
        for info in listing:
            p = ObjectPath._of(self.protocol, info["name"])
            if p != self:
                out.append((p, info.get("type") == "directory"))
        return sorted(out, key=lambda e: e[0].name)


def _clean(key: str) -> str:
    key = posixpath.normpath("/" + key).lstrip("/")
    return "" if key == "." else key


def glob_files(pattern: str) -> list[ObjectPath]:
    """The objects a store glob matches, sorted."""
    p = ObjectPath(pattern)
    with store_errors():
        found = p.fs.glob(str(p), detail=True)
    return sorted(ObjectPath._of(p.protocol, name) for name, info in found.items() if info.get("type") == "file")


def glob_base(pattern: str) -> ObjectPath:
    """The folder before the first part with a wildcard."""
    p = ObjectPath(pattern)
    fixed = []
    for part in p.parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return ObjectPath._of(p.protocol, "/".join(fixed))


# -- transfers --------------------------------------------------------------------------------------
def scratch_file(suffix: str = "") -> Path:
    """An empty local temporary file (the caller removes it)."""
    fd, name = tempfile.mkstemp(prefix="ccv-", suffix=suffix)
    os.close(fd)
    return Path(name)


def fetch(src: ObjectPath) -> Path:
    """The object's bytes in a local temporary file with its suffix (decoders tell formats by it)."""
    local = scratch_file(src.suffix)
    try:
        with store_errors():
            src.fs.get_file(str(src), str(local))
    except BaseException:
        local.unlink(missing_ok=True)
        raise
    return local


def upload_temporary(local: Path, target: ObjectPath) -> ObjectPath:
    """Uploads ``local`` to a hidden temporary key beside ``target`` and removes ``local``."""
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.part{target.suffix}"
    try:
        with store_errors():
            target.fs.put_file(str(local), str(tmp))
    finally:
        local.unlink(missing_ok=True)
    return tmp


def copy_object(tmp: ObjectPath, target: ObjectPath) -> None:
    """The uploaded temporary object copied to the target's name, inside the store (no rename
    there); the caller deletes the temporary ones in bulk (``remove_all``)."""
    fs = target.fs
    with store_errors():
        fs.invalidate_cache(str(tmp))  # another process (a Ray write task) uploaded it: a cached listing is stale
        fs.cp_file(str(tmp), str(target))


def remove_all(paths: Iterable[ObjectPath]) -> None:
    """Deletes objects, in as few requests as the store allows (S3: 1,000 a request); one that
    cannot be deleted is left for the next run's clean-up. Names with ``*?[`` go one by one:
    fsspec's bulk delete would read them as patterns."""
    plain, magic = [], []
    for p in paths:
        (magic if glob.has_magic(str(p)) else plain).append(p)  # fsspec expands the same characters
    for group in ([plain] if plain else []) + [[p] for p in magic]:
        try:
            with store_errors():
                if len(group) == 1:
                    group[0].fs.rm_file(str(group[0]))
                else:
                    group[0].fs.rm([str(p) for p in group])
        except OSError:
            pass


def remove_matching(folder: ObjectPath, pattern: "re.Pattern[str]") -> None:
    """Deletes the objects directly in ``folder`` whose names match (leftover temporary uploads)."""
    try:
        remove_all([p for p, is_dir in folder.entries(refresh=True) if not is_dir and pattern.match(p.name)])
    except OSError:
        pass


def bucket_of(path: ObjectPath) -> Optional[ObjectPath]:
    """The bucket (container) a path is in, for stores that have them."""
    if path.protocol not in STORE_PACKAGES:
        return None
    return ObjectPath._of(path.protocol, path.key.split("/")[0])


def fresh_listings(paths: Iterable[object]) -> None:
    """Forgets the listings fsspec keeps for the stores among ``paths``: a run sees the objects as
    they are now, not as an earlier run in this process listed them."""
    for protocol in {location(p).protocol for p in paths if is_url(str(p))}:
        with contextlib.suppress(Exception):
            filesystem(protocol).invalidate_cache()
