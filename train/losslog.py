"""The loss log: one record per step (step, epoch, lr, seconds, the 8 losses), as JSON lines in
``loss_log.jsonl`` or as a CSV table with a header in ``loss_log.csv``."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Optional

from cyclegan_convert.atomic import atomic_write_bytes
from cyclegan_convert.errors import UsageError

from .model import LOSS_NAMES

FORMATS = ("jsonl", "csv")
COLUMNS = ("step", "epoch", "lr", "time", *LOSS_NAMES)


def log_path(folder: Path, fmt: Optional[str], resume: bool = False) -> Path:
    """The run's log file. A resumed run keeps the format it has (asking for the other one would
    split its history in two files: an error); ``fmt`` None means that format, or jsonl."""
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"unknown loss log format {fmt!r}: use {' or '.join(FORMATS)}")
    existing = [f for f in FORMATS if (Path(folder) / f"loss_log.{f}").exists()] if resume else []
    if fmt is None:
        fmt = existing[0] if len(existing) == 1 else "jsonl"
    elif existing and fmt not in existing:
        raise UsageError(f"{folder} logs to loss_log.{existing[0]}: resume with --log-format {existing[0]} "
                         "(or leave the option out)")
    return Path(folder) / f"loss_log.{fmt}"


class LossLog:
    """Appends one record per step, in the format its file name ends with. On resume, records past
    the checkpoint's step (written after the last save, before a crash) are dropped first, so the
    log tells the history of the weights."""

    def __init__(self, path: Path, resume_step: Optional[int] = None):
        self.path = Path(path)
        self.csv = self.path.suffix == ".csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            kept = [r for r in read_log(self.path) if r["step"] <= resume_step]
            atomic_write_bytes(self.path, self._encode(kept, header=True))
        else:  # a new run, or a resumed one that had no log in this format
            atomic_write_bytes(self.path, self._encode([], header=True))
        self._f = open(self.path, "a", encoding="utf-8", buffering=1, newline="")  # line-buffered: a kill loses one line at most

    def _encode(self, records: list[dict[str, Any]], header: bool = False) -> bytes:
        if not self.csv:
            return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode("utf-8")
        buf = io.StringIO()
        w = csv.DictWriter(buf, COLUMNS, extrasaction="ignore", lineterminator="\n")
        if header:
            w.writeheader()
        w.writerows(records)
        return buf.getvalue().encode("utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._f.write(self._encode([record]).decode("utf-8"))

    def close(self) -> None:
        self._f.close()


def read_log(path: Path) -> list[dict[str, Any]]:
    """The records of a loss log in either format, as dicts of numbers; a line cut short by a
    kill is left out."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    if text and not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]  # the last line was cut by a kill (even if it still parses)
    out: list[dict[str, Any]] = []
    if Path(path).suffix == ".csv":
        for row in csv.DictReader(io.StringIO(text)):
            try:
                out.append({k: (int(v) if k == "step" else float(v)) for k, v in row.items() if k in COLUMNS})
            except (TypeError, ValueError):
                continue
            if len(out[-1]) != len(COLUMNS):
                out.pop()
        return out
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and "step" in rec:
            out.append(rec)
    return out
