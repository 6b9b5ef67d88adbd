"""A record, in the output folder, of which outputs were made from which source with which settings.

Re-runs skip an output only when the manifest says it was made from the same (unchanged) source with
the same model and settings. One JSON line per output, appended; the line is written before the
output's temporary file is renamed into place, so an output that exists is always recorded, and a
torn last line after a kill is ignored.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

MANIFEST_NAME = ".ccv-manifest.jsonl"
FAILURES_NAME = "ccv-failures.txt"


def settings_key(**settings: object) -> str:
    """A short stable hash of everything that changes the output's pixels or format."""
    blob = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def source_stamp(src: Path) -> str:
    st = src.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


@dataclass(frozen=True)
class Record:
    key: str
    src: str
    stamp: str
    beside: bool = False  # written in its source's own folder (see outputs_beside_sources)


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
        rec = Record(key, str(src.resolve()), source_stamp(src), beside)
        d = {"out": rel, "key": rec.key, "src": rec.src, "stamp": rec.stamp}
        if beside:
            d["beside"] = True
        line = json.dumps(d, ensure_ascii=False)
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


def read_records(path: Path) -> dict[str, Record]:
    """The records of a manifest file by output path; raises OSError when it cannot be read."""
    records: dict[str, Record] = {}
    # a kill can cut a line inside a multi-byte character: that line is torn, not the file
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            d = json.loads(line)
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
        records = read_records(Path(folder) / MANIFEST_NAME)
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
