"""A record, in the output folder, of which outputs were made from which source with which settings.

Re-runs skip an output only when the manifest says it was made from the same (unchanged) source with
the same model and settings. One JSON line per output, appended; the line is written before the
output's temporary file is renamed into place, so an output that exists is always recorded, and a
torn last line after a kill is ignored. In an object store, where nothing can be appended, lines go
in batches into part objects (``ObjectManifest``).
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

from .object_store import ObjectPath, copy_object, remove_all

MANIFEST_NAME = ".ccv-manifest.jsonl"
PARTS_NAME = ".ccv-manifest.parts"  # object stores: batches of records not yet folded into MANIFEST_NAME
FAILURES_NAME = "ccv-failures.txt"


def settings_key(**settings: object) -> str:
    """A short stable hash of everything that changes the output's pixels or format."""
    blob = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def source_stamp(src: Union[Path, ObjectPath]) -> str:
    if isinstance(src, ObjectPath):
        return src.stamp()
    st = src.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


@dataclass(frozen=True)
class Record:
    key: str
    src: str
    stamp: str
    beside: bool = False  # written in its source's own folder (see outputs_beside_sources)

    @classmethod
    def of(cls, key: str, src: Union[Path, ObjectPath], beside: bool = False) -> "Record":
        """What an output made now from ``src`` with settings ``key`` is recorded as: the source by
        its full path (what ``is_done`` compares) and as it is now."""
        return cls(key, str(src.resolve()), source_stamp(src), beside)


class Manifest:
    """The manifest of one output folder; thread-safe appends."""

    def __init__(self, out_root: Path):
        self.path = Path(out_root) / MANIFEST_NAME
        self._records: dict[str, Record] = {}
        self._lock = threading.Lock()
        self._file = None
        self._load()

    def _load(self) -> None:
        try:
            self._records = read_records(self.path)
        except FileNotFoundError:
            return

    def get(self, rel: str) -> Optional[Record]:
        return self._records.get(rel)

    def is_done(self, rel: str, key: str, src: Path) -> bool:
        """True when ``rel`` was made from ``src`` as it is now, with settings ``key``."""
        r = self._records.get(rel)
        if r is None or r.key != key or r.src != str(src.resolve()):
            return False
        try:
            return r.stamp == source_stamp(src)
        except OSError:
            return False

    def add(self, rel: str, key: str, src: Path, beside: bool = False) -> None:
        """``beside``: the output was written in its source's own folder (see ``outputs_beside_sources``)."""
        rec = Record.of(key, src, beside)
        line = _line(rel, rec)
        with self._lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")
                if not _ends_with_newline(self.path):  # a line torn by a kill would swallow the next record
                    self._file.write("\n")
            self._file.write(line + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
            self._records[rel] = rec

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class ObjectManifest(Manifest):
    """The manifest of an output folder in an object store, where an object cannot be appended to.
    This run's records go into part objects (``.ccv-manifest.parts/<run>-<n>.jsonl``), a batch of up
    to ``BATCH`` records or ``BATCH_S`` seconds each, so a million outputs do not make a million
    manifest writes. Each part is written before the outputs it records are moved to their names
    from their temporary keys: as on a disk, an output that exists is recorded. ``close`` writes the
    last batch, then folds the parts into the one ``.ccv-manifest.jsonl`` object and deletes them;
    the parts a killed run leaves are read, and folded, by the next. Objects cannot be renamed
    either: an output is copied from its temporary key, and the temporary keys of a batch are
    deleted together. Batches are published by one thread of their own, in order, so the encoders
    go on while a batch's round trips last; at most ``IN_FLIGHT`` batches wait for it."""

    BATCH, BATCH_S, MOVERS, IN_FLIGHT = 64, 2.0, 16, 4

    def __init__(self, out_root: ObjectPath):
        self.root = out_root
        self.path = out_root / MANIFEST_NAME
        self._lock = threading.Lock()
        self._pending: list[tuple] = []  # (rel, Record, tmp, dst, done, failed)
        self._first_pending = 0.0
        self._publisher: Optional[ThreadPoolExecutor] = None  # one thread: batches stay in order
        self._slots = threading.BoundedSemaphore(self.IN_FLIGHT)
        # parts sort by run start, in UTC to the nanosecond (later records win), then by sequence
        self._run, self._seq = f"{time.time_ns():020d}-{secrets.token_hex(3)}", 0
        self._records, self._parts = read_object_records(out_root)

    def add(self, rel: str, key: str, src: Path, beside: bool = False) -> None:
        raise TypeError("an object store's manifest records outputs with commit_later")

    def commit_later(self, rel: str, key: str, src: ObjectPath, beside: bool, tmp: ObjectPath, dst: ObjectPath,
                     done: Callable[[], None], failed: Callable[[BaseException], None]) -> None:
        """Records ``rel`` and then moves ``tmp`` to ``dst``, with the next batch; ``done()`` or
        ``failed(error)`` follows, from the publishing thread."""
        try:
            rec = Record.of(key, src, beside)
        except Exception as e:  # noqa: BLE001  (the store refused: this output alone fails)
            remove_all([tmp])
            failed(e)
            return
        with self._lock:
            if not self._pending:
                self._first_pending = time.monotonic()
            self._pending.append((rel, rec, tmp, dst, done, failed))
            full = len(self._pending) >= self.BATCH or time.monotonic() - self._first_pending >= self.BATCH_S
            batch = self._take() if full else []
        self._submit(batch)

    def flush_if_due(self) -> None:
        """Publishes a batch that has waited ``BATCH_S`` (called with each progress tick, so a
        slow stretch never holds finished outputs back)."""
        with self._lock:
            due = self._pending and time.monotonic() - self._first_pending >= self.BATCH_S
            batch = self._take() if due else []
        self._submit(batch)

    def _take(self) -> list[tuple]:
        batch, self._pending = self._pending, []
        return batch

    def _submit(self, batch: list[tuple]) -> None:
        if not batch:
            return
        self._slots.acquire()  # the encoders wait when the store falls IN_FLIGHT batches behind
        with self._lock:
            if self._publisher is None:
                self._publisher = ThreadPoolExecutor(1, thread_name_prefix="ccv-manifest")
            self._publisher.submit(self._publish_batch, batch)

    def _publish_batch(self, batch: list[tuple]) -> None:
        try:
            self._publish(batch)
        except Exception as e:  # noqa: BLE001  (a bug here must not lose outputs silently)
            for *_, failed in batch:
                failed(e)
        finally:
            self._slots.release()

    def _write_part(self, lines: list[str]) -> None:
        self._seq += 1
        part = self.root / PARTS_NAME / f"{self._run}-{self._seq:06d}.jsonl"
        part.write_bytes("".join(line + "\n" for line in lines).encode("utf-8"))
        self._parts.append(part)

    def _publish(self, batch: list[tuple]) -> None:
        try:
            self._write_part([_line(rel, rec) for rel, rec, *_ in batch])
        except Exception as e:  # noqa: BLE001  (unrecorded outputs are never moved into place)
            remove_all([item[2] for item in batch])
            for *_, failed in batch:
                failed(e)
            return
        before = {rel: self._records.get(rel) for rel, *_ in batch}
        for rel, rec, *_ in batch:
            self._records[rel] = rec

        def move(item: tuple) -> Optional[str]:
            rel, _rec, tmp, dst, done, failed = item
            try:
                copy_object(tmp, dst)
            except Exception as e:  # noqa: BLE001
                failed(e)
                return rel
            done()
            return None

        with ThreadPoolExecutor(min(self.MOVERS, len(batch)), thread_name_prefix="ccv-publish") as pool:
            missed = [rel for rel in pool.map(move, batch) if rel]  # a copy is a round trip: many at once
        remove_all([item[2] for item in batch])  # the temporary keys, in one request
        if missed:  # not made after all: the record says again what is there (an older output, or nothing)
            undo = []
            for rel in missed:
                old = before[rel]
                undo.append(_line(rel, old) if old else json.dumps({"out": rel, "drop": True}))
                if old:
                    self._records[rel] = old
                else:
                    self._records.pop(rel, None)
            try:
                self._write_part(undo)
            except Exception:  # noqa: BLE001  (the fold at close still leaves them out)
                pass

    def close(self) -> None:
        """Publishes the last batch, waits for every batch, then folds the parts into the manifest."""
        with self._lock:
            batch = self._take()
        self._submit(batch)
        with self._lock:
            publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.shutdown(wait=True)
        if not self._parts:
            return
        try:
            text = "".join(_line(rel, rec) + "\n" for rel, rec in self._records.items())
            self.path.write_bytes(text.encode("utf-8"))  # one upload: the whole manifest or the old one
        except OSError:
            return  # the parts stay; the next run reads them
        remove_all(self._parts)  # a folder named with [ ] * ? too (remove_all does not expand them)
        self._parts = []


def open_manifest(out_root: Union[Path, ObjectPath]) -> Manifest:
    return ObjectManifest(out_root) if isinstance(out_root, ObjectPath) else Manifest(out_root)


def _line(rel: str, rec: Record) -> str:
    d = {"out": rel, "key": rec.key, "src": rec.src, "stamp": rec.stamp}
    if rec.beside:
        d["beside"] = True
    return json.dumps(d, ensure_ascii=False)


def read_records(path: Path) -> dict[str, Record]:
    """The records of a manifest file by output path; raises OSError when it cannot be read."""
    return _parse(Path(path).read_text(encoding="utf-8", errors="replace"), {})


def read_object_records(root: ObjectPath) -> tuple[dict[str, Record], list[ObjectPath]]:
    """The records of an object store folder's manifest and its parts, and the parts' paths."""
    records: dict[str, Record] = {}
    try:
        _parse((root / MANIFEST_NAME).read_bytes().decode("utf-8", errors="replace"), records)
    except FileNotFoundError:
        pass
    try:
        parts = [p for p, is_dir in (root / PARTS_NAME).entries() if not is_dir and p.suffix == ".jsonl"]
    except FileNotFoundError:
        parts = []
    for p in parts:  # named by run start and sequence: later records win
        _parse(p.read_bytes().decode("utf-8", errors="replace"), records)
    return records, parts


def _parse(text: str, records: dict[str, Record]) -> dict[str, Record]:
    # a kill can cut a line inside a multi-byte character: that line is torn, not the file
    for line in text.splitlines():
        try:
            d = json.loads(line)
            if d.get("drop") is True:  # an object store copy that failed after its record (ObjectManifest)
                records.pop(d["out"], None)
                continue
            records[d["out"]] = Record(d["key"], d["src"], d["stamp"], d.get("beside") is True)
        except (ValueError, KeyError, TypeError):
            continue  # a torn line from a killed run
    return records


def outputs_beside_sources(folder: Path) -> set[str]:
    """Names of files in ``folder`` that an earlier run wrote beside their source there (``ccv
    convert photo.jpg`` writes ``photo_monet.jpg`` next to it), as its manifest records them; a
    folder walk leaves them out so it does not convert its own outputs. Outputs of mirrored trees
    (sources elsewhere) are not listed: converting those on purpose must still work."""
    try:
        records = read_object_records(folder)[0] if isinstance(folder, ObjectPath) else \
            read_records(Path(folder) / MANIFEST_NAME)
    except OSError:
        return set()
    return {out for out, r in records.items() if r.beside and "/" not in out}


def _ends_with_newline(path: Path) -> bool:
    """True for an empty file or one whose last byte is a newline."""
    with open(path, "rb") as f:
        if f.seek(0, os.SEEK_END) == 0:
            return True
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"
